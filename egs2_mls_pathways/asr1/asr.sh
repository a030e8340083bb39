#!/usr/bin/env bash
# Stage script of the MLS pathways recipe: ESPnet's stage numbers and flag names where the job is
# the same. Every stage is a thin call of one Python entry point (espnet_pathways.recipe.stages.*),
# which does the work, skips it when its outputs are complete (stamps written last) and fails with
# a message naming the bad file/line.
#
#   1  data prep      local/data.sh -> data/{mls_<lang>_{train,dev,test},train,dev,lang_list.txt}
#   3  format         data/<set> -> <dumpdir>/raw/org/{train,valid} and <dumpdir>/raw/<test sets>
#   4  filter         <dumpdir>/raw/org/<set> -> <dumpdir>/raw/<set> (duration limits, empty text)
#   5  token list     <dumpdir>/raw/<train_set> -> data/token_list/<token_tag>/{<lang>.model,tokens.txt}
#  10  collect stats  -> <expdir>/asr_stats_raw_<token_tag>/{train,valid}/
#  11  training       the training phases (a --train_config is one) -> <asr_exp>/ (or each phase's exp dir)
#  12  decoding       <asr_exp>/decode_<inference_tag>/<test_set>/{text,token,token_int,score}
#  13  scoring        .../<test_set>/score_{wer,cer}/{ref.trn,hyp.trn,result.txt}, <asr_exp>/RESULTS.md
#                     (a phases file: also <expdir>/RESULTS.md over its phases)
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*" >&2
}

run_cmd="$(printf '%q ' "$0" "$@")"
run_cmd="${run_cmd% }"

# ---- options (every variable in this block is a --flag; defaults are run.sh's to override) ----
stage=1                  # first stage to run
stop_stage=10000         # last stage to run
python=python3           # Python interpreter with espnet_pathways installed
nj=4                     # parallel jobs of stages 1, 3 and 10
inference_nj=4           # parallel decoding jobs per test set (stage 12)
ngpu=0                   # GPUs per node for training (0: CPU)
num_procs=auto           # training processes per node (>1: torchrun; with ngpu 0: gloo on CPU)
num_threads=auto         # threads per training process; auto: on CPU P = largest divisor of the batch
                         # size <= min(cores, 8), T = cores / P (README.md); with GPUs 1 x 1
num_nodes=1              # training nodes (>1 needs --launcher torchrun or slurm)
launcher=local           # local | torchrun (run on every node with its --node_rank) | slurm (srun)
node_rank=0              # this node's rank (torchrun, several nodes)
master_addr=             # rendezvous host (torchrun, several nodes)
master_port=29500        # rendezvous port (torchrun, several nodes)
gpu_inference=false      # decode on GPU (one per job)
dumpdir=dump             # formatted data
expdir=exp               # experiments
# data (stage 1)
langs="en fr it nl"      # language codes; their order defines the language ids
mls_root=                # MLS release root; empty: generate the embedded espeak-ng corpus
corpus_size=demo         # size of the embedded corpus: ci | demo | large | repro
corpus_dir=              # where to generate it (default: downloads/mini_mls_<corpus_size>[_<lang_scale>])
corpus_seed=0            # seed of the embedded corpus
lang_scale=              # embedded corpus: train-size multipliers per language, e.g. "en:4 it:0.25" (unlisted: 1)
train_subset=full        # MLS training subset: 1h | 10h | full
skip_bad_utts=false      # drop unreadable/empty utterances instead of failing
train_set=train          # merged training set
valid_set=dev            # merged validation set
test_sets=               # decoded sets (default: mls_<lang>_test and mls_<lang>_dev of --langs)
# format / filter (stages 3-4)
fs=16000                 # sample rate (Hz) every file must have
min_wav_duration=0.1     # seconds
max_wav_duration=20      # seconds
# tokens (stage 5)
token_type=bpe           # bpe (SentencePiece, --bpemode) | char (SentencePiece characters) | auto: bpe if
                         # --nbpe or --bpemode is given after --token_type auto, else char
bpemode=unigram          # unigram | bpe
nbpe=512                 # pieces per language: "N" or "en:N fr:N ..."
bpe_seed=0               # SentencePiece seed
bpe_hard_vocab_limit=true  # fail if a language's text cannot give nbpe pieces (false: fewer)
# training (stages 10-11)
train_config=            # training YAML (single phase)
phases_config=           # YAML list of training phases (replaces --train_config; see recipe.phases)
phase_seeds=             # run only these seeds' phases of the phases file (and unseeded ones), e.g. "1 2"
phase_groups=            # run only these entries of the phases file (and the phases they start from)
import_phases=           # phases imported from archives instead of trained (recipe.phase_archive), e.g.
                         # "dense=reproduction/theta0_b/asr_dense.tar"
