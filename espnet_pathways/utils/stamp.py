"""Completion stamps: a step is skipped when its stamp matches its inputs and options.

A stamp is a small JSON file written *last*, once every output of a step is complete. Its
fingerprint hashes the step's options and the bytes of its (text) input files, so changed
inputs or options make the step run again. Writing a stamp first removes the temporary files
that a killed write of it left (see :func:`~espnet_pathways.utils.fileio.remove_stale_tmp`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Union

from espnet_pathways.utils.fileio import atomic_write_text, remove_stale_tmp

__all__ = ["STAMP_NAME", "update_with_file", "fingerprint", "read_stamp", "is_done", "write_stamp"]

STAMP_NAME = ".done"


def update_with_file(h: "hashlib._Hash", path: Path) -> None:
    """Feed the bytes of the file ``path`` to the hash ``h`` (1 MiB at a time)."""
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)


def fingerprint(params: Mapping[str, Any], files: Iterable[Union[str, Path]] = ()) -> str:
    """SHA-256 of ``params`` (as sorted JSON) and the contents of ``files`` (missing ones hash as such)."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode("utf-8"))
    for f in files:
        f = Path(f)
        h.update(str(f).encode("utf-8"))
        if f.is_file():
            update_with_file(h, f)
        else:
            h.update(b"<missing>")
    return h.hexdigest()


def read_stamp(stamp: Union[str, Path]) -> Optional[Dict[str, Any]]:
    """The record ``{"fingerprint", "params"}`` of ``stamp``; None when it is missing or unreadable."""
    stamp = Path(stamp)
    if not stamp.is_file():
        return None
    try:
        record = json.loads(stamp.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
        logging.warning("%s: unreadable stamp", stamp)
        return None
    return record


def is_done(stamp: Union[str, Path], fp: str) -> bool:
    """True when ``stamp`` exists and records fingerprint ``fp``."""
    record = read_stamp(stamp)
    if record is not None and record.get("fingerprint") != fp:
        logging.info("%s: inputs or options changed; redoing the step", stamp)
        return False
    return record is not None


def write_stamp(stamp: Union[str, Path], fp: str, params: Mapping[str, Any]) -> None:
    """Record ``fp`` and ``params`` (for people reading it, and :func:`read_stamp`) in ``stamp``."""
    stamp = Path(stamp)
    remove_stale_tmp(stamp.parent, [stamp.name])
    atomic_write_text(stamp, json.dumps({"fingerprint": fp, "params": params}, indent=1, sort_keys=True, default=str) + "\n")
