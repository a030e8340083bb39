"""Split a set's key list into ``nj`` contiguous, balanced parts (decoding and stats jobs)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, TypeVar

from espnet_pathways.data.kaldi import read_kaldi_file
from espnet_pathways.utils.fileio import atomic_write_text

__all__ = ["split_list", "split_scp"]

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
    """Write ``<out_dir>/<prefix>.<j>.scp`` (the scp lines of part j) for j = 1..N, N = min(nj, #keys),
    and return their paths."""
    table = read_kaldi_file(scp)
    if not table:
        raise ValueError(f"{scp}: no entry")
    paths = []
    for j, part in enumerate(split_list(list(table.items()), nj), 1):
        path = out_dir / f"{prefix}.{j}.scp"
        atomic_write_text(path, "".join(f"{k} {v}\n" for k, v in part))
        paths.append(path)
    return paths