asr_tag=                 # experiment name suffix (default from the config and token list)
asr_exp=                 # experiment dir (default: <expdir>/asr_<asr_tag>)
asr_stats_dir=           # default: <expdir>/asr_stats_raw_<token_tag>
asr_args=                # extra training options, e.g. "--max_epoch 1"
feats_normalize=global_mvn  # global_mvn (stage 10 stats) | utterance_mvn | none
asr_speech_fold_length=800  # fold length of speech (x100 samples)
asr_text_fold_length=150    # fold length of text
# decoding / scoring (stages 12-13)
inference_config=conf/decode_streaming.yaml  # decoding YAML ("" for none)
inference_args=          # extra decoding options
inference_asr_model=valid.loss.ave.pth       # checkpoint to decode (in the exp dir)
inference_tag=           # default: <config name without decode_>_asr_model_<model name>
sclite=                  # sclite binary (default: $PATH, then /usr/lib/sctk/bin/sclite)
lid_eval=false           # stages 12-13: also decode each test set with --lang auto; RESULTS.md: LID accuracy, WER auto vs true lang
lid_args=                # extra options of the --lang auto decoding, e.g. "--lid_chunks 8"
_options=" $(sed -n '/^# ---- options/,/^# ---- end of options/p' "$0" | grep -oE '^[a-z][a-z_]*=' | tr -d '=' | tr '\n' ' ')"
# ---- end of options ----

usage() {
    echo "Usage: $0 [--option value] ..."
    echo "Options (current value):"
    for name in ${_options}; do printf '  --%-24s %s\n' "${name}" "${!name}"; done
}

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --*=*) name=${1%%=*}; value=${1#*=}; shift ;;
        --*) if [ $# -lt 2 ]; then log "Error: $1 needs a value"; exit 2; fi
             name=$1; value=$2; shift 2 ;;
        *) log "Error: unexpected argument '$1' (options are --name value; see --help)"; exit 2 ;;
    esac
    name=${name#--}; name=${name//-/_}
    if [[ "${_options}" != *" ${name} "* ]]; then
        log "Error: unknown option --${name} (see --help)"; exit 2
    fi
    printf -v "${name}" '%s' "${value}"
    case "${name}" in token_type) pieces_asked=false ;; nbpe|bpemode) pieces_asked=true ;; esac
done

. ./path.sh

# ---- derived settings ----
[ -z "${corpus_dir}" ] && corpus_dir=downloads/mini_mls_${corpus_size}${lang_scale:+_$(echo ${lang_scale} | tr ' :' '_-')}
if [ -z "${test_sets}" ]; then
    for lang in ${langs}; do test_sets+="mls_${lang}_test mls_${lang}_dev "; done
fi
if [ "${token_type}" = auto ]; then
    token_type=char; [ "${pieces_asked:-false}" = true ] && token_type=bpe
fi
if [ "${token_type}" = char ]; then
    token_tag=char
else
    token_tag=${token_type}_${bpemode}$(echo "${nbpe}" | tr -d ' :,')
fi
token_dir=data/token_list/${token_tag}
data_feats=${dumpdir}/raw
[ -z "${asr_stats_dir}" ] && asr_stats_dir=${expdir}/asr_stats_raw_${token_tag}
if [ -z "${asr_tag}" ]; then
    if [ -n "${train_config}" ]; then
        asr_tag="$(basename "${train_config}" .yaml)_raw_${token_tag}"
    else
        asr_tag=train_raw_${token_tag}
    fi
fi
[ -z "${asr_exp}" ] && asr_exp=${expdir}/asr_${asr_tag}
if [ -z "${train_config}" ] && [ -z "${phases_config}" ] && [ "${stop_stage}" -ge 10 ]; then
    log "Error: stages 10-13 need --train_config (one training run) or --phases_config (several phases)"
    exit 2
fi
# stages 10-13 run the training phases (recipe.phases); a --train_config alone is one phase into ${asr_exp}
if [ -n "${phases_config}" ]; then
    phase_opts=(--phases_config "${phases_config}" --expdir "${expdir}" --seeds "${phase_seeds}" --groups "${phase_groups}")
    phases_desc="the phases of ${phases_config} (exp dirs under ${expdir})"
else
    phase_opts=(--train_config "${train_config}" --asr_exp "${asr_exp}")
    phases_desc="${train_config} (exp dir ${asr_exp})"
