# Environment of the recipe: the project's virtualenv (if present), sclite, one BLAS thread per job
# (training sets its own per process: --num_threads).
MAIN_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
if [ -f "${MAIN_ROOT}/.venv/bin/activate" ] && [ -z "${VIRTUAL_ENV:-}" ]; then
    # shellcheck disable=SC1091
    . "${MAIN_ROOT}/.venv/bin/activate"
fi
export PATH="${PATH}:/usr/lib/sctk/bin"
export OMP_NUM_THREADS=1
export PYTHONIOENCODING=UTF-8
export PYTHONUNBUFFERED=1
export MPLCONFIGDIR="${MPLCONFIGDIR:-${MAIN_ROOT}/.venv/mplconfig}"
