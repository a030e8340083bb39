"""Merge the ``1best_recog`` outputs of split decoding jobs into one set of files (stage 12).

For each of ``text token token_int score`` the jobs' ``<input>/1best_recog/<file>`` are joined
and written sorted to ``<out_dir>/<file>``. Every expected key must have been decoded (an empty
hypothesis is fine), no key twice; ``text`` is required, the others are merged when every job
wrote them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Sequence

from espnet_pathways.data.kaldi import read_kaldi_file, write_kaldi_file

__all__ = ["RECOG_FILES", "merge_outputs"]

RECOG_FILES = ("text", "token", "token_int", "score")
RECOG_SUBDIR = "1best_recog"


def _merge_one(inputs: Sequence[Path], name: str) -> Dict[str, str]:
    merged: Dict[str, str] = {}
    for d in inputs:
        path = d / RECOG_SUBDIR / name
        for key, value in read_kaldi_file(path, allow_empty=True).items():
            if key in merged:
                raise ValueError(f"{path}: key {key!r} was also decoded by another job")
            merged[key] = value
    return merged


def merge_outputs(inputs: Sequence[Path], out_dir: Path, keys: Sequence[str]) -> List[str]:
    """Merge the jobs' outputs into ``out_dir``; returns the names of the merged files."""
    if not inputs:
        raise ValueError("no job output directory given")
    for d in inputs:
        if not (d / RECOG_SUBDIR / "text").is_file():
            raise FileNotFoundError(f"missing {d / RECOG_SUBDIR / 'text'}: the decoding job did not finish")
    expected = set(keys)
    merged = {}
    for name in RECOG_FILES:
        present = [(d / RECOG_SUBDIR / name).is_file() for d in inputs]
        if not all(present):
            if name == "text" or any(present):
                raise FileNotFoundError(f"{name} missing from {sum(not p for p in present)} of {len(inputs)} jobs")
            continue
        table = _merge_one(inputs, name)
        missing = sorted(expected - set(table))
        extra = sorted(set(table) - expected)
        if missing or extra:
            raise ValueError(
                f"{name}: {len(missing)} key(s) not decoded (e.g. {missing[:3]}), "
                f"{len(extra)} unexpected (e.g. {extra[:3]})"
            )
        merged[name] = table
    for name, table in merged.items():
        write_kaldi_file(out_dir / name, table)
    logging.info("%s: merged %s of %d jobs (%d keys)", out_dir, ", ".join(merged), len(inputs), len(expected))
    return list(merged)

