"""Stage 10: collect feature statistics and shapes through the plugin's training entry point.

Usage::

    python -m espnet_pathways.recipe.stages.collect_stats --train_dir dump/raw/train --valid_dir dump/raw/dev \
        --token_dir data/token_list/bpe_unigram512 --train_config conf/train_asr_emformer_demo.yaml \
        --stats_dir exp/asr_stats_raw_bpe_unigram512 --nj 2

Splits the train and valid key lists into N = min(nj, #train, #valid) parts, runs N jobs of
``python -m espnet_pathways.bin.asr_train --collect_stats true`` at once (logs
``<stats_dir>/logdir/stats.J.log``), aggregates them with ESPnet's ``aggregate_stats_dirs`` into
``<stats_dir>/{train,valid}/`` (``feats_stats.npz``, ``speech_shape``, ``text_shape``) and adds
``text_shape.bpe`` (the token count appended to each shape, as ESPnet's ``asr.sh`` does).
The jobs run with ``--normalize none``: statistics are of the features before normalisation.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import shutil
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from espnet2.bin.aggregate_stats_dirs import aggregate_stats_dirs

from espnet_pathways.data.kaldi import read_kaldi_file
from espnet_pathways.utils.cli import run_cli
from espnet_pathways.utils.lang_list import LANG_LIST
from espnet_pathways.recipe.jobs import run_parallel
from espnet_pathways.recipe.stages.split_decode import split_scp
from espnet_pathways.utils.stamp import fingerprint, is_done, write_stamp
from espnet_pathways.recipe.train_args import data_args, data_files, token_args
from espnet_pathways.text.token_list import read_token_list
from espnet_pathways.text.tokenizer import TOKEN_LIST_NAME
from espnet_pathways.utils.fileio import atomic_write_text

__all__ = ["TRAIN_MODULE", "add_token_dim", "collect_stats", "main"]

TRAIN_MODULE = "espnet_pathways.bin.asr_train"
_STAMP = "stats.done"


def add_token_dim(text_shape: Path, out: Path, num_tokens: int) -> None:
    """``<utt> <len>`` -> ``<utt> <len>,<num_tokens>`` (what ESPnet's batch-bins count reads)."""
    table = read_kaldi_file(text_shape)
    atomic_write_text(out, "".join(f"{k} {v},{num_tokens}\n" for k, v in table.items()))


def collect_stats(
    train_dir: Path,
    valid_dir: Path,
    token_dir: Path,
    train_config: Path,
    stats_dir: Path,
    nj: int = 1,
    python: str = sys.executable,
    module: str = TRAIN_MODULE,
    fs: str = "16k",
    asr_args: Sequence[str] = (),
) -> bool:
    """Run stage 10 (see the module docstring); returns False when it was up to date."""
    if not train_config.is_file():
        raise FileNotFoundError(f"missing training config: {train_config}")
    common = token_args(token_dir, train_dir / LANG_LIST) + data_args(train_dir, valid_dir)
    params = {"step": "collect_stats", "args": common, "fs": fs, "asr_args": list(asr_args), "module": module}
    fp = fingerprint(params, data_files(train_dir, valid_dir) + [token_dir / TOKEN_LIST_NAME, train_config])
    if is_done(stats_dir / _STAMP, fp):
        logging.info("%s is up to date; skipping", stats_dir)
        return False
    n = min(nj, len(read_kaldi_file(train_dir / "wav.scp")), len(read_kaldi_file(valid_dir / "wav.scp")))
    logdir = stats_dir / "logdir"
    shutil.rmtree(logdir, ignore_errors=True)
    train_keys = split_scp(train_dir / "wav.scp", n, logdir, "train")
    valid_keys = split_scp(valid_dir / "wav.scp", n, logdir, "valid")
    commands = [
        [python, "-m", module, "--collect_stats", "true", *common,
         "--train_shape_file", str(tk), "--valid_shape_file", str(vk),
         "--output_dir", str(logdir / f"stats.{j}"), "--config", str(train_config),
         "--frontend_conf", f"fs={fs}", "--ngpu", "0",
         # statistics are taken before normalisation; global_mvn would need the file being made
         "--normalize", "none", *asr_args]
        for j, (tk, vk) in enumerate(zip(train_keys, valid_keys), 1)
    ]
    run_parallel(commands, [logdir / f"stats.{j}.log" for j in range(1, n + 1)], env={"OMP_NUM_THREADS": "1"})
    merged = logdir / "aggregated"
    aggregate_stats_dirs([logdir / f"stats.{j}" for j in range(1, n + 1)], merged, "INFO", False)
    num_tokens = len(read_token_list(token_dir / TOKEN_LIST_NAME))
    for mode in ("train", "valid"):
        add_token_dim(merged / mode / "text_shape", merged / mode / "text_shape.bpe", num_tokens)
        shutil.rmtree(stats_dir / mode, ignore_errors=True)
        shutil.move(str(merged / mode), str(stats_dir / mode))
    write_stamp(stats_dir / _STAMP, fp, params)
    logging.info("%s: statistics of %d job(s) aggregated", stats_dir, n)
    return True


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train_dir", type=Path, required=True)
    parser.add_argument("--valid_dir", type=Path, required=True)
    parser.add_argument("--token_dir", type=Path, required=True, help="token-list dir (stage 5)")
    parser.add_argument("--train_config", type=Path, required=True)
    parser.add_argument("--stats_dir", type=Path, required=True)
    parser.add_argument("--nj", type=int, default=1)
    parser.add_argument("--fs", default="16k", help="sample rate for frontend_conf")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--train_module", default=TRAIN_MODULE)
    parser.add_argument("--asr_args", default="", help="extra training options (shell words)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    return run_cli(
        lambda: collect_stats(
            args.train_dir, args.valid_dir, args.token_dir, args.train_config, args.stats_dir,
            args.nj, args.python, args.train_module, args.fs, shlex.split(args.asr_args),
        )
    )


if __name__ == "__main__":
    sys.exit(main())
