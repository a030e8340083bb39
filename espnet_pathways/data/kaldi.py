"""Kaldi-style data directories: two-column files, ``spk2utt`` and validation.

A data directory holds ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt`` and any other ``utt2*`` file,
each line ``<id> <value>``, sorted by id in C-locale (byte) order, ids unique. Speaker ids are
prefixes of utterance ids. Files are written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Union

from espnet_pathways.utils.fileio import atomic_path

__all__ = [
    "KaldiDataError",
    "read_kaldi_file",
    "write_kaldi_file",
    "utt2spk_to_spk2utt",
    "write_data_dir",
    "validate_data_dir",
    "REQUIRED_FILES",
]

PathLike = Union[str, os.PathLike]

REQUIRED_FILES: tuple[str, ...] = ("wav.scp", "text", "utt2spk", "spk2utt")


class KaldiDataError(ValueError):
    """A malformed Kaldi file or an inconsistent data directory."""


def _sort_key(key: str) -> bytes:
    """C-locale order: compare the UTF-8 bytes."""
    return key.encode("utf-8")


def read_kaldi_file(path: PathLike, allow_empty: bool = False) -> dict[str, str]:
    """Read ``<id> <value>`` lines (value = rest of the line) into an insertion-ordered dict.

    Raises:
        KaldiDataError: naming ``path:line`` for a duplicate id, a missing value (unless
        ``allow_empty``), an empty line or bytes that are not UTF-8.
    """
    path = Path(path)
    out: dict[str, str] = {}
    first_line: dict[str, int] = {}
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\n")
            except UnicodeDecodeError:
                raise KaldiDataError(f"{path}:{lineno}: line is not valid UTF-8") from None
            parts = line.split(maxsplit=1)
            if not parts:
                raise KaldiDataError(f"{path}:{lineno}: empty line")
            key = parts[0]
            value = parts[1].strip() if len(parts) > 1 else ""
            if not value and not allow_empty:
                raise KaldiDataError(f"{path}:{lineno}: id {key!r} has no value")
            if key in out:
                raise KaldiDataError(f"{path}:{lineno}: duplicate id {key!r} (first on line {first_line[key]})")
            out[key] = value
            first_line[key] = lineno
    return out


def write_kaldi_file(path: PathLike, mapping: Mapping[str, str]) -> None:
    """Write ``mapping`` sorted by id (C order), one ``<id> <value>`` per line, atomically."""
    for key, value in mapping.items():
        if not key or any(c.isspace() for c in key):
            raise KaldiDataError(f"{path}: id {key!r} is empty or contains whitespace")
        if "\n" in value:
            raise KaldiDataError(f"{path}: value of {key!r} contains a newline")
    lines = [f"{key} {mapping[key]}\n" for key in sorted(mapping, key=_sort_key)]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(lines), encoding="utf-8")


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, str]:
    """Invert ``utt2spk``: speaker → space-separated utterance ids (sorted), speakers sorted."""
    groups: dict[str, list[str]] = {}
    for utt, spk in utt2spk.items():
        groups.setdefault(spk, []).append(utt)
    return {spk: " ".join(sorted(groups[spk], key=_sort_key)) for spk in sorted(groups, key=_sort_key)}


def write_data_dir(path: PathLike, files: Mapping[str, Mapping[str, str]]) -> None:
    """Write a data directory: each ``files[name]`` as a Kaldi file, plus ``spk2utt`` from ``utt2spk``.

    ``files`` must contain ``wav.scp``, ``text`` and ``utt2spk``; the directory is validated after writing.
    """
    path = Path(path)
    missing = [name for name in ("wav.scp", "text", "utt2spk") if name not in files]
    if missing:
        raise KaldiDataError(f"{path}: cannot write a data dir without {', '.join(missing)}")
    path.mkdir(parents=True, exist_ok=True)
    for name, mapping in files.items():
        write_kaldi_file(path / name, mapping)
    write_kaldi_file(path / "spk2utt", utt2spk_to_spk2utt(files["utt2spk"]))
    validate_data_dir(path)


def _check_sorted(path: Path, keys: list[str]) -> None:
    for lineno in range(1, len(keys)):
        if _sort_key(keys[lineno - 1]) > _sort_key(keys[lineno]):
            raise KaldiDataError(
                f"{path}:{lineno + 1}: id {keys[lineno]!r} is out of order (after {keys[lineno - 1]!r}; C-locale sort)"
            )


def validate_data_dir(path: PathLike) -> int:
    """Check a data directory and return its number of utterances.

    Checks: required files exist; every file is sorted with unique ids; ``wav.scp``, ``text`` and all
    ``utt2*`` files have the same ids; each speaker is a prefix of its utterances' ids; ``spk2utt``
    equals the inversion of ``utt2spk``. Raises :class:`KaldiDataError` naming file and line.
    """
    path = Path(path)
    if not path.is_dir():
        raise KaldiDataError(f"{path}: not a directory")
    for name in REQUIRED_FILES:
        if not (path / name).is_file():
            raise KaldiDataError(f"{path}: missing {name}")
    utt_files = sorted(p.name for p in path.iterdir() if p.is_file() and (p.name in ("wav.scp", "text") or p.name.startswith("utt2")))
    contents: dict[str, dict[str, str]] = {}
    for name in utt_files + ["spk2utt"]:
        mapping = read_kaldi_file(path / name)
        _check_sorted(path / name, list(mapping))
        contents[name] = mapping
    reference = contents["utt2spk"]
    for name in utt_files:
        keys = contents[name]
        for lineno, key in enumerate(keys, start=1):
            if key not in reference:
                raise KaldiDataError(f"{path / name}:{lineno}: utterance {key!r} is not in utt2spk")
        if len(keys) != len(reference):
            absent = next(k for k in reference if k not in keys)
            raise KaldiDataError(f"{path / name}: utterance {absent!r} of utt2spk is missing")
    for lineno, (utt, spk) in enumerate(reference.items(), start=1):
        if not utt.startswith(spk):
            raise KaldiDataError(f"{path / 'utt2spk'}:{lineno}: speaker {spk!r} is not a prefix of utterance {utt!r}")
    expected = utt2spk_to_spk2utt(reference)
    for lineno, (spk, utts) in enumerate(contents["spk2utt"].items(), start=1):
        if expected.get(spk) != utts:
            raise KaldiDataError(f"{path / 'spk2utt'}:{lineno}: speaker {spk!r} does not match utt2spk")
    if len(contents["spk2utt"]) != len(expected):
        absent = next(s for s in expected if s not in contents["spk2utt"])
        raise KaldiDataError(f"{path / 'spk2utt'}: speaker {absent!r} of utt2spk is missing")
    return len(reference)
