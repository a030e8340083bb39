"""Stage 4: drop utterances that are too short, too long or have an empty transcript.

Usage::

    python -m espnet_pathways.recipe.stages.filter_data --src dump/raw/org/train --dst dump/raw/train \
        --fs 16000 --min_wav_duration 0.1 --max_wav_duration 20

Every per-utterance file of the formatted ``--src`` (wav.scp, text, utt2spk, utt2lang,
utt2lang_id, utt2category, utt2num_samples) is restricted to the kept ids, ``spk2utt`` is
rebuilt, ``lang_list.txt`` and ``feats_type`` are copied. Fails when nothing is left.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from espnet_pathways.utils.cli import run_cli
from espnet_pathways.recipe.datadir import PER_UTT_FILES, read_data_dir, write_data_subset
from espnet_pathways.utils.lang_list import LANG_LIST
from espnet_pathways.utils.stamp import STAMP_NAME, fingerprint, is_done, write_stamp
from espnet_pathways.utils.fileio import atomic_dir

__all__ = ["FORMATTED_FILES", "select_utterances", "filter_data_dir", "main"]

FORMATTED_FILES = PER_UTT_FILES + ("utt2lang_id", "utt2num_samples")
_COPIED = (LANG_LIST, "feats_type")


def select_utterances(
    utt2num_samples: Dict[str, str],
    text: Dict[str, str],
    fs: int,
    min_wav_duration: float,
    max_wav_duration: float,
    source: Path,
) -> Tuple[List[str], Dict[str, int]]:
    """Ids whose duration lies in [min, max] seconds and whose text is not empty.

    Returns:
        (kept ids in input order, counts of dropped ids by reason).
    """
    if fs <= 0:
        raise ValueError(f"--fs must be positive, got {fs}")
    if not 0 <= min_wav_duration <= max_wav_duration:
        raise ValueError(f"need 0 <= min_wav_duration <= max_wav_duration, got {min_wav_duration}, {max_wav_duration}")
    lo, hi = min_wav_duration * fs, max_wav_duration * fs
    kept: List[str] = []
    dropped = {"too_short": 0, "too_long": 0, "empty_text": 0}
    for lineno, (utt, value) in enumerate(utt2num_samples.items(), 1):
        try:
            n = int(value)
        except ValueError:
            raise ValueError(f"{source}:{lineno}: {utt}: number of samples {value!r} is not an integer") from None
        if n < lo:
            dropped["too_short"] += 1
        elif n > hi:
            dropped["too_long"] += 1
        elif not text[utt].strip():
            dropped["empty_text"] += 1
        else:
            kept.append(utt)
    return kept, dropped


def filter_data_dir(src: Path, dst: Path, fs: int, min_wav_duration: float, max_wav_duration: float) -> bool:
    """Filter ``src`` into ``dst``; returns False when ``dst`` was already up to date."""
    params = {"step": "filter_data", "src": str(src), "fs": fs, "min": min_wav_duration, "max": max_wav_duration}
    fp = fingerprint(params, [src / name for name in FORMATTED_FILES + _COPIED])
    if is_done(dst / STAMP_NAME, fp):
        logging.info("%s is up to date; skipping", dst)
        return False
    tables = read_data_dir(src, FORMATTED_FILES)
    kept, dropped = select_utterances(
        tables["utt2num_samples"], tables["text"], fs, min_wav_duration, max_wav_duration, src / "utt2num_samples"
    )
    if not kept:
        raise ValueError(f"{src}: every utterance was filtered out ({dropped}); check --fs and the duration limits")
    with atomic_dir(dst) as tmp:
        write_data_subset(tmp, tables, kept)
        for name in _COPIED:
            if not (src / name).is_file():
                raise FileNotFoundError(f"missing file: {src / name}")
            shutil.copyfile(src / name, tmp / name)
        write_stamp(tmp / STAMP_NAME, fp, params)
    logging.info("%s: kept %d of %d utterances; dropped %s", dst, len(kept), len(tables["text"]), dropped)
    return True


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, required=True, help="formatted data directory (stage 3)")
    parser.add_argument("--dst", type=Path, required=True, help="output directory")
    parser.add_argument("--fs", type=int, required=True, help="sample rate in Hz")
    parser.add_argument("--min_wav_duration", type=float, required=True, help="seconds")
    parser.add_argument("--max_wav_duration", type=float, required=True, help="seconds")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    return run_cli(
        lambda: filter_data_dir(args.src, args.dst, args.fs, args.min_wav_duration, args.max_wav_duration)
    )


if __name__ == "__main__":
    sys.exit(main())
