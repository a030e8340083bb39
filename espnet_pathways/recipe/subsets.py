"""Language subsets of the training data for phases with ``languages`` (monolingual pruning).

For ``languages: [fr]`` stage 11 trains on

- ``<train_dir>_fr`` and ``<valid_dir>_fr`` (e.g. ``dump/raw/train_fr``): every per-utterance file
  (``wav.scp``, ``text``, ``utt2*``, ``segments``) restricted to the utterances whose ``utt2lang``
  is ``fr``, ``spk2utt`` rebuilt, other files (``lang_list.txt``, ``feats_type``) copied, so
  language ids, ``utt2category`` (monolingual batches) and the token list stay those of the full set;
- ``<stats_dir>/subset_fr/{train,valid}/``: the shape files of stage 10 restricted the same way and
  its ``feats_stats.npz`` copied (the subset model normalises features like the dense one).

Several languages give ``_fr_nl``. Each subset is written into a temporary dir that replaces the
old one, with its stamp, and skipped while its sources are unchanged.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import List, Sequence, Tuple

from espnet_pathways.data.kaldi import read_kaldi_file, write_kaldi_file
from espnet_pathways.recipe.datadir import PER_UTT_FILES, write_data_subset
from espnet_pathways.utils.lang_list import LANG_LIST, read_lang_list
from espnet_pathways.utils.stamp import STAMP_NAME, fingerprint, is_done, write_stamp
from espnet_pathways.utils.fileio import atomic_dir

__all__ = ["subset_tag", "is_per_utterance", "language_subset", "shape_subset", "phase_data"]


def subset_tag(langs: Sequence[str]) -> str:
    """``fr`` or ``fr_nl``: the suffix of a subset's dirs."""
    if not langs:
        raise ValueError("a language subset needs at least one language")
    return "_".join(langs)


def is_per_utterance(name: str) -> bool:
    """Whether a data-dir file has one line per utterance (first column: utterance id)."""
    return name in PER_UTT_FILES or name.startswith("utt2") or name == "segments"


def _source_files(directory: Path) -> List[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


def language_subset(data_dir: Path, langs: Sequence[str], out_dir: Path) -> bool:
    """Write the utterances of ``langs`` of ``data_dir`` into ``out_dir``; False when up to date.

    Raises:
        FileNotFoundError: no ``data_dir``, ``utt2lang`` or ``lang_list.txt``.
        ValueError: a language not in ``lang_list.txt``, or no utterance of ``langs``.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"missing data directory: {data_dir} (run stages 3-4 first)")
    known = read_lang_list(data_dir / LANG_LIST)
    for lang in langs:
        if lang not in known:
            raise ValueError(f"{data_dir / LANG_LIST}: no language {lang!r} (languages: {known})")
    sources = _source_files(data_dir)
    params = {"step": "language_subset", "src": str(data_dir), "langs": list(langs)}
    fp = fingerprint(params, sources)
    if is_done(out_dir / STAMP_NAME, fp):
        logging.info("%s is up to date; skipping", out_dir)
        return False
    if not (data_dir / "utt2lang").is_file():
        raise FileNotFoundError(f"missing file: {data_dir / 'utt2lang'}")
    keep = {utt for utt, lang in read_kaldi_file(data_dir / "utt2lang").items() if lang in langs}
    if not keep:
        raise ValueError(f"{data_dir / 'utt2lang'}: no utterance of language(s) {list(langs)}")
    with atomic_dir(out_dir) as tmp:
        tables = {}
        for src in sources:
            if is_per_utterance(src.name):
                tables[src.name] = read_kaldi_file(src, allow_empty=(src.name == "text"))
            elif src.name != "spk2utt":  # rebuilt from utt2spk
                shutil.copyfile(src, tmp / src.name)
        write_data_subset(tmp, tables, keep)
        write_stamp(tmp / STAMP_NAME, fp, {**params, "utterances": len(keep)})
    logging.info("%s: %d utterance(s) of %s from %s", out_dir, len(keep), ", ".join(langs), data_dir)
    return True


def shape_subset(stats_dir: Path, train_dir: Path, valid_dir: Path, out_dir: Path) -> bool:
    """Restrict stage 10's shape files to the utterances of ``train_dir`` / ``valid_dir`` (subsets)
    and copy its statistics (``*.npz``) into ``out_dir/{train,valid}``; False when up to date."""
    stats_dir, out_dir = Path(stats_dir), Path(out_dir)
    subsets = {"train": Path(train_dir), "valid": Path(valid_dir)}
    sources = []
    for mode in subsets:
        if not (stats_dir / mode).is_dir():
            raise FileNotFoundError(f"missing {stats_dir / mode} (run stage 10 first)")
        sources += _source_files(stats_dir / mode)
    inputs = sources + [subsets[m] / "wav.scp" for m in subsets]
    params = {"step": "shape_subset", "stats_dir": str(stats_dir), **{m: str(d) for m, d in subsets.items()}}
    fp = fingerprint(params, inputs)
    if is_done(out_dir / STAMP_NAME, fp):
        logging.info("%s is up to date; skipping", out_dir)
        return False
    with atomic_dir(out_dir) as tmp:
        for mode, data_dir in subsets.items():
            keys = set(read_kaldi_file(data_dir / "wav.scp"))
            for src in _source_files(stats_dir / mode):
                dst = tmp / mode / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                if "_shape" in src.name:
                    table = read_kaldi_file(src)
                    missing = sorted(keys - set(table))
                    if missing:
                        raise ValueError(
                            f"{src}: no shape for {len(missing)} utterance(s) of {data_dir} (e.g. {missing[0]!r}); "
                            "rerun stage 10"
                        )
                    write_kaldi_file(dst, {k: v for k, v in table.items() if k in keys})
                elif src.suffix == ".npz":
                    shutil.copyfile(src, dst)
        write_stamp(tmp / STAMP_NAME, fp, params)
    return True


def phase_data(train_dir: Path, valid_dir: Path, stats_dir: Path, langs: Sequence[str]) -> Tuple[Path, Path, Path]:
    """Training dir, validation dir and stats dir of a phase restricted to ``langs`` (written when
    needed); the full ones when ``langs`` is empty or every language."""
    train_dir, valid_dir, stats_dir = Path(train_dir), Path(valid_dir), Path(stats_dir)
    if not langs or set(langs) == set(read_lang_list(train_dir / LANG_LIST)):
        return train_dir, valid_dir, stats_dir
    tag = subset_tag(langs)
    out = (
        train_dir.with_name(f"{train_dir.name}_{tag}"),
        valid_dir.with_name(f"{valid_dir.name}_{tag}"),
        stats_dir / f"subset_{tag}",
    )
    language_subset(train_dir, langs, out[0])
    language_subset(valid_dir, langs, out[1])
    shape_subset(stats_dir, out[0], out[1], out[2])
    return out
