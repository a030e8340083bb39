#!/usr/bin/env bash
# Add a language to a trained pathways model and continue Dynamic ASR Pathways
# (conf/phases/extend_es.yaml; README.md, "Adding a language"). From the recipe dir, after the base
# phases (./run.sh --stage 10 --phases_config conf/phases/demo_pathways.yaml):
#   local/extend.sh [run.sh options, e.g. --corpus_size ci]
# The settings below can be given in the environment, e.g. lang=pt base_langs="en fr" local/extend.sh
# 1. data of the base languages and the new one, formatted into their own dump dir (data/ is
#    rewritten with every language; the base runs' dump/ is left alone);
# 2. the merged token list, the grown checkpoint and masks, the config overlay (exp/extend_<lang>);
# 3. statistics of the new training set (tokenized with the merged list), the extension phases,
#    decoding and scoring; then the
#    frozen phase is decoded on every language's test set (its phase trains on the new language
#    only, so stages 12-13 of the phases run decode it on that language's sets);
# 4. exp/extend_<lang>/REPORT.md (+ .json): per existing language, the WER of the base model and of
#    both runs, each run's change with its paired-bootstrap interval and the share of hypotheses
#    identical to the base model's; the new language's WER (recipe.stages.extend_report).
set -euo pipefail
cd "$(dirname "$0")/.."

base_langs=${base_langs:-"en fr it nl"}
lang=${lang:-es}
base_exp=${base_exp:-exp/asr_dynamic_pathways_lap}  # the trained pathways model
init_mask=${init_mask:-exp/asr_lap/masks.pwm}      # the new language's initial mask (LAP: the shared one)
token_dir=${token_dir:-data/token_list/char}       # the base model's token list (run.sh's default units)
token_type=${token_type:-char}
phases=${phases:-conf/phases/extend_${lang}.yaml}
train_config=${train_config:-conf/train_asr_emformer_demo.yaml}  # the model's config (statistics)
nj=${nj:-2}
inference_tag=${inference_tag:-streaming_asr_model_valid.loss.ave}  # run.sh's default decoding
dump=dump_ext_${lang}
stats=exp/asr_stats_ext_${lang}
data=(--langs "${base_langs} ${lang}" --dumpdir "${dump}" --asr_stats_dir "${stats}")

./run.sh "${data[@]}" --stage 1 --stop_stage 4 "$@"
. ./path.sh
python -m espnet_pathways.recipe.stages.extend --lang "${lang}" --token_dir "${token_dir}" \
    --token_type "${token_type}" --train_dir "${dump}/raw/train" --asr_exp "${base_exp}" \
    --init_mask "${init_mask}" --out_dir "exp/extend_${lang}"
# stage 10 with the merged token list (run.sh's stage 10 would tokenize with the base one)
python -m espnet_pathways.recipe.stages.collect_stats --train_dir "${dump}/raw/train" --valid_dir "${dump}/raw/dev" \
    --token_dir "exp/extend_${lang}/token_list" --train_config "${train_config}" --stats_dir "${stats}" \
    --nj "${nj}" --fs 16000 --python python
./run.sh "${data[@]}" --stage 11 --stop_stage 13 --phases_config "${phases}" "$@"
test_sets=""
for l in ${base_langs} ${lang}; do test_sets+="mls_${l}_test "; done
./run.sh "${data[@]}" --stage 12 --stop_stage 13 --train_config "exp/asr_extend_${lang}_frozen/phase_config.yaml" \
    --asr_exp "exp/asr_extend_${lang}_frozen" --test_sets "${test_sets% }" "$@"
decode=decode_${inference_tag}
python -m espnet_pathways.recipe.stages.extend_report --base "${base_exp}/${decode}" --base_langs "${base_langs}" \
    --lang "${lang}" --run frozen "exp/asr_extend_${lang}_frozen/${decode}" \
    --run adapting "exp/asr_extend_${lang}_adapting/${decode}" --out "exp/extend_${lang}/REPORT.md"
