"""Names and paths of the Multilingual LibriSpeech release layout, shared by the generator and the prep.

Layout of one language (``mls_english`` or ``mls_english_opus``)::

    metainfo.txt
    {train,dev,test}/transcripts.txt        <spk>_<book>_<seg>\\t<text>
    {train,dev,test}/segments.txt           <utt>\\t<url>\\t<start>\\t<end>
    {train,dev,test}/audio/<spk>/<book>/<spk>_<book>_<seg>.{flac,opus}
    train/limited_supervision/1hr/{0..5}/handles.txt
    train/limited_supervision/9hr/handles.txt
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SPLITS",
    "SAMPLE_RATE",
    "ONE_HOUR_FOLDS",
    "UttId",
    "parse_utt_id",
    "audio_path",
    "one_hour_handles",
    "nine_hour_handles",
]

SPLITS: tuple[str, ...] = ("train", "dev", "test")
SAMPLE_RATE = 16000
ONE_HOUR_FOLDS = 6

_UTT_RE = re.compile(r"(\d+)_(\d+)_(\d{6})")


@dataclass(frozen=True, order=True)
class UttId:
    """An MLS utterance id ``<speaker>_<book>_<segment>`` (segment has 6 digits)."""

    speaker: int
    book: int
    segment: int

    def __str__(self) -> str:
        return f"{self.speaker}_{self.book}_{self.segment:06d}"


def parse_utt_id(text: str) -> UttId:
    """Parse ``"10214_10108_000003"``; raise ``ValueError`` when it does not have that shape."""
    match = _UTT_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"utterance id {text!r} is not <speaker>_<book>_<6-digit segment>")
    return UttId(int(match[1]), int(match[2]), int(match[3]))


def audio_path(split_dir: Path, utt: UttId, ext: str) -> Path:
    """Path of an utterance's audio inside a split folder (``ext`` without dot: ``flac`` or ``opus``)."""
    return split_dir / "audio" / str(utt.speaker) / str(utt.book) / f"{utt}.{ext}"


def one_hour_handles(train_dir: Path, fold: int) -> Path:
    """``train/limited_supervision/1hr/<fold>/handles.txt``."""
    return train_dir / "limited_supervision" / "1hr" / str(fold) / "handles.txt"


def nine_hour_handles(train_dir: Path) -> Path:
    """``train/limited_supervision/9hr/handles.txt``."""
    return train_dir / "limited_supervision" / "9hr" / "handles.txt"
