"""Stage 11: run the training phases in order, each skipped when its stamp is current.

Usage::

    python -m espnet_pathways.recipe.stages.train --train_dir dump/raw/train --valid_dir dump/raw/dev \
        --token_dir data/token_list/bpe_unigram512 --stats_dir exp/asr_stats_raw_bpe_unigram512 \
        --train_config conf/train_asr_emformer_demo.yaml --asr_exp exp/asr_train_asr_emformer_demo \
        --model_file valid.loss.ave.pth --ngpu 0 --num_procs auto --num_threads auto
    # several phases: --phases_config conf/phases.yaml --expdir exp (see espnet_pathways.recipe.phases)

Each phase runs ``python -m espnet_pathways.bin.asr_train`` (through the launcher of
:mod:`espnet_pathways.recipe.launch`) with the data, token and shape options, ``--config
<phase config> --output_dir <phase exp> --resume true`` (so an interrupted phase continues from
its checkpoint), ``--init_param`` from an earlier phase if asked, the phase's own args, then
``--asr_args``. The log is ``<phase exp>/train.log``; while it grows, one condensed line per
ESPnet report (steps done/total, loss, elapsed, ETA) goes to the console
(:mod:`espnet_pathways.recipe.progress`). Processes x threads: ``--num_procs``/``--num_threads``,
``auto``: by the rule of :mod:`espnet_pathways.recipe.launch` (the cores, the phase's batch size,
:meth:`~espnet_pathways.recipe.phases.Phase.run_options`).
A phase is done when training exited 0 and left ``<model_file>``; then ``train.done`` is written. A phase with ``languages`` trains on language
subsets of the data (:mod:`espnet_pathways.recipe.subsets`); ``init_masks_from`` and ``languages``
become ``--pruning_conf`` options; several config files are merged into ``<phase exp>/phase_config.yaml``.
A phase named in ``--import_phases <name>=<tar>`` is imported from that archive instead of trained
(:mod:`espnet_pathways.recipe.phase_archive`: a θ0 trained on another machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple

from espnet_pathways.utils.cli import run_cli
from espnet_pathways.utils.fileio import atomic_write_text
from espnet_pathways.recipe.stages.collect_stats import TRAIN_MODULE
from espnet_pathways.recipe.jobs import run_parallel
from espnet_pathways.recipe.launch import LAUNCHERS, LaunchOptions, launch_command
from espnet_pathways.recipe.phase_archive import CHECKPOINT, data_identity, import_phase, parse_imports
from espnet_pathways.utils.lang_list import LANG_LIST
from espnet_pathways.recipe.progress import TrainProgress, follow_log
from espnet_pathways.recipe.phases import Phase, add_phases_arguments, init_mask_phases, phases_from_args
from espnet_pathways.recipe.subsets import phase_data
from espnet_pathways.utils.stamp import fingerprint, is_done, write_stamp
from espnet_pathways.recipe.train_args import data_args, data_files, stats_files, token_args
from espnet_pathways.text.tokenizer import TOKEN_LIST_NAME

__all__ = ["TrainSetup", "phase_args", "run_phases", "main"]

STAMP = "train.done"
STARTED = ".train_started"  # fingerprint of the run whose ESPnet resume state the exp dir holds
RESUME_STATE = (CHECKPOINT, "latest.pth", "*epoch.pth")  # what ESPnet's --resume reads


def drop_stale_resume_state(exp_dir: Path, fp: str) -> None:
    """Keep ``exp_dir``'s resume state only when the run that wrote it had fingerprint ``fp`` (an
    interrupted run of this phase continues); otherwise (changed config, data or masks) remove it,
    so that ESPnet's ``--resume`` does not continue a run of other inputs; then record ``fp``."""
    started = exp_dir / STARTED
    if not (started.is_file() and started.read_text(encoding="utf-8").strip() == fp):
        stale = sorted(p for pattern in RESUME_STATE for p in exp_dir.glob(pattern))
        if stale:
            logging.warning("%s: resume state of other inputs or options (%s); starting afresh",
                            exp_dir, ", ".join(p.name for p in stale))
        for path in stale:
            path.unlink()
        atomic_write_text(started, fp + "\n")


