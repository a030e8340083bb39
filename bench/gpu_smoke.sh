#!/usr/bin/env bash
# GPU smoke check (a few minutes on one GPU; `make gpu-smoke`): every pruning method trained a few
# steps through ESPnet's trainer with --ngpu 1 and decoded on the GPU (tests/gpu), and the CUDA
# cases of the pathway-isolation property tests (methods x optimizers x accumulation x events).
# Fails when there is no GPU (the same tests skip their CUDA cases on a CPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export MPLCONFIGDIR=${MPLCONFIGDIR:-$(mktemp -d)}
"$PYTHON" - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("gpu_smoke: torch sees no CUDA device")
print("gpu_smoke:", torch.cuda.get_device_name(0), "torch", torch.__version__)
PY
"$PYTHON" -m pytest -q -rs tests/gpu tests/pruning/test_isolation.py -k "cuda or gpu" "$@"
