"""Stage 13: score decoded sets with sclite, then (re)write the experiment's ``RESULTS.md``.

Usage::

    python -m espnet_pathways.recipe.stages.score --decode_dir exp/asr_x/decode_streaming_asr_model_valid.loss.ave \
        --data_root dump/raw --test_sets "mls_en_test mls_fr_test" --cmd "./run.sh --stage 13"

For each set, from ``<data_root>/<set>/{text,utt2spk}`` (reference) and ``<decode_dir>/<set>/text``
(hypotheses, stage 12) it writes ``<decode_dir>/<set>/score_wer/{ref.trn,hyp.trn,result.txt}`` and
``score_cer/`` (characters, ``<space>`` between words), with
``sclite -r ref.trn trn -h hyp.trn trn -i rm -o all stdout > result.txt``. The summaries and the
command go to ``<decode_dir>/scoring.json``; ``RESULTS.md`` of the experiment (the decode dir's
parent) is rebuilt from every scored decode dir.

``--lid_eval true`` also scores each set's ``--lang auto`` decoding (``<set>/lang_auto/``, stage 12
with ``--lid_eval true``) the same way and compares its chosen languages (``lang_auto/lang``) with
``utt2lang``: per set the accuracy, the counts of chosen languages and the WER/CER summaries go to
``<decode_dir>/lid.json`` (without ``--lid_eval``, a ``lid.json`` left by an earlier run is removed,
so ``RESULTS.md`` describes this run's scoring only).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet_pathways.data.kaldi import read_kaldi_file
from espnet_pathways.utils.cli import run_cli, str2bool
from espnet_pathways.recipe.datadir import read_data_dir, single_language
from espnet_pathways.recipe.stages.results import LID_FILE, LID_JSON, LID_SUBDIR, SCORING_JSON, write_results_md
from espnet_pathways.recipe.sclite import ScliteSummary, find_sclite, parse_result, run_sclite
from espnet_pathways.utils.stamp import fingerprint, is_done, write_stamp
from espnet_pathways.recipe.trn import write_trn
from espnet_pathways.utils.fileio import atomic_write_text

__all__ = ["METRICS", "score_set", "language_identification", "score_lid", "score_decode_dir", "main"]

# metric -> (score dir, trn tokenisation)
METRICS = {"wer": ("score_wer", "word"), "cer": ("score_cer", "char")}
_STAMP = "score.done"


def _hypotheses(path: Path, ref_keys: Sequence[str]) -> Dict[str, str]:
    if not path.is_file():
        raise FileNotFoundError(f"missing hypotheses: {path} (run stage 12 first)")
    hyp = read_kaldi_file(path, allow_empty=True)
    missing = [k for k in ref_keys if k not in hyp]
    extra = sorted(set(hyp) - set(ref_keys))
    if missing or extra:
        raise ValueError(
            f"{path}: hypotheses do not match the reference: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(extra)} unknown (e.g. {extra[:3]})"
        )
    return hyp


def score_set(set_dir: Path, data_dir: Path, sclite: str) -> Dict[str, ScliteSummary]:
    """Score one decoded set (see the module docstring); skipped when its stamp is current."""
    params = {"step": "score", "data_dir": str(data_dir)}
    fp = fingerprint(params, [data_dir / "text", data_dir / "utt2spk", set_dir / "text"])
    if not is_done(set_dir / _STAMP, fp):
        ref = read_data_dir(data_dir, ("text", "utt2spk"))
        keys = sorted(ref["text"], key=lambda k: k.encode("utf-8"))
        hyp = _hypotheses(set_dir / "text", keys)
        for score_dir, mode in METRICS.values():
            out = set_dir / score_dir
            write_trn(out / "ref.trn", ref["text"], ref["utt2spk"], keys, mode)
            write_trn(out / "hyp.trn", hyp, ref["utt2spk"], keys, mode)
            run_sclite(out / "ref.trn", out / "hyp.trn", out / "result.txt", sclite)
        write_stamp(set_dir / _STAMP, fp, params)
    else:
        logging.info("%s: scores are up to date", set_dir)
    return {metric: parse_result(set_dir / score_dir / "result.txt") for metric, (score_dir, _) in METRICS.items()}


def language_identification(chosen_file: Path, data_dir: Path) -> Dict[str, object]:
    """Chosen languages (``utt lang``) against ``<data_dir>/utt2lang``: ``snt``, ``correct``, ``chosen``
    (counts per language, sorted)."""
    truth = read_kaldi_file(data_dir / "utt2lang")
    if not chosen_file.is_file():
        raise FileNotFoundError(f"missing {chosen_file} (run stage 12 with --lid_eval true)")
    chosen = read_kaldi_file(chosen_file)
    missing = [k for k in truth if k not in chosen]
    if missing:
        raise ValueError(f"{chosen_file}: no language for {len(missing)} utterance(s) of {data_dir} (e.g. {missing[:3]})")
    counts = Counter(chosen[k] for k in truth)
    return {
        "snt": len(truth),
        "correct": sum(chosen[k] == lang for k, lang in truth.items()),
        "chosen": dict(sorted(counts.items())),
    }


def score_lid(decode_dir: Path, data_root: Path, test_sets: Sequence[str], sclite: str) -> Path:
    """Score every set's ``--lang auto`` decoding and write ``<decode_dir>/lid.json``; returns its path."""
    sets = {}
    for name in test_sets:
        auto_dir = decode_dir / name / LID_SUBDIR
        summaries = score_set(auto_dir, data_root / name, sclite)
        lid = language_identification(auto_dir / LID_FILE, data_root / name)
        sets[name] = {"lang": single_language(data_root / name), **lid, **{m: asdict(s) for m, s in summaries.items()}}
        logging.info("%s --lang auto: LID %d/%d, WER %.2f%%", name, lid["correct"], lid["snt"], summaries["wer"].err)
    path = decode_dir / LID_JSON
    atomic_write_text(path, json.dumps({"sets": sets}, indent=1) + "\n")
    return path


