#!/usr/bin/env bash
# MLS pathways recipe: multilingual streaming Emformer transducer on Multilingual LibriSpeech
# (or, when $MLS in db.sh is empty, on an MLS-shaped corpus generated locally with espeak-ng).
#
#   ./run.sh                              # everything, demo-size embedded corpus, CPU (~20 min, 2 cores)
#   ./run.sh --stage 10                   # everything after data preparation
#   ./run.sh --corpus_size ci --nbpe 64 --asr_args "--max_epoch 1"     # a few minutes
#   ./run.sh --mls_root /corpora/mls --nbpe 512 --train_config conf/train_asr_emformer_paper.yaml --ngpu 4
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
# Output units: the demo model reads characters (one SentencePiece character model per language);
# giving a piece count (--nbpe N, or --bpemode) selects SentencePiece pieces instead, and
# --token_type overrides both.
token_type=char
# CPU training runs two processes (torchrun + gloo, one per core of a 2-core machine; ESPnet gives
# each process its share of every batch, so the updates stay those of one process); with --ngpu N > 0
# ESPnet's own N processes. --num_procs overrides.
num_procs=2
# Decoding jobs per test set: the cores, at most 4.
inference_nj=$(nproc 2>/dev/null || echo 2)
if [ "${inference_nj}" -gt 4 ]; then inference_nj=4; fi
prev=
for arg in "$@"; do
    case "${arg}" in
        --nbpe|--nbpe=*|--bpemode|--bpemode=*) token_type=bpe ;;
        --ngpu=*) [ "${arg#--ngpu=}" = 0 ] || num_procs=1 ;;
    esac
    if [ "${prev}" = --ngpu ] && [ "${arg}" != 0 ]; then num_procs=1; fi
    prev=${arg}
done

./asr.sh \
    --langs "${langs}" \
    --mls_root "${MLS}" \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --train_config "${train_config}" \
    --inference_config "${inference_config}" \
    --token_type "${token_type}" \
    --bpemode unigram \
    --nbpe 128 \
    --num_procs "${num_procs}" \
    --inference_nj "${inference_nj}" \
    "$@"
