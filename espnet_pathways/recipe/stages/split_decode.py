"""Split a set's key list into ``nj`` contiguous, balanced parts (decoding and stats jobs).

Usage::

    python -m espnet_pathways.recipe.stages.split_decode --scp dump/raw/mls_en_test/wav.scp --nj 4 \
        --out_dir exp/asr_x/decode_tag/mls_en_test/logdir

writes ``keys.1.scp`` ... ``keys.N.scp`` (the scp lines of each part), N = min(nj, #keys).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence, TypeVar

from espnet_pathways.data.kaldi import read_kaldi_file
from espnet_pathways.utils.cli import run_cli
from espnet_pathways.utils.fileio import atomic_write_text

__all__ = ["split_list", "split_scp", "main"]

T = TypeVar("T")


def split_list(items: Sequence[T], nj: int) -> List[List[T]]:
    """``min(nj, len(items))`` contiguous parts whose sizes differ by at most one, in order."""
    if nj < 1:
        raise ValueError(f"nj must be >= 1, got {nj}")
    if not items:
        raise ValueError("nothing to split: empty key list")
    n = min(nj, len(items))
    base, extra = divmod(len(items), n)
    parts, start = [], 0
    for j in range(n):
        size = base + (1 if j < extra else 0)
        parts.append(list(items[start : start + size]))
        start += size
    return parts


def split_scp(scp: Path, nj: int, out_dir: Path, prefix: str = "keys") -> List[Path]:
    """Write ``<out_dir>/<prefix>.<j>.scp`` for j = 1..N and return their paths."""
    table = read_kaldi_file(scp)
    if not table:
        raise ValueError(f"{scp}: no entry")
    paths = []
    for j, part in enumerate(split_list(list(table.items()), nj), 1):
        path = out_dir / f"{prefix}.{j}.scp"
        atomic_write_text(path, "".join(f"{k} {v}\n" for k, v in part))
        paths.append(path)
    return paths


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scp", type=Path, required=True, help="key file to split (e.g. wav.scp)")
    parser.add_argument("--nj", type=int, required=True)
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--prefix", default="keys")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    return run_cli(lambda: split_scp(args.scp, args.nj, args.out_dir, args.prefix))


if __name__ == "__main__":
    sys.exit(main())
