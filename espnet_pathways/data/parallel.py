"""Ordered parallel map with a progress bar, used by corpus generation and audio checks."""

from __future__ import annotations

import multiprocessing
from typing import Callable, Iterator, Optional, Sequence, TypeVar

from tqdm import tqdm

__all__ = ["parallel_map"]

T = TypeVar("T")
R = TypeVar("R")


def parallel_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    nj: int = 1,
    desc: str = "",
    initializer: Optional[Callable[[], None]] = None,
    progress: bool = True,
) -> Iterator[R]:
    """Yield ``fn(item)`` for each item, in input order, using ``nj`` processes.

    ``fn`` must be a module-level function (processes are spawned, not forked, so that a parent
    that already runs threads, e.g. torch, is safe). Results do not depend on ``nj``.
    """
    if nj < 1:
        raise ValueError(f"nj must be >= 1, got {nj}")
    bar = tqdm(total=len(items), desc=desc, unit="utt", leave=False, mininterval=1.0, disable=not progress)
    try:
        if nj == 1 or len(items) <= 1:
            for item in items:
                yield fn(item)
                bar.update()
            return
        context = multiprocessing.get_context("spawn")
        chunksize = max(1, min(64, len(items) // (nj * 8)))
        with context.Pool(processes=min(nj, len(items)), initializer=initializer) as pool:
            for result in pool.imap(fn, items, chunksize=chunksize):
                yield result
                bar.update()
    finally:
        bar.close()