@dataclass(frozen=True)
class TrainSetup:
    """What every phase shares."""

    train_dir: Path
    valid_dir: Path
    token_dir: Path
    stats_dir: Path
    model_file: str = "valid.loss.ave.pth"
    feats_normalize: str = "global_mvn"
    fs: str = "16k"
    speech_fold_length: int = 800
    text_fold_length: int = 150
    asr_args: Tuple[str, ...] = ()
    module: str = TRAIN_MODULE

    def common_args(self) -> List[str]:
        """Token, data, shape and feature options of every phase."""
        return (
            token_args(self.token_dir, self.train_dir / LANG_LIST)
            + data_args(self.train_dir, self.valid_dir)
            + stats_files(self.stats_dir, self.feats_normalize)
            + [
                # raw audio: ESPnet folds speech at fold_length * 100 samples
                "--fold_length", str(self.speech_fold_length * 100),
                "--fold_length", str(self.text_fold_length),
                "--frontend_conf", f"fs={self.fs}",
            ]
        )

    def inputs(self) -> List[Path]:
        """Files whose contents decide whether a finished phase is still up to date."""
        files = data_files(self.train_dir, self.valid_dir)
        return files + [self.token_dir / TOKEN_LIST_NAME, self.stats_dir / "train" / "speech_shape"]


def phase_args(setup: TrainSetup, phase: Phase, phases: Sequence[Phase]) -> List[str]:
    """Training options of ``phase`` (without the launcher's)."""
    args = setup.common_args() + [
        "--config", str(phase.config),
        "--output_dir", str(phase.exp_dir),
        "--resume", "true",
    ]
    if phase.init_from is not None:
        source = next(p for p in phases if p.name == phase.init_from)
        args += ["--init_param", str(source.exp_dir / setup.model_file)]
    args += phase.pruning_args(phases)  # --pruning_conf init_masks=[...] / languages=[...]
    return args + list(phase.args) + list(setup.asr_args)


def _warn_mixed_batches(phase: Phase, kind: str) -> None:
    """Warn when a method that needs monolingual batches would get mixed ones (batch type ``kind``)."""
    method = phase.method
    if method is None or method.batches != "monolingual" or kind == "folded" or len(phase.languages) == 1:
        return  # dense, LAP (mixed batches), category batches, or one language: nothing to mix
    logging.warning(
        "phase %s: batch_type %s ignores utt2category, so batches mix languages; method %s needs "
        "batch_type folded (monolingual batches)", phase.name, kind, method.name,
    )


def run_phases(
    setup: TrainSetup, phases: Sequence[Phase], launch: LaunchOptions, imports: Optional[Mapping[str, Path]] = None
) -> List[Path]:
    """Run every phase not yet done, in order; returns the phases' experiment dirs.

    ``imports``: phase name -> archive of :mod:`espnet_pathways.recipe.phase_archive`, imported
    (after checking its data against the phase's) instead of training that phase.
    """
    imports = dict(imports or {})
    unknown = sorted(set(imports) - {p.name for p in phases})
    if unknown:
        raise ValueError(f"--import_phases: no phase named {', '.join(unknown)} (phases: "
                         f"{', '.join(p.name for p in phases)})")
    all_setup = setup
    for phase in phases:
        phase.write_config()  # <exp>/phase_config.yaml of a phase with several config files
        dirs = phase_data(all_setup.train_dir, all_setup.valid_dir, all_setup.stats_dir, phase.languages)
        setup = dataclasses.replace(all_setup, train_dir=dirs[0], valid_dir=dirs[1], stats_dir=dirs[2])
        args = phase_args(setup, phase, phases)
        opts = phase.run_options(setup.asr_args)
        _warn_mixed_batches(phase, opts.batch_type)
        phase_launch = launch.resolve(opts.batch_size)
        if launch.launcher == "slurm":  # a fresh shared file for each rendezvous
            phase_launch = dataclasses.replace(phase_launch, init_file=phase.exp_dir / ".dist_init")
        cmd = launch_command(setup.module, args, phase_launch)
        inputs = setup.inputs() + [phase.config]
        if phase.init_from is not None:
            inputs.append(next(p for p in phases if p.name == phase.init_from).exp_dir / STAMP)
        inputs += [p.masks_file for p in init_mask_phases(phase, phases)]
        archive = imports.get(phase.name)
        fp = fingerprint({"step": "train", "cmd": cmd}, inputs + ([archive] if archive else []))
        if is_done(phase.exp_dir / STAMP, fp):
            logging.info("phase %s: %s is up to date; skipping", phase.name, phase.exp_dir)
            continue
        if archive is not None:
            logging.info("phase %s: importing %s into %s (not trained here)", phase.name, archive, phase.exp_dir)
            import_phase(archive, phase.exp_dir, setup.model_file, data_identity(setup.inputs()),
                         stale=RESUME_STATE + (STARTED,))
            write_stamp(phase.exp_dir / STAMP, fp, {"phase": phase.name, "imported_from": str(archive)})
            continue
        logging.info(
            "phase %s: training into %s (%d process(es) x %d thread(s))",
            phase.name, phase.exp_dir, phase_launch.num_procs, phase_launch.num_threads,
        )
        phase.exp_dir.mkdir(parents=True, exist_ok=True)
        drop_stale_resume_state(phase.exp_dir, fp)
        if phase_launch.init_file is not None:
            Path(phase_launch.init_file).unlink(missing_ok=True)
        log = phase.exp_dir / "train.log"
        progress = TrainProgress(f"phase {phase.name}", opts.max_epoch, opts.num_iters_per_epoch)
        run_parallel([cmd], [log], env=phase_launch.env(), watch=follow_log(log, progress))
        model = phase.exp_dir / setup.model_file
        if not model.is_file():
            raise FileNotFoundError(
                f"phase {phase.name!r}: training finished but left no {model}; "
                f"check --inference_asr_model against the config's best_model_criterion"
            )
        write_stamp(phase.exp_dir / STAMP, fp, {"phase": phase.name, "cmd": shlex.join(cmd)})
    return [p.exp_dir for p in phases]


