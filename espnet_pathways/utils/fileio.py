"""Atomic file output: write to a temporary name next to the target, then rename.

Every file the plugin writes goes through :func:`atomic_path` or :func:`atomic_dir`, so a
crash or a bad input never leaves a half-written output behind. A killed process cannot
clean up: its ``.NAME.XXXXXXXX.tmp`` leftovers are removed by :func:`remove_stale_tmp`
when a step starts writing ``NAME`` again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, List, Union

PathLike = Union[str, os.PathLike]

__all__ = ["atomic_path", "atomic_dir", "atomic_write_text", "remove_stale_tmp"]

_TMP_SUFFIX = ".tmp"
# ``.<target name>.<tempfile's 8 random characters>.tmp``, as made by :func:`_tmp_prefix` and mkstemp/mkdtemp
_TMP_NAME = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}" + re.escape(_TMP_SUFFIX))


def _umask_mode(directory: bool) -> int:
    """Permissions a plain ``open``/``mkdir`` would give (mkstemp/mkdtemp make them owner-only)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=_TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _umask_mode(directory=False))
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; it replaces ``path`` on success.

    An existing ``path`` is replaced only once the new folder is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = Path(tempfile.mkdtemp(prefix=_tmp_prefix(path), suffix=_TMP_SUFFIX, dir=path.parent))
    try:
        yield tmp_path
        os.chmod(tmp_path, _umask_mode(directory=True))
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp_path, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            shutil.rmtree(tmp_path, ignore_errors=True)


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def remove_stale_tmp(directory: PathLike, names: Iterable[str]) -> List[Path]:
    """Remove the temporary files and folders that killed writers of ``directory/NAME`` left behind.

    Only ``.NAME.XXXXXXXX.tmp`` entries of the given ``names`` go, so other writers' files in the
    same folder stay; call it where a step starts writing those outputs. Returns what was removed.
    """
    directory = Path(directory)
    wanted = set(names)
    if not directory.is_dir():
        return []
    removed = []
    for entry in sorted(directory.iterdir()):
        match = _TMP_NAME.fullmatch(entry.name)
        if match is None or match["name"] not in wanted:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    if removed:
        logging.info("%s: removed %d temporary file(s) left by an interrupted run", directory, len(removed))
    return removed
