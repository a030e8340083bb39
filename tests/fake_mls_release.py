"""Tiny synthetic MLS releases (sine tones written with soundfile, no espeak) for data-prep tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from espnet_pathways.data.languages import get_language

__all__ = ["FakeRelease", "write_fake_release"]


@dataclass
class FakeRelease:
    """A tiny MLS release of one language, written with soundfile (sine tones, no espeak)."""

    root: Path
    code: str
    folder: Path
    ext: str
    ids: dict[str, list[str]] = field(default_factory=dict)
    one_hour: list[list[str]] = field(default_factory=list)
    nine_hour: list[str] = field(default_factory=list)

    def transcripts(self, split: str) -> Path:
        return self.folder / split / "transcripts.txt"

    def audio(self, split: str, utt: str) -> Path:
        spk, book, _ = utt.split("_")
        return self.folder / split / "audio" / spk / book / f"{utt}.{self.ext}"

    def line_of(self, split: str, utt: str) -> int:
        """1-based line number of ``utt`` in the split's transcripts."""
        lines = self.transcripts(split).read_text(encoding="utf-8").splitlines()
        return next(i for i, line in enumerate(lines, start=1) if line.split("\t")[0] == utt)


# Speakers of different digit widths (7, 70, 123) exercise C-locale ordering.
TRAIN_SPEAKERS = (7, 70, 123)
DEV_SPEAKERS = (501,)
TEST_SPEAKERS = (602,)


def _tone(seconds: float, freq: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000.0
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def write_fake_release(root: Path, code: str, opus: bool = False) -> FakeRelease:
    """Write ``root/mls_<name>[_opus]/`` with 12 train (3 speakers × 2 books × 2), 3 dev and 3 test
    utterances, limited_supervision folds (one utterance each) and a 3-utterance 9hr set."""
    lang = get_language(code)
    folder = root / (lang.mls_opus_dir if opus else lang.mls_dir)
    release = FakeRelease(root, code, folder, "opus" if opus else "flac")
    rng = np.random.default_rng(len(code) + ord(code[0]))
    for split, speakers, books, segs in (
        ("train", TRAIN_SPEAKERS, (11, 12), (0, 1)),
        ("dev", DEV_SPEAKERS, (21,), (0, 1, 2)),
        ("test", TEST_SPEAKERS, (31,), (0, 1, 2)),
    ):
        ids = [f"{spk}_{book}_{seg:06d}" for spk in speakers for book in books for seg in segs]
        lines = []
        for i, utt in enumerate(ids):
            path = release.audio(split, utt)
            path.parent.mkdir(parents=True, exist_ok=True)
            audio = _tone(0.25, 200.0 + 20 * i, rng)
            if opus:
                sf.write(str(path), audio, 16000, format="OGG", subtype="OPUS")
            else:
                sf.write(str(path), audio, 16000, format="FLAC", subtype="PCM_16")
            lines.append(f"{utt}\t{code} word {split} {i}\n")
        (folder / split).mkdir(parents=True, exist_ok=True)
        (folder / split / "transcripts.txt").write_text("".join(lines), encoding="utf-8")
        release.ids[split] = ids
    train = release.ids["train"]
    release.one_hour = [[train[f]] for f in range(6)]
    release.nine_hour = train[6:9]
    for fold, handles in enumerate(release.one_hour):
        path = folder / "train" / "limited_supervision" / "1hr" / str(fold) / "handles.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{h}\n" for h in handles), encoding="utf-8")
    nine = folder / "train" / "limited_supervision" / "9hr" / "handles.txt"
    nine.parent.mkdir(parents=True, exist_ok=True)
    nine.write_text("".join(f"{h}\n" for h in release.nine_hour), encoding="utf-8")
    return release


def truncate_file(path: Path, keep: float = 0.6) -> None:
    """Cut ``path`` to its first ``keep`` fraction of bytes (an interrupted copy: the header stays readable)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
