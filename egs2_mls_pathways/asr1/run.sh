#!/usr/bin/env bash
# MLS pathways recipe: multilingual streaming Emformer transducer on Multilingual LibriSpeech
# (or, when $MLS in db.sh is empty, on an MLS-shaped corpus generated locally with espeak-ng).
#
#   ./run.sh                              # everything, demo-size embedded corpus, CPU
#   ./run.sh --stage 10                   # everything after data preparation
#   ./run.sh --corpus_size ci --nbpe 64 --asr_args "--max_epoch 1"     # a few minutes
#   ./run.sh --mls_root /corpora/mls --train_config conf/train_asr_emformer_paper.yaml --ngpu 4
#   ./run.sh --ngpu 0 --num_procs 2       # two training processes on CPU (torchrun + gloo)
# Several nodes: --num_nodes N --launcher slurm (inside an allocation: srun starts one task per node),
# or --launcher torchrun --master_addr HOST --node_rank R, run on every node (R = 0..N-1).
set -euo pipefail

. ./db.sh

langs="en fr it nl"
train_set=train
valid_set=dev
train_config=conf/train_asr_emformer_demo.yaml
inference_config=conf/decode_streaming.yaml

./asr.sh \
    --langs "${langs}" \
    --mls_root "${MLS}" \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --train_config "${train_config}" \
    --inference_config "${inference_config}" \
    --token_type bpe \
    --bpemode unigram \
    --nbpe 128 \
    "$@"
