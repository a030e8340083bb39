"""Stage 12: decode each set with ``--inference_nj`` parallel jobs and merge their outputs.

Usage::

    python -m espnet_pathways.recipe.stages.decode --asr_exp exp/asr_x --model_file valid.loss.ave.pth \
        --data_root dump/raw --test_sets "mls_en_test mls_fr_test" \
        --decode_dir exp/asr_x/decode_streaming_asr_model_valid.loss.ave \
        --inference_config conf/decode_streaming.yaml --inference_nj 4

Per set (its language read from ``utt2lang``; one language per set): split ``wav.scp`` into
``<decode_dir>/<set>/logdir/keys.J.scp``, run ``python -m <inference_module> --lang <lang>
--key_file ... --output_dir <logdir>/output.J`` (log ``logdir/asr_inference.J.log``) for every
part at once, then merge ``1best_recog/{text,token,token_int,score}`` into ``<decode_dir>/<set>/``.
A set is skipped when its stamp matches model, configs and data. ``decode_info.json`` in the
decode dir records model and configs for stage 13. After each set a progress line goes to the
console: utterances done/total, sets done/total, elapsed, ETA (:mod:`espnet_pathways.recipe.progress`).

``--lid_eval true`` also decodes every set with ``--lang auto`` (the language identified by the
model's pathways, plus ``--lid_args``) into ``<decode_dir>/<set>/lang_auto/`` (the same files and
``lang``: the chosen language per utterance), for stage 13's language-identification report.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from espnet_pathways.asr.inference import AUTO_LANG
from espnet_pathways.data.kaldi import read_kaldi_file, write_kaldi_file
from espnet_pathways.utils.cli import run_cli, str2bool
from espnet_pathways.recipe.datadir import single_language
from espnet_pathways.recipe.jobs import run_parallel
from espnet_pathways.recipe.stages.merge_decode import RECOG_SUBDIR, merge_outputs
from espnet_pathways.recipe.progress import WorkProgress
from espnet_pathways.recipe.stages.results import DECODE_INFO_JSON, LID_FILE, LID_SUBDIR
from espnet_pathways.recipe.stages.split_decode import split_scp
from espnet_pathways.utils.stamp import fingerprint, is_done, write_stamp
from espnet_pathways.utils.fileio import atomic_write_text

__all__ = [
    "DecodeOptions",
    "inference_command",
    "decode_set",
    "set_size",
    "decode_progress",
    "decode_sets",
    "add_lid_arguments",
    "main",
]

_STAMP = "decode.done"
DEFAULT_MODULE = "espnet_pathways.bin.asr_inference"


@dataclass(frozen=True)
class DecodeOptions:
    """What every decoding job shares; checks that the files exist."""

    model_file: Path
    train_config: Path
    inference_config: Optional[Path] = None
    inference_args: Tuple[str, ...] = ()
    python: str = sys.executable
    module: str = DEFAULT_MODULE
    ngpu: int = 0
    nj: int = 1

    def __post_init__(self) -> None:
        for label, path in (("model file", self.model_file), ("training config", self.train_config)):
            if not Path(path).is_file():
                raise FileNotFoundError(f"missing {label}: {path} (run stage 11 first)")
        if self.inference_config is not None and not Path(self.inference_config).is_file():
            raise FileNotFoundError(f"missing inference config: {self.inference_config}")
        if self.nj < 1:
            raise ValueError(f"--inference_nj must be >= 1, got {self.nj}")

    def params(self) -> dict:
        """What decides the output (for the stamp)."""
        stat = Path(self.model_file).stat()
        return {
            "model_file": str(self.model_file),
            "model_size": stat.st_size,
            "model_mtime_ns": stat.st_mtime_ns,
            "train_config": str(self.train_config),
            "inference_config": str(self.inference_config or ""),
            "inference_args": list(self.inference_args),
            "module": self.module,
        }


def inference_command(opts: DecodeOptions, data_dir: Path, lang: str, key_file: Path, output_dir: Path) -> List[str]:
    """argv of one decoding job (same options as ``espnet2.bin.asr_inference`` plus ``--lang``)."""
    cmd = [
        opts.python, "-m", opts.module,
        "--ngpu", str(opts.ngpu),
        "--data_path_and_name_and_type", f"{data_dir / 'wav.scp'},speech,sound",
        "--key_file", str(key_file),
        "--asr_train_config", str(opts.train_config),
        "--asr_model_file", str(opts.model_file),
        "--output_dir", str(output_dir),
        "--lang", lang,
    ]
    if opts.inference_config:
        cmd += ["--config", str(opts.inference_config)]
    return cmd + list(opts.inference_args)


def _merge_langs(outputs: Sequence[Path], set_dir: Path, keys: Sequence[str]) -> None:
    """Join the jobs' ``1best_recog/lang`` (``--lang auto``) into ``set_dir/lang``; every key once."""
    merged = {}
    for out in outputs:
        path = out / RECOG_SUBDIR / LID_FILE
        if not path.is_file():
            raise FileNotFoundError(f"missing {path}: the decoding job wrote no language")
        merged.update(read_kaldi_file(path))
    missing = sorted(set(keys) - set(merged))
    if missing or len(merged) != len(keys):
        raise ValueError(f"{set_dir / LID_FILE}: {len(missing)} key(s) without a language (e.g. {missing[:3]})")
    write_kaldi_file(set_dir / LID_FILE, merged)