fi
if [ -z "${inference_tag}" ]; then
    if [ -n "${inference_config}" ]; then
        inference_tag="$(basename "${inference_config}" .yaml)"
        inference_tag=${inference_tag#decode_}
    else
        inference_tag=default
    fi
    inference_tag+="_asr_model_$(echo "${inference_asr_model}" | sed -e 's/\//_/g' -e 's/\.[^.]*$//')"
fi
gpu_ngpu=0
[ "${gpu_inference}" = true ] && gpu_ngpu=1

if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
    log "Stage 1: data preparation (langs: ${langs}; MLS: ${mls_root:-embedded ${corpus_size} corpus in ${corpus_dir}})"
    PYTHON=${python} local/data.sh --langs "${langs}" --mls_root "${mls_root}" --corpus_dir "${corpus_dir}" \
        --corpus_size "${corpus_size}" --corpus_seed "${corpus_seed}" --lang_scale "${lang_scale}" --train_subset "${train_subset}" \
        --skip_bad_utts "${skip_bad_utts}" --nj "${nj}"
fi

if [ ${stage} -le 3 ] && [ ${stop_stage} -ge 3 ]; then
    log "Stage 3: format data into ${data_feats}"
    for dset in "${train_set}" "${valid_set}" ${test_sets}; do
        if [ "${dset}" = "${train_set}" ] || [ "${dset}" = "${valid_set}" ]; then
            dst=${data_feats}/org/${dset}
        else
            dst=${data_feats}/${dset}
        fi
        ${python} -m espnet_pathways.recipe.stages.format_data --src "data/${dset}" --dst "${dst}" \
            --lang_list data/lang_list.txt --fs "${fs}" --nj "${nj}"
    done
fi

if [ ${stage} -le 4 ] && [ ${stop_stage} -ge 4 ]; then
    log "Stage 4: remove utterances shorter than ${min_wav_duration} s, longer than ${max_wav_duration} s or without text"
    for dset in "${train_set}" "${valid_set}"; do
        ${python} -m espnet_pathways.recipe.stages.filter_data --src "${data_feats}/org/${dset}" --dst "${data_feats}/${dset}" \
            --fs "${fs}" --min_wav_duration "${min_wav_duration}" --max_wav_duration "${max_wav_duration}"
    done
fi

if [ ${stage} -le 5 ] && [ ${stop_stage} -ge 5 ]; then
    log "Stage 5: per-language SentencePiece (${token_type}, ${bpemode}, nbpe ${nbpe}) -> ${token_dir}"
    ${python} -m espnet_pathways.recipe.stages.token_list --train_dir "${data_feats}/${train_set}" --out_dir "${token_dir}" \
        --token_type "${token_type}" --bpemode "${bpemode}" --nbpe "${nbpe}" --seed "${bpe_seed}" \
        --hard_vocab_limit "${bpe_hard_vocab_limit}"
fi

if [ ${stage} -le 10 ] && [ ${stop_stage} -ge 10 ]; then
    log "Stage 10: collect statistics -> ${asr_stats_dir}"
    stats_config=$(${python} -m espnet_pathways.recipe.stages.phases "${phase_opts[@]}" --langs "${langs}" \
        --which first --field config)  # the first phase's (first) config file
    ${python} -m espnet_pathways.recipe.stages.collect_stats --train_dir "${data_feats}/${train_set}" \
        --valid_dir "${data_feats}/${valid_set}" --token_dir "${token_dir}" --train_config "${stats_config}" \
        --stats_dir "${asr_stats_dir}" --nj "${nj}" --fs "${fs}" --python "${python}" --asr_args "${asr_args}"
fi

if [ ${stage} -le 11 ] && [ ${stop_stage} -ge 11 ]; then
    log "Stage 11: training ${phases_desc}"
    ${python} -m espnet_pathways.recipe.stages.train "${phase_opts[@]}" --train_dir "${data_feats}/${train_set}" \
        --valid_dir "${data_feats}/${valid_set}" --token_dir "${token_dir}" --stats_dir "${asr_stats_dir}" \
        --model_file "${inference_asr_model}" --feats_normalize "${feats_normalize}" --fs "${fs}" \
        --speech_fold_length "${asr_speech_fold_length}" --text_fold_length "${asr_text_fold_length}" \
        --asr_args "${asr_args}" --import_phases "${import_phases}" --python "${python}" --ngpu "${ngpu}" \
        --num_procs "${num_procs}" --num_threads "${num_threads}" --num_nodes "${num_nodes}" --launcher "${launcher}" \
        --node_rank "${node_rank}" \
        ${master_addr:+--master_addr "${master_addr}"} --master_port "${master_port}"
fi

if [ ${stage} -le 12 ] && [ ${stop_stage} -ge 12 ]; then
    log "Stage 12: decoding ${test_sets} with ${phases_desc} -> <exp>/decode_${inference_tag}"
    ${python} -m espnet_pathways.recipe.stages.phase_eval decode "${phase_opts[@]}" --langs "${langs}" \
        --data_root "${data_feats}" --test_sets "${test_sets}" --inference_tag "${inference_tag}" --model_file "${inference_asr_model}" \
        --inference_config "${inference_config}" --inference_args "${inference_args}" \
        --lid_eval "${lid_eval}" --lid_args "${lid_args}" \
        --inference_nj "${inference_nj}" --ngpu "${gpu_ngpu}" --python "${python}"
fi

if [ ${stage} -le 13 ] && [ ${stop_stage} -ge 13 ]; then
    log "Stage 13: scoring ${phases_desc} -> <exp>/RESULTS.md${phases_config:+, ${expdir}/RESULTS.md}"
    ${python} -m espnet_pathways.recipe.stages.phase_eval score "${phase_opts[@]}" --langs "${langs}" \
        --data_root "${data_feats}" --test_sets "${test_sets}" --inference_tag "${inference_tag}" --cmd "${run_cmd}" \
        --lid_eval "${lid_eval}" \
        ${sclite:+--sclite "${sclite}"}
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
