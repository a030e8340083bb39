"""Stages 12-13: decode and score every phase marked for decoding (a single config is one phase).

Which phases: ``decode: true``, or by default the last phase and every pruning phase
(:func:`espnet_pathways.recipe.phases.decoded_phases`). Which sets: a phase with ``languages``
(a monolingual model) only the test sets of its languages, every other phase (the dense and the
pathway models) every test set; each set is decoded with ``--lang <the set's language>``. Each
phase decodes ``<exp>/<model_file>`` with ``<exp>/config.yaml`` into ``<exp>/decode_<tag>/``
(:mod:`espnet_pathways.recipe.stages.decode`, skipped when up to date), is scored into ``<exp>/RESULTS.md``
(:mod:`espnet_pathways.recipe.stages.score`, with the pathway sparsity of its masks), and stage 13 of a
phases file ends with the combined ``<expdir>/RESULTS.md`` (:mod:`espnet_pathways.recipe.stages.phase_results`).
``--lid_eval true`` (both steps) also decodes every set with ``--lang auto`` and reports language
identification in the ``RESULTS.md`` of each phase with a mask per language (ASR Pathways, Dynamic
ASR Pathways); the other phases (dense, one mask) are evaluated as without it.

Usage::

    python -m espnet_pathways.recipe.stages.phase_eval decode --phases_config conf/phases/table1.yaml --expdir exp \
        --langs "en fr it nl" --data_root dump/raw --test_sets "mls_en_test mls_fr_test" \
        --inference_tag streaming_asr_model_valid.loss.ave --model_file valid.loss.ave.pth \
        --inference_config conf/decode_streaming.yaml --inference_nj 4
    python -m espnet_pathways.recipe.stages.phase_eval score --phases_config ... --expdir exp --langs ... \
        --data_root dump/raw --test_sets ... --inference_tag ... --cmd "./run.sh --stage 13"
    # one config: --train_config conf/train.yaml --asr_exp exp/asr_x instead of --phases_config
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from espnet_pathways.utils.cli import run_cli, str2bool
from espnet_pathways.recipe.datadir import single_language
from espnet_pathways.recipe.stages.decode import (
    DEFAULT_MODULE,
    DecodeOptions,
    add_lid_arguments,
    decode_progress,
    decode_sets,
)
from espnet_pathways.recipe.stages.phase_results import write_results_table
from espnet_pathways.recipe.phases import Phase, add_phases_arguments, decoded_phases, phases_from_args
from espnet_pathways.recipe.sclite import find_sclite
from espnet_pathways.recipe.stages.score import score_decode_dir

__all__ = ["decode_dir_of", "eval_plan", "identifies_language", "lid_plan", "decode_phases", "score_phases", "main"]


def decode_dir_of(phase: Phase, inference_tag: str) -> Path:
    return phase.exp_dir / f"decode_{inference_tag}"


def eval_plan(phases: Sequence[Phase], data_root: Path, test_sets: Sequence[str]) -> List[Tuple[Phase, List[str]]]:
    """(phase, its test sets) for every phase to decode, in phase order."""
    if not test_sets:
        raise ValueError("no test set given")
    set_langs = {name: single_language(Path(data_root) / name) for name in test_sets}
    plan = []
    for phase in decoded_phases(phases):
        sets = [s for s in test_sets if not phase.languages or set_langs[s] in phase.languages]
        if not sets:
            logging.warning(
                "phase %s: no test set of its language(s) %s among %s; not decoded",
                phase.name, ", ".join(phase.languages), " ".join(test_sets),
            )
            continue
        plan.append((phase, sets))
    if not plan:
        raise ValueError("no phase to decode (see the phases' `decode` and `languages` keys)")
    return plan


def identifies_language(phase: Phase) -> bool:
    """Whether ``--lang auto`` can decode the phase's model: its method keeps a mask per language."""
    return phase.method is not None and phase.method.mask_keys == "all"


def lid_plan(plan: Sequence[Tuple[Phase, List[str]]], lid_eval: bool) -> List[Tuple[Phase, List[str], bool]]:
    """(phase, sets, evaluate LID) of a plan; names the phases ``lid_eval`` leaves out."""
    out = []
    for phase, sets in plan:
        lid = lid_eval and identifies_language(phase)
        if lid_eval and not lid:
            logging.info("phase %s: no mask per language; no --lang auto evaluation", phase.name)
        out.append((phase, sets, lid))
    return out


