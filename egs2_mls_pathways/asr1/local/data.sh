#!/usr/bin/env bash
# Stage 1 of asr.sh: Kaldi data dirs in data/ from MLS ($MLS / --mls_root), or from the embedded
# espeak-ng corpus generated first when --mls_root is empty (--corpus_size ci|demo|large|repro,
# --lang_scale "en:4 nl:0.25" for per-language train sizes). Options are those of
# `python -m espnet_pathways.recipe.stages.data_prep --help`; $PYTHON selects the interpreter.
set -euo pipefail
exec "${PYTHON:-python3}" -m espnet_pathways.recipe.stages.data_prep --out_dir data "$@"
