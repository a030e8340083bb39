#!/usr/bin/env bash
# MLS pathways recipe: multilingual streaming Emformer transducer on Multilingual LibriSpeech
# (or, when $MLS in db.sh is empty, on an MLS-shaped corpus generated locally with espeak-ng).
#
#   ./run.sh                              # everything, demo-size embedded corpus, CPU (~20 min, 2 cores)
#   ./run.sh --stage 10                   # everything after data preparation
#   ./run.sh --corpus_size ci --nbpe 64 --asr_args "--max_epoch 1"     # a few minutes
#   ./run.sh --mls_root /corpora/mls --nbpe 512 --train_config conf/train_asr_emformer_paper.yaml --ngpu 4
#   ./run.sh --num_procs 2 --num_threads 1   # two training processes on CPU (torchrun + gloo), one thread each
# Several nodes: --num_nodes N --launcher slurm (inside an allocation: srun starts one task per node),
# or --launcher torchrun --master_addr HOST --node_rank R, run on every node (R = 0..N-1).
set -euo pipefail

. ./db.sh

langs="en fr it nl"
train_set=train
valid_set=dev
train_config=conf/train_asr_emformer_demo.yaml
inference_config=conf/decode_streaming.yaml
# Output units (asr.sh's --token_type auto): the demo model reads characters (one SentencePiece
# character model per language); giving a piece count (--nbpe N, or --bpemode) selects SentencePiece
# pieces instead, and --token_type overrides both.
# Training processes x threads: asr.sh's --num_procs/--num_threads (default auto: from the cores and
# the batch size, see README.md).
# Decoding jobs per test set: the cores, at most 4.
inference_nj=$(nproc 2>/dev/null || echo 2)
if [ "${inference_nj}" -gt 4 ]; then inference_nj=4; fi

./asr.sh \
    --langs "${langs}" \
    --mls_root "${MLS}" \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --train_config "${train_config}" \
    --inference_config "${inference_config}" \
    --bpemode unigram \
    --nbpe 128 \
    --token_type auto \
    --inference_nj "${inference_nj}" \
    "$@"