def decode_set(opts: DecodeOptions, data_dir: Path, set_dir: Path, auto: bool = False) -> bool:
    """Decode one set into ``set_dir`` (``auto``: with ``--lang auto``, also writing ``set_dir/lang``);
    returns False when it was up to date."""
    params = {"step": "decode", "data_dir": str(data_dir), **opts.params()}
    if auto:
        params["lang"] = AUTO_LANG
    inputs = [data_dir / "wav.scp", data_dir / "utt2lang", opts.train_config]
    if opts.inference_config:
        inputs.append(opts.inference_config)
    fp = fingerprint(params, inputs)
    if is_done(set_dir / _STAMP, fp):
        logging.info("%s is up to date; skipping", set_dir)
        return False
    lang = AUTO_LANG if auto else single_language(data_dir)
    logdir = set_dir / "logdir"
    shutil.rmtree(logdir, ignore_errors=True)
    key_files = split_scp(data_dir / "wav.scp", opts.nj, logdir)
    outputs = [logdir / f"output.{j}" for j in range(1, len(key_files) + 1)]
    commands = [inference_command(opts, data_dir, lang, k, o) for k, o in zip(key_files, outputs)]
    logs = [logdir / f"asr_inference.{j}.log" for j in range(1, len(key_files) + 1)]
    logging.info("%s: decoding %s with %d job(s)", data_dir.name, lang, len(commands))
    run_parallel(commands, logs, env={"OMP_NUM_THREADS": "1"})
    keys = list(read_kaldi_file(data_dir / "wav.scp"))
    merge_outputs(outputs, set_dir, keys)
    if auto:
        _merge_langs(outputs, set_dir, keys)
    write_stamp(set_dir / _STAMP, fp, params)
    return True


def set_size(data_dir: Path) -> int:
    """Utterances of a set."""
    return len(read_kaldi_file(data_dir / "wav.scp"))


def decode_progress(data_root: Path, test_sets: Sequence[str], lid_eval: bool = False) -> WorkProgress:
    """Progress over the utterances of ``test_sets`` (in that order, repeats counted again; each set
    twice with ``lid_eval``)."""
    return WorkProgress("decoding", [set_size(data_root / name) for name in test_sets for _ in range(1 + lid_eval)])


def decode_sets(opts: DecodeOptions, data_root: Path, test_sets: Sequence[str], decode_dir: Path,
                progress: Optional[WorkProgress] = None, lid_eval: bool = False, lid_args: Sequence[str] = ()) -> None:
    """Decode every set and record ``decode_info.json`` in ``decode_dir``; a progress line per set
    (``progress``: shared with other calls, default: over ``test_sets``). ``lid_eval``: decode each
    set again with ``--lang auto`` (and ``lid_args``) into ``<set>/lang_auto/``."""
    if not test_sets:
        raise ValueError("no test set given")
    progress = progress or decode_progress(data_root, test_sets, lid_eval)
    auto_opts = replace(opts, inference_args=(*opts.inference_args, *lid_args))
    for name in test_sets:
        decoded = decode_set(opts, data_root / name, decode_dir / name)
        logging.info("%s", progress.finish(set_size(data_root / name), name, skipped=not decoded))
        if lid_eval:
            decoded = decode_set(auto_opts, data_root / name, decode_dir / name / LID_SUBDIR, auto=True)
            logging.info("%s", progress.finish(set_size(data_root / name), f"{name} --lang {AUTO_LANG}",
                                               skipped=not decoded))  # fmt: skip
    info = {
        "model_file": str(opts.model_file),
        "train_config": str(opts.train_config),
        "inference_config": str(opts.inference_config or ""),
        "inference_args": shlex.join(opts.inference_args),
        "sets": {name: single_language(data_root / name) for name in test_sets},
    }
    if lid_eval:
        info["lid_args"] = shlex.join(lid_args)
    atomic_write_text(decode_dir / DECODE_INFO_JSON, json.dumps(info, indent=1) + "\n")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--asr_exp", type=Path, required=True, help="experiment dir (holds config.yaml)")
    parser.add_argument("--model_file", required=True, help="checkpoint, relative to --asr_exp or absolute")
    parser.add_argument("--train_config", type=Path, default=None, help="default: <asr_exp>/config.yaml")
    parser.add_argument("--data_root", type=Path, required=True, help="folder of the sets (dump/raw)")
    parser.add_argument("--test_sets", required=True, help="space-separated set names")
    parser.add_argument("--decode_dir", type=Path, required=True, help="output: <asr_exp>/decode_<tag>")
    parser.add_argument("--inference_config", default="", help="decoding YAML ('' for none)")
    parser.add_argument("--inference_args", default="", help="extra options for every job (shell words)")
    parser.add_argument("--inference_nj", type=int, default=1)
    parser.add_argument("--ngpu", type=int, default=0, help="GPUs per decoding job")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--inference_module", default=DEFAULT_MODULE)
    add_lid_arguments(parser)
    return parser


def add_lid_arguments(parser: argparse.ArgumentParser) -> None:
    """``--lid_eval`` and ``--lid_args`` (stage 12's language-identification decoding)."""
    parser.add_argument("--lid_eval", type=str2bool, default=False,
                        help=f"also decode every set with --lang {AUTO_LANG} into <set>/{LID_SUBDIR}/")
    parser.add_argument("--lid_args", default="", help=f"extra options of the --lang {AUTO_LANG} jobs (shell words)")


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)

    def work() -> None:
        opts = DecodeOptions(
            model_file=args.asr_exp / args.model_file,
            train_config=args.train_config or args.asr_exp / "config.yaml",
            inference_config=Path(args.inference_config) if args.inference_config else None,
            inference_args=tuple(shlex.split(args.inference_args)),
            python=args.python,
            module=args.inference_module,
            ngpu=args.ngpu,
            nj=args.inference_nj,
        )
        decode_sets(opts, args.data_root, args.test_sets.split(), args.decode_dir, lid_eval=args.lid_eval,
                    lid_args=shlex.split(args.lid_args))

    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