def score_decode_dir(
    decode_dir: Path, data_root: Path, test_sets: Sequence[str], sclite: str, cmd: str, lid_eval: bool = False
) -> Path:
    """Score every set of ``decode_dir``, write ``scoring.json`` (``lid_eval``: and ``lid.json``) and the
    experiment's ``RESULTS.md``.

    Returns:
        The path of ``RESULTS.md``.
    """
    if not test_sets:
        raise ValueError("no test set given")
    summary = {}
    for name in test_sets:
        summaries = score_set(decode_dir / name, data_root / name, sclite)
        summary[name] = {"lang": single_language(data_root / name), **{m: asdict(s) for m, s in summaries.items()}}
        logging.info("%s: WER %.2f%%  CER %.2f%%", name, summaries["wer"].err, summaries["cer"].err)
    atomic_write_text(decode_dir / SCORING_JSON, json.dumps({"command": cmd, "sets": summary}, indent=1) + "\n")
    if lid_eval:
        score_lid(decode_dir, data_root, test_sets, sclite)
    elif (decode_dir / LID_JSON).is_file():
        logging.info("%s: removing %s of an earlier --lid_eval run", decode_dir, LID_JSON)
        (decode_dir / LID_JSON).unlink()
    return write_results_md(decode_dir.parent)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decode_dir", type=Path, required=True, help="exp/<asr_exp>/decode_<tag>")
    parser.add_argument("--data_root", type=Path, required=True, help="folder of the sets' data dirs (dump/raw)")
    parser.add_argument("--test_sets", required=True, help="space-separated set names")
    parser.add_argument("--sclite", default=None, help="sclite executable (default: $PATH, then sctk's)")
    parser.add_argument("--cmd", default="", help="the command to record in RESULTS.md")
    parser.add_argument("--lid_eval", type=str2bool, default=False, help="also score <set>/lang_auto/ (lid.json)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    return run_cli(
        lambda: score_decode_dir(args.decode_dir, args.data_root, args.test_sets.split(), find_sclite(args.sclite),
                                 args.cmd, args.lid_eval)
    )


if __name__ == "__main__":
    sys.exit(main())
