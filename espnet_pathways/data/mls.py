"""Kaldi-style data directories from a Multilingual LibriSpeech release (real or generated); stage 1
runs it (:mod:`espnet_pathways.recipe.stages.data_prep`).

Reads ``<mls_root>/mls_<name>/`` (FLAC) or, when only that exists, ``mls_<name>_opus/``, and
writes ``mls_<lang>_{train,dev,test}``, merged ``train`` and ``dev`` and ``lang_list.txt`` into
``out_dir``. Ids get the language code as prefix (speaker ``en_10214``, utterance
``en_10214_10108_000003``). Everything is checked before anything is written; the output dirs are
built in temporary folders and renamed at the end; a stamp makes reruns with the same arguments
and unchanged inputs a no-op. Every audio file is decoded once (``nj`` processes), so a truncated
or corrupt one is refused here, naming it, rather than failing training later.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from pathlib import Path
from typing import Optional, Sequence, Union

from espnet_pathways.data.kaldi import validate_data_dir, write_data_dir
from espnet_pathways.data.languages import get_language, parse_langs
from espnet_pathways.data.mls_format import ONE_HOUR_FOLDS, SPLITS, nine_hour_handles, one_hour_handles
from espnet_pathways.data.mls_reader import (
    MLSFormatError,
    Problem,
    Utterance,
    check_audio,
    locate_corpus,
    read_handles,
    read_transcripts,
)
from espnet_pathways.utils.fileio import atomic_dir, atomic_write_text, remove_stale_tmp
from espnet_pathways.utils.lang_list import LANG_LIST
from espnet_pathways.utils.stamp import fingerprint, is_done, read_stamp, write_stamp

__all__ = ["prepare_mls", "MLSFormatError", "TRAIN_SUBSETS"]

logger = logging.getLogger(__name__)

TRAIN_SUBSETS: tuple[str, ...] = ("1h", "10h", "full")
STAMP_NAME = ".mls_prep.json"
PREP_VERSION = 1
MERGED_SPLITS: tuple[str, ...] = ("train", "dev")

Corpus = dict[str, dict[str, list[Utterance]]]  # lang code -> split -> utterances


def _handle_files(train_dir: Path, subset: str) -> list[Path]:
    if subset == "full":
        return []
    files = [one_hour_handles(train_dir, fold) for fold in range(ONE_HOUR_FOLDS)]
    return files + ([nine_hour_handles(train_dir)] if subset == "10h" else [])


def _input_files(root: Path, codes: tuple[str, ...], subset: str) -> list[Path]:
    """The text files the outputs are made of (transcripts and handles), for the stamp."""
    folders = [locate_corpus(root, get_language(code))[0] for code in codes]
    transcripts = [folder / split / "transcripts.txt" for folder in folders for split in SPLITS]
    return transcripts + [path for folder in folders for path in _handle_files(folder / "train", subset)]


def _scan_language(root: Path, code: str, subset: str) -> tuple[dict[str, list[Utterance]], list[Problem]]:
    """Read one language's transcripts and handles: (good utterances per split, problems)."""
    folder, ext = locate_corpus(root, get_language(code))
    logger.info("%s: reading %s (%s)", code, folder, ext)
    splits: dict[str, list[Utterance]] = {}
    problems: list[Problem] = []
    for split in SPLITS:
        scan = read_transcripts(folder / split, ext)
        problems += scan.problems
        utts = scan.utterances
        if split == "train" and subset != "full":
            handles, handle_problems = read_handles(_handle_files(folder / split, subset), scan.seen_ids)
            problems += handle_problems
            wanted = set(handles)
            utts = [u for u in utts if str(u.utt) in wanted]
        splits[split] = utts
    return splits, problems


def _drop_bad(corpus: Corpus, problems: list[Problem]) -> Counter:
    """Remove the utterances that problems name; return counts per problem kind."""
    bad = {(p.file, p.utt) for p in problems if p.utt is not None}
    for splits in corpus.values():
        for split, utts in splits.items():
            splits[split] = [u for u in utts if (u.file, str(u.utt)) not in bad]
    return Counter(p.kind for p in problems)


def _data_files(code: str, utts: list[Utterance]) -> dict[str, dict[str, str]]:
    """wav.scp, text, utt2spk, utt2lang, utt2category of one language's utterances."""
    files: dict[str, dict[str, str]] = {n: {} for n in ("wav.scp", "text", "utt2spk", "utt2lang", "utt2category")}
    for u in utts:
        utt = f"{code}_{u.utt}"
        files["wav.scp"][utt] = str(u.audio)
        files["text"][utt] = u.text
        files["utt2spk"][utt] = f"{code}_{u.utt.speaker}"
        files["utt2lang"][utt] = code
        files["utt2category"][utt] = code
    return files


def _merge(parts: list[dict[str, dict[str, str]]]) -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {name: {} for name in parts[0]}
    for part in parts:
        for name, mapping in part.items():
            merged[name].update(mapping)
    return merged


def _dir_contents(corpus: Corpus) -> dict[str, dict[str, dict[str, str]]]:
    """Every output dir name → its files."""
    dirs = {f"mls_{code}_{split}": _data_files(code, corpus[code][split]) for code in corpus for split in SPLITS}
    for split in MERGED_SPLITS:
        dirs[split] = _merge([dirs[f"mls_{code}_{split}"] for code in corpus])
    return dirs


