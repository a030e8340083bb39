"""The recipe's view of Kaldi data directories, on top of :mod:`espnet_pathways.data.kaldi`.

Adds what the stages need beyond reading and writing single files: reading a chosen set of
per-utterance files with one shared key set, writing a subset of utterances.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, Mapping, Sequence, Union

from espnet_pathways.data.kaldi import read_kaldi_file, utt2spk_to_spk2utt, write_kaldi_file

__all__ = ["PER_UTT_FILES", "read_data_dir", "write_data_subset", "single_language"]

# Per-utterance files of a raw data directory, in the order they are checked.
PER_UTT_FILES = ("wav.scp", "text", "utt2spk", "utt2lang", "utt2category")

PathLike = Union[str, Path]


def read_data_dir(path: PathLike, files: Sequence[str] = PER_UTT_FILES) -> Dict[str, Dict[str, str]]:
    """Read the per-utterance ``files`` of a data directory and check they share one key set.

    Returns:
        file name -> table (``text`` may have empty values).

    Raises:
        FileNotFoundError: directory or file missing. ValueError: bad line (``file:line``), no
            utterance, or key sets differ (names both files and an example id).
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"missing data directory: {path}")
    tables = {}
    for name in files:
        if not (path / name).is_file():
            raise FileNotFoundError(f"missing file: {path / name}")
        tables[name] = read_kaldi_file(path / name, allow_empty=(name == "text"))
    first = files[0]
    keys = set(tables[first])
    if not keys:
        raise ValueError(f"{path / first}: no utterance")
    for name in files[1:]:
        other = set(tables[name])
        if other != keys:
            only_first, only_other = sorted(keys - other), sorted(other - keys)
            example = f"{only_first[0]!r} only in {first}" if only_first else f"{only_other[0]!r} only in {name}"
            raise ValueError(
                f"{path}: utterance ids of {first} and {name} differ "
                f"({len(only_first)} only in {first}, {len(only_other)} only in {name}; e.g. {example})"
            )
    return tables


def write_data_subset(path: Path, tables: Mapping[str, Mapping[str, str]], keep: Iterable[str]) -> None:
    """Write each table restricted to the ``keep`` ids into ``path``, plus ``spk2utt``."""
    keep = set(keep)
    for name, table in tables.items():
        write_kaldi_file(path / name, {k: v for k, v in table.items() if k in keep})
    if "utt2spk" in tables:
        subset = {k: v for k, v in tables["utt2spk"].items() if k in keep}
        write_kaldi_file(path / "spk2utt", utt2spk_to_spk2utt(subset))


def single_language(data_dir: PathLike) -> str:
    """The one language of a data set (``utt2lang``); a set mixing languages is an error."""
    path = Path(data_dir) / "utt2lang"
    if not path.is_file():
        raise FileNotFoundError(f"missing file: {path}")
    langs = sorted(set(read_kaldi_file(path).values()))
    if len(langs) != 1:
        raise ValueError(f"{path}: a decoding set must hold one language, found {langs or 'none'}")
    return langs[0]