def _auto_int(value: str) -> Optional[int]:
    """``auto`` as None, else a number >= 1 (argparse type)."""
    if value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected auto or a number >= 1, got {value!r}")
    return int(value)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train_dir", type=Path, required=True)
    parser.add_argument("--valid_dir", type=Path, required=True)
    parser.add_argument("--token_dir", type=Path, required=True)
    parser.add_argument("--stats_dir", type=Path, required=True)
    add_phases_arguments(parser)  # --phases_config, or --train_config and --asr_exp
    parser.add_argument("--model_file", default="valid.loss.ave.pth", help="checkpoint a finished phase must leave")
    parser.add_argument("--feats_normalize", default="global_mvn")
    parser.add_argument("--fs", default="16k")
    parser.add_argument("--speech_fold_length", type=int, default=800)
    parser.add_argument("--text_fold_length", type=int, default=150)
    parser.add_argument("--asr_args", default="", help="extra options for every phase (shell words)")
    parser.add_argument("--train_module", default=TRAIN_MODULE)
    parser.add_argument("--import_phases", default="",
                        help="phases taken from archives instead of trained: 'dense=<tar> ...' (recipe.phase_archive)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--ngpu", type=int, default=0)
    parser.add_argument("--num_procs", type=_auto_int, default=None,
                        help="processes per node (torchrun); auto: by the rule of recipe.launch")
    parser.add_argument("--num_threads", type=_auto_int, default=None,
                        help="threads per training process (OMP_NUM_THREADS); auto: by the rule")
    parser.add_argument("--num_nodes", type=int, default=1)
    parser.add_argument("--launcher", default="local", choices=LAUNCHERS)
    parser.add_argument("--node_rank", type=int, default=0)
    parser.add_argument("--master_addr", default=None)
    parser.add_argument("--master_port", type=int, default=29500)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)

    def work() -> None:
        if args.langs is None and args.lang_list is None:
            args.lang_list = args.train_dir / LANG_LIST
        _, phases = phases_from_args(args)
        setup = TrainSetup(
            train_dir=args.train_dir, valid_dir=args.valid_dir, token_dir=args.token_dir,
            stats_dir=args.stats_dir, model_file=args.model_file, feats_normalize=args.feats_normalize,
            fs=args.fs, speech_fold_length=args.speech_fold_length, text_fold_length=args.text_fold_length,
            asr_args=tuple(shlex.split(args.asr_args)), module=args.train_module,
        )
        launch = LaunchOptions(
            python=args.python, ngpu=args.ngpu, num_procs=args.num_procs, num_threads=args.num_threads,
            num_nodes=args.num_nodes, launcher=args.launcher, node_rank=args.node_rank, master_addr=args.master_addr,
            master_port=args.master_port,
            init_file=(args.expdir / ".dist_init" if args.launcher == "slurm" else None),
        )
        run_phases(setup, phases, launch, parse_imports(args.import_phases))

    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