def decode_phases(
    phases: Sequence[Phase],
    data_root: Path,
    test_sets: Sequence[str],
    inference_tag: str,
    model_file: str,
    inference_config: Optional[Path] = None,
    inference_args: Sequence[str] = (),
    nj: int = 1,
    ngpu: int = 0,
    python: str = sys.executable,
    module: str = DEFAULT_MODULE,
    lid_eval: bool = False,
    lid_args: Sequence[str] = (),
) -> List[Tuple[Phase, List[str]]]:
    """Decode every planned phase (stage 12), a progress line per set over them all (``lid_eval``:
    also with ``--lang auto``); returns the plan."""
    plan = lid_plan(eval_plan(phases, data_root, test_sets), lid_eval)
    progress = decode_progress(Path(data_root), [name for _, sets, lid in plan for name in sets for _ in range(1 + lid)])
    for phase, sets, lid in plan:
        logging.info("phase %s: decoding %s", phase.name, " ".join(sets))
        opts = DecodeOptions(
            model_file=phase.exp_dir / model_file,
            train_config=phase.exp_dir / "config.yaml",
            inference_config=inference_config,
            inference_args=tuple(inference_args),
            python=python,
            module=module,
            ngpu=ngpu,
            nj=nj,
        )
        decode_sets(opts, Path(data_root), sets, decode_dir_of(phase, inference_tag), progress, lid, lid_args)
    return [(phase, sets) for phase, sets, _ in plan]


def score_phases(
    phases: Sequence[Phase],
    expdir: Optional[Path],
    data_root: Path,
    test_sets: Sequence[str],
    inference_tag: str,
    sclite: str,
    cmd: str,
    langs: Optional[Sequence[str]] = None,
    title: str = "",
    lid_eval: bool = False,
) -> Path:
    """Score every planned phase (its ``RESULTS.md``; ``lid_eval``: with language identification), then
    write ``<expdir>/RESULTS.md`` (stage 13); returns its path (``expdir`` None: no combined table; the
    last phase's ``RESULTS.md``)."""
    for phase, sets, lid in lid_plan(eval_plan(phases, data_root, test_sets), lid_eval):
        path = score_decode_dir(decode_dir_of(phase, inference_tag), Path(data_root), sets, sclite, cmd, lid)
        logging.info("phase %s: %s", phase.name, path)
    if expdir is None:
        return path
    path = write_results_table(phases, expdir, inference_tag, langs, title)
    logging.info("combined results: %s", path)
    return path


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    for name in ("decode", "score"):
        p = sub.add_parser(name)
        add_phases_arguments(p)
        p.add_argument("--data_root", type=Path, required=True, help="folder of the sets (dump/raw)")
        p.add_argument("--test_sets", required=True, help="space-separated set names")
        p.add_argument("--inference_tag", required=True, help="decode dirs are <phase exp>/decode_<tag>")
    dec = sub.choices["decode"]
    dec.add_argument("--model_file", required=True, help="checkpoint in each phase's exp dir")
    dec.add_argument("--inference_config", default="", help="decoding YAML ('' for none)")
    dec.add_argument("--inference_args", default="", help="extra options for every job (shell words)")
    dec.add_argument("--inference_nj", type=int, default=1)
    dec.add_argument("--ngpu", type=int, default=0)
    dec.add_argument("--python", default=sys.executable)
    dec.add_argument("--inference_module", default=DEFAULT_MODULE)
    add_lid_arguments(dec)
    sco = sub.choices["score"]
    sco.add_argument("--sclite", default=None, help="sclite executable (default: $PATH, then sctk's)")
    sco.add_argument("--cmd", default="", help="the command to record in RESULTS.md")
    sco.add_argument("--lid_eval", type=str2bool, default=False, help="also score the --lang auto decodings")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)

    def work() -> None:
        langs, phases = phases_from_args(args)
        test_sets = args.test_sets.split()
        if args.step == "decode":
            decode_phases(
                phases, args.data_root, test_sets, args.inference_tag, args.model_file,
                inference_config=Path(args.inference_config) if args.inference_config else None,
                inference_args=shlex.split(args.inference_args), nj=args.inference_nj, ngpu=args.ngpu,
                python=args.python, module=args.inference_module, lid_eval=args.lid_eval,
                lid_args=shlex.split(args.lid_args),
            )
        else:
            score_phases(  # one config: its RESULTS.md only
                phases, args.expdir if args.phases_config else None, args.data_root, test_sets, args.inference_tag,
                find_sclite(args.sclite), args.cmd, langs, str(args.phases_config), args.lid_eval,
            )

    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
