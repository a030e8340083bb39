"""Stage 3: format a Kaldi data directory into ``dump/raw/<set>`` for ESPnet training.

Usage::

    python -m espnet_pathways.recipe.stages.format_data --src data/train --dst dump/raw/org/train \
        --lang_list data/lang_list.txt --fs 16000 --nj 4

Reads ``wav.scp text utt2spk utt2lang utt2category`` from ``--src`` (same utterance ids) and
writes them to ``--dst`` together with ``spk2utt``, ``utt2num_samples`` (audio headers),
``utt2lang_id`` (0-based line of the utterance's language in ``lang_list.txt``; the training
reads it as ``utt2lang_id,lang,text_int``), a copy of ``lang_list.txt`` and ``feats_type``.
Audio stays where ``wav.scp`` points; each file is decoded fully once (``--nj`` processes), so a
truncated or corrupt one is refused here, naming it. The output folder appears complete or not
at all, and is skipped when its stamp matches the inputs.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import soundfile

from espnet_pathways.data.audio import decode_problem, error_text
from espnet_pathways.data.parallel import parallel_map
from espnet_pathways.utils.cli import run_cli
from espnet_pathways.recipe.datadir import PER_UTT_FILES, read_data_dir, write_data_subset
from espnet_pathways.utils.lang_list import LANG_LIST, read_lang_list
from espnet_pathways.utils.stamp import STAMP_NAME, fingerprint, is_done, write_stamp
from espnet_pathways.utils.fileio import atomic_dir, remove_stale_tmp

__all__ = ["format_data_dir", "lang_ids", "num_samples", "main"]


def lang_ids(utt2lang: Dict[str, str], langs: Sequence[str], source: Path) -> Dict[str, str]:
    """utt -> id (as text) of its language in ``langs``; an unknown language names ``source:line``."""
    index = {lang: i for i, lang in enumerate(langs)}
    out = {}
    for lineno, (utt, lang) in enumerate(utt2lang.items(), 1):
        if lang not in index:
            raise ValueError(f"{source}:{lineno}: utterance {utt!r} has language {lang!r}, not in lang_list {list(langs)}")
        out[utt] = str(index[lang])
    return out


def _audio_frames(job: Tuple[str, Optional[int]]) -> Tuple[int, Optional[str]]:
    """Worker: ``(samples, None)`` for a mono file (of rate ``fs`` if given) that decodes fully, else ``(0, why)``."""
    path, fs = job
    try:
        info = soundfile.info(path)
    except (RuntimeError, OSError) as exc:  # soundfile raises LibsndfileError (a RuntimeError)
        return 0, f"cannot read audio {path!r}: {error_text(exc)}"
    if info.channels != 1:
        return 0, f"{path} has {info.channels} channels, expected mono"
    if fs and info.samplerate != fs:
        return 0, f"{path} is {info.samplerate} Hz, expected {fs} Hz"
    problem = decode_problem(path, info.frames)
    return (0, problem) if problem else (info.frames, None)


def num_samples(wav_scp: Dict[str, str], source: Path, fs: Optional[int], nj: int = 1) -> Dict[str, str]:
    """utt -> number of samples from each file's header, with ``nj`` processes.

    Checks mono, ``fs`` (if given) and that each file decodes fully; an error names ``source:line``.
    """
    items = list(enumerate(wav_scp.items(), 1))
    for lineno, (utt, path) in items:
        if path.endswith("|"):
            raise ValueError(f"{source}:{lineno}: {utt}: pipe commands are not supported, give a file path")
    results = parallel_map(_audio_frames, [(path, fs) for _, (_, path) in items], nj=nj, desc="checking audio")
    out: Dict[str, str] = {}
    for (lineno, (utt, _)), (frames, problem) in zip(items, results):
        if problem is not None:
            raise ValueError(f"{source}:{lineno}: {utt}: {problem}")
        out[utt] = str(frames)
    return out


def format_data_dir(src: Path, dst: Path, lang_list: Path, fs: Optional[int] = None, nj: int = 1) -> bool:
    """Format ``src`` into ``dst`` (see the module docstring).

    Returns:
        False when ``dst`` was already complete for these inputs (nothing done), else True.
    """
    inputs = [src / name for name in PER_UTT_FILES] + [lang_list]
    params = {"step": "format_data", "src": str(src), "fs": fs}
    fp = fingerprint(params, inputs)
    if is_done(dst / STAMP_NAME, fp):
        logging.info("%s is up to date; skipping", dst)
        return False
    langs = read_lang_list(lang_list)
    tables = read_data_dir(src)
    tables["utt2lang_id"] = lang_ids(tables["utt2lang"], langs, src / "utt2lang")
    tables["utt2num_samples"] = num_samples(tables["wav.scp"], src / "wav.scp", fs, nj)
    remove_stale_tmp(dst.parent, [dst.name])  # what a killed run left
    with atomic_dir(dst) as tmp:
        write_data_subset(tmp, tables, tables["wav.scp"])
        shutil.copyfile(lang_list, tmp / LANG_LIST)
        (tmp / "feats_type").write_text("raw\n", encoding="utf-8")
        write_stamp(tmp / STAMP_NAME, fp, params)
    logging.info("%s: %d utterances, %d speakers", dst, len(tables["wav.scp"]), len(set(tables["utt2spk"].values())))
    return True


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, required=True, help="Kaldi data directory")
    parser.add_argument("--dst", type=Path, required=True, help="output directory (dump/raw/...)")
    parser.add_argument("--lang_list", type=Path, required=True, help=f"{LANG_LIST} (one code a line)")
    parser.add_argument("--fs", type=int, default=0, help="required sample rate in Hz (0: any)")
    parser.add_argument("--nj", type=int, default=1, help="processes checking (and fully decoding) the audio")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    return run_cli(lambda: format_data_dir(args.src, args.dst, args.lang_list, args.fs or None, args.nj))


if __name__ == "__main__":
    sys.exit(main())
