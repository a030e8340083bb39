"""Text files of the generated release besides the audio: transcripts, segments, metainfo, handles.

Pure functions from what was synthesised to file contents, in the MLS formats.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from espnet_pathways.data.corpus_text import Vocabulary, draft_words
from espnet_pathways.data.mini_mls_plan import Speaker
from espnet_pathways.data.mls_format import SAMPLE_RATE, UttId

__all__ = ["MadeUtt", "transcripts_text", "segments_text", "book_titles", "metainfo_text", "handles_text"]

METAINFO_COLUMNS = ("SPEAKER", "GENDER", "PARTITION", "MINUTES", "BOOK ID", "TITLE", "CHAPTER")


@dataclass(frozen=True)
class MadeUtt:
    """One synthesised utterance of a split."""

    utt: UttId
    speaker: Speaker
    text: str
    num_samples: int

    @property
    def seconds(self) -> float:
        return self.num_samples / SAMPLE_RATE


def _sorted(utts: list[MadeUtt]) -> list[MadeUtt]:
    return sorted(utts, key=lambda u: str(u.utt))


def transcripts_text(utts: list[MadeUtt]) -> str:
    """``<utt>\\t<text>`` lines sorted by id."""
    return "".join(f"{u.utt}\t{u.text}\n" for u in _sorted(utts))


def _book_slug(book: int, titles: dict[int, str]) -> str:
    ascii_title = unicodedata.normalize("NFKD", titles[book].lower()).encode("ascii", "ignore").decode()
    words = ["".join(c for c in w if c.isalnum()) for w in ascii_title.split()]
    return "_".join(w for w in words if w) + f"_{book}"


def segments_text(utts: list[MadeUtt], titles: dict[int, str], rng: np.random.Generator) -> str:
    """``<utt>\\t<url>\\t<start>\\t<end>``: the utterances of a book laid end to end in one
    invented LibriVox recording, with short gaps between them."""
    lines = []
    clock: dict[tuple[int, int], float] = {}
    for u in _sorted(utts):
        key = (u.utt.speaker, u.utt.book)
        start = clock.get(key, float(rng.uniform(1.0, 6.0)))
        end = start + u.seconds
        clock[key] = end + float(rng.uniform(0.3, 1.5))
        slug = _book_slug(u.utt.book, titles)
        url = f"http://www.archive.org/download/{slug}_librivox/{slug}_{u.utt.speaker:d}_64kb.mp3"
        lines.append(f"{u.utt}\t{url}\t{start:.2f}\t{end:.2f}\n")
    return "".join(lines)


def book_titles(books: list[int], vocab: Vocabulary, rng: np.random.Generator) -> dict[int, str]:
    """A made-up title of 2–4 capitalised vocabulary words for each book."""
    titles = {}
    for book in sorted(books):
        words = draft_words(rng, vocab, int(rng.integers(2, 5)))
        titles[book] = " ".join(w.capitalize() for w in words)
    return titles


def metainfo_text(by_split: dict[str, list[MadeUtt]], titles: dict[int, str]) -> str:
    """MLS ``metainfo.txt``: a ``|``-separated table, one row per (speaker, book, partition)."""
    rows: list[tuple[str, ...]] = []
    for split, utts in by_split.items():
        minutes: dict[tuple[int, int], float] = {}
        speakers: dict[int, Speaker] = {}
        for u in utts:
            key = (u.utt.speaker, u.utt.book)
            minutes[key] = minutes.get(key, 0.0) + u.seconds / 60.0
            speakers[u.utt.speaker] = u.speaker
        for (spk, book), mins in sorted(minutes.items()):
            chapter = f"Chapter {book % 27 + 1}"
            rows.append((str(spk), speakers[spk].gender, split, f"{mins:.3f}", str(book), titles[book], chapter))
    widths = [max(len(c), *(len(r[i]) for r in rows)) + 2 for i, c in enumerate(METAINFO_COLUMNS)]

    def fmt(cells: tuple[str, ...]) -> str:
        return "|".join(f" {c:^{w - 2}} " for c, w in zip(cells, widths)).rstrip() + "\n"

    return fmt(METAINFO_COLUMNS) + "".join(fmt(r) for r in rows)


def handles_text(ids: list[str]) -> str:
    """One utterance id a line."""
    return "".join(f"{i}\n" for i in ids)
