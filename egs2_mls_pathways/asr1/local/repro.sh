#!/usr/bin/env bash
# The reproduction (conf/phases/repro.yaml) on the imbalanced embedded corpus, resumable: every
# stage and phase already done is skipped, so a killed run picks up where it stopped.
#   local/repro.sh                 # from the recipe dir (or: make repro)
# Order: the key rows for seeds 1, 2, 3 first, then the remaining rows (IMP family, monolingual
# dense control) seed by seed; exp/RESULTS.md over every seed, then REPRODUCTION.md and
# bench/results/repro/ from the finished runs (recipe.stages.repro_report).
# The committed report and JSON come from one dense θ0; θ0 retrained on a VM with another CPU ends
# elsewhere, and the report refuses to mix its runs with the archived ones: give them their own
#   REPRO_JSON_DIR=../../bench/results/repro_theta0_b REPRO_REPORT=reproduction/theta0_b.md local/repro.sh
# θ0 B (reproduction/theta0_b.md) is archived: on any machine, its rows are extended from its own
# weights (imported instead of trained; the corpus must be the one it was trained on):
#   REPRO_JSON_DIR=../../bench/results/repro_theta0_b REPRO_REPORT=reproduction/theta0_b.md \
#       local/repro.sh --import_phases dense=reproduction/theta0_b/asr_dense.tar
set -euo pipefail
cd "$(dirname "$0")/.."

corpus=(--corpus_size repro --lang_scale "en:4 it:0.25")
test_sets="mls_en_test mls_fr_test mls_it_test mls_nl_test"
phases=(--phases_config conf/phases/repro.yaml --test_sets "${test_sets}")
key_rows="dense_continued lap lth pathways_lth adaptive_lth pathways_lap dynamic_lth dynamic_lap"
seeds="1 2 3"

./run.sh "${corpus[@]}" "${phases[@]}" --stop_stage 10 "$@"
for seed in ${seeds}; do
    ./run.sh "${corpus[@]}" "${phases[@]}" --stage 11 --stop_stage 13 --phase_seeds "${seed}" \
        --phase_groups "${key_rows}" "$@"
done
for seed in ${seeds}; do
    ./run.sh "${corpus[@]}" "${phases[@]}" --stage 11 --stop_stage 13 --phase_seeds "${seed}" "$@"
done
./run.sh "${corpus[@]}" "${phases[@]}" --stage 13 --stop_stage 13 "$@"
. ./path.sh
report=${REPRO_REPORT:-REPRODUCTION.md}
plots=reproduction  # the committed report's plots; another report's beside it: reproduction/theta0_b/
if [ -n "${REPRO_REPORT:-}" ]; then plots=${report%.md}; fi
python -m espnet_pathways.recipe.stages.repro_report --phases_config conf/phases/repro.yaml --expdir exp \
    --lang_list dump/raw/train/lang_list.txt --out "${report}" --plot_dir "${plots}" \
    --json_dir "${REPRO_JSON_DIR:-../../bench/results/repro}"