def _identity(root: Path, codes: tuple[str, ...], subset: str, skip_bad_utts: bool) -> dict[str, object]:
    return {"version": PREP_VERSION, "mls_root": str(root), "langs": list(codes), "train_subset": subset, "skip_bad_utts": skip_bad_utts}


def _previous_run(out: Path, fp: str) -> Optional[dict]:
    """The stamp's summary when it matches ``fp`` and the outputs are still those it describes."""
    if not is_done(out / STAMP_NAME, fp):
        return None
    try:
        summary = read_stamp(out / STAMP_NAME)["params"]["summary"]
        if (out / LANG_LIST).read_text(encoding="utf-8").split() != summary["langs"]:
            return None
        for name, info in summary["dirs"].items():
            if validate_data_dir(out / name) != info["utterances"]:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return summary


def _write_outputs(out: Path, dirs: dict[str, dict[str, dict[str, str]]]) -> None:
    """Write all dirs into temporary folders, validate them, then rename them all into place."""
    with contextlib.ExitStack() as stack:
        for name, files in dirs.items():
            tmp = stack.enter_context(atomic_dir(out / name))
            write_data_dir(tmp, files)  # validates what it wrote


def prepare_mls(
    mls_root: Union[str, Path],
    out_dir: Union[str, Path],
    langs: Union[str, Sequence[str]],
    train_subset: str = "full",
    skip_bad_utts: bool = False,
    nj: int = 1,
) -> dict:
    """Make Kaldi-style data dirs for ``langs`` from the MLS release under ``mls_root``.

    Args:
        mls_root: folder holding ``mls_<name>/`` or ``mls_<name>_opus/`` per language.
        out_dir: where ``mls_<lang>_{train,dev,test}``, ``train``, ``dev`` and ``lang_list.txt`` go.
        langs: codes in the order that defines integer language ids (``"en fr"`` or ``["en", "fr"]``).
        train_subset: ``1h`` (limited_supervision/1hr/*), ``10h`` (1hr ∪ 9hr) or ``full``.
        skip_bad_utts: drop bad utterances and count them instead of raising.
        nj: processes for the audio checks (each file's header, then one full decode).
    Returns:
        ``{"out_dir", "skipped", "langs", "train_subset", "dirs": {name: {"path", "utterances", "speakers"}},
        "dropped": {kind: count}}``.
    Raises:
        MLSFormatError: a bad input (message names file and line); nothing has been written.
        UnknownLanguageError: a code not in :data:`~espnet_pathways.data.languages.LANGUAGES`.
    """
    codes = parse_langs(langs)
    if train_subset not in TRAIN_SUBSETS:
        raise ValueError(f"unknown train_subset {train_subset!r}; choose from {', '.join(TRAIN_SUBSETS)}")
    root = Path(mls_root).resolve()
    out = Path(out_dir).resolve()
    if not root.is_dir():
        raise MLSFormatError(f"{root}: MLS root folder not found")
    identity = _identity(root, codes, train_subset, skip_bad_utts)
    fp = fingerprint(identity, _input_files(root, codes, train_subset))
    previous = _previous_run(out, fp)
    if previous is not None:
        logger.info("%s is up to date for these arguments, skipping", out)
        return {**previous, "skipped": True}

    corpus: Corpus = {}
    problems: list[Problem] = []
    for code in codes:
        corpus[code], lang_problems = _scan_language(root, code, train_subset)
        problems += lang_problems
    selected = [u for code in codes for split in SPLITS for u in corpus[code][split]]
    problems += check_audio(selected, nj=nj, desc="checking audio")
    dropped: Counter = Counter()
    if problems:
        if not skip_bad_utts:
            raise MLSFormatError.from_problems(problems)
        dropped = _drop_bad(corpus, problems)
        for kind, count in sorted(dropped.items()):
            first = next(p for p in problems if p.kind == kind)
            logger.warning("dropped %d line(s) of kind %s, e.g. %s", count, kind, first)
    for code in codes:
        for split in SPLITS:
            if not corpus[code][split]:
                raise MLSFormatError(f"{code} {split}: no usable utterances (subset {train_subset})")

    dirs = _dir_contents(corpus)
    remove_stale_tmp(out, [*dirs, LANG_LIST, STAMP_NAME])  # what a killed run left
    _write_outputs(out, dirs)
    atomic_write_text(out / LANG_LIST, "".join(f"{code}\n" for code in codes))
    summary = {
        "out_dir": str(out),
        "langs": list(codes),
        "train_subset": train_subset,
        "dirs": {
            name: {"path": str(out / name), "utterances": len(files["utt2spk"]), "speakers": len(set(files["utt2spk"].values()))}
            for name, files in dirs.items()
        },
        "dropped": dict(sorted(dropped.items())),
    }
    write_stamp(out / STAMP_NAME, fp, {**identity, "summary": summary})
    for name, info in summary["dirs"].items():
        logger.info("%s: %d utterances, %d speakers", name, info["utterances"], info["speakers"])
    return {**summary, "skipped": False}

