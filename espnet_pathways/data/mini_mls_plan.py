"""What the generated MLS-shaped corpus contains: sizes, speakers, books and sentence drafts.

Everything here is a pure function of (language, size, seed); no audio is made.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from espnet_pathways.data.corpus_text import Vocabulary, draft_words
from espnet_pathways.data.languages import LANGUAGES, Language
from espnet_pathways.data.mls_format import ONE_HOUR_FOLDS, SPLITS, UttId

__all__ = [
    "CorpusSize",
    "SIZES",
    "Speaker",
    "UttPlan",
    "speaker_pool",
    "assign_speakers",
    "plan_split",
    "limited_supervision",
    "rng_for",
]

MALE_VARIANTS: tuple[str, ...] = tuple(f"m{i}" for i in range(1, 9))
FEMALE_VARIANTS: tuple[str, ...] = tuple(f"f{i}" for i in range(1, 6))
RATES: tuple[int, ...] = (135, 150, 165, 180)
PITCHES: tuple[int, ...] = (30, 42, 54, 66)
MIN_SECONDS = 1.5
MAX_SECONDS = 4.0


@dataclass(frozen=True)
class CorpusSize:
    """Per-language amounts of one corpus size."""

    name: str
    vocab: int
    speakers: dict[str, int]
    utterances: dict[str, int]
    one_hour_fold: int  # utterances in each of the 6 limited_supervision/1hr folds
    nine_hour: int  # utterances in limited_supervision/9hr
    min_words: int = 6
    max_words: int = 12


SIZES: dict[str, CorpusSize] = {
    s.name: s
    for s in (
        CorpusSize("ci", 60, {"train": 10, "dev": 2, "test": 2}, {"train": 24, "dev": 4, "test": 4}, 1, 8),
        CorpusSize("demo", 300, {"train": 16, "dev": 4, "test": 4}, {"train": 2000, "dev": 80, "test": 100}, 25, 1350),
        CorpusSize("large", 1000, {"train": 48, "dev": 6, "test": 6}, {"train": 8000, "dev": 300, "test": 400}, 100, 5400),
    )
}


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: one espeak-ng voice variant at one rate and pitch."""

    id: int
    variant: str
    rate: int
    pitch: int

    @property
    def gender(self) -> str:
        """``"M"`` or ``"F"`` from the variant name."""
        return "F" if self.variant.startswith("f") else "M"


@dataclass(frozen=True)
class UttPlan:
    """One utterance to synthesise. ``words`` is a draft longer than needed; the synthesiser
    starts from ``n_words`` and shortens or lengthens until the audio is 1.5–4 s."""

    utt: UttId
    speaker: Speaker
    words: tuple[str, ...]
    n_words: int
    snr_db: float
    noise_seed: int


def rng_for(seed: int, lang: Language, *path: int) -> np.random.Generator:
    """A generator determined by the seed, the language and a path of small integers."""
    position = list(LANGUAGES).index(lang.code)
    return np.random.default_rng([seed, position, *path])


def speaker_pool(lang: Language) -> list[Speaker]:
    """All (variant, rate, pitch) combinations with stable ids ``1000 * (table position + 1) + index``."""
    position = list(LANGUAGES).index(lang.code)
    combos = itertools.product(MALE_VARIANTS + FEMALE_VARIANTS, RATES, PITCHES)
    return [Speaker(1000 * (position + 1) + i, v, r, p) for i, (v, r, p) in enumerate(combos)]


def assign_speakers(lang: Language, size: CorpusSize, seed: int) -> dict[str, list[Speaker]]:
    """Pick disjoint train/dev/test speakers, half of each split female (odd counts: one more male).

    Each gender's voices are queued round-robin over its variants (random order, random rate and
    pitch per round), so a split uses every variant of a gender before it reuses one.
    """
    rng = rng_for(seed, lang, 0)
    pool = speaker_pool(lang)
    queues: dict[str, list[Speaker]] = {}
    for gender, variants in (("M", MALE_VARIANTS), ("F", FEMALE_VARIANTS)):
        order = [str(v) for v in rng.permutation(variants)]
        by_variant = {v: [pool[int(i)] for i in rng.permutation([j for j, s in enumerate(pool) if s.variant == v])] for v in order}
        queues[gender] = [by_variant[v][r] for r in range(len(RATES) * len(PITCHES)) for v in order]
    taken = {"M": 0, "F": 0}
    out: dict[str, list[Speaker]] = {}
    for split in SPLITS:
        count = size.speakers[split]
        wanted = {"M": (count + 1) // 2, "F": count // 2}
        chosen: list[Speaker] = []
        for gender in ("M", "F"):
            queue, start = queues[gender], taken[gender]
            if start + wanted[gender] > len(queue):
                raise ValueError(f"size {size.name!r} needs more {gender} voices than the {len(queue)} that exist")
            chosen += queue[start : start + wanted[gender]]
            taken[gender] += wanted[gender]
        out[split] = sorted(chosen, key=lambda s: s.id)
    return out


def plan_split(
    lang: Language, size: CorpusSize, seed: int, split: str, speakers: list[Speaker], vocab: Vocabulary
) -> list[UttPlan]:
    """Spread the split's utterances evenly over its speakers, each speaker over 1–4 books."""
    split_index = SPLITS.index(split)
    rng = rng_for(seed, lang, 1, split_index)
    total = size.utterances[split]
    book_rng = rng_for(seed, lang, 2)
    all_books = book_rng.choice(np.arange(100, 16000), size=4 * sum(size.speakers.values()), replace=False)
    first_book = 4 * sum(size.speakers[s] for s in SPLITS[:split_index])
    plans: list[UttPlan] = []
    for k, speaker in enumerate(speakers):
        count = total // len(speakers) + (1 if k < total % len(speakers) else 0)
        n_books = int(min(4, max(1, round(count / 60))))
        books = [int(b) for b in all_books[first_book + 4 * k : first_book + 4 * k + n_books]]
        next_segment = [0] * n_books
        for i in range(count):
            b = i * n_books // count
            segment = next_segment[b]
            next_segment[b] += 1
            n_words = int(rng.integers(size.min_words, size.max_words + 1))
            words = draft_words(rng, vocab, size.max_words + 4)
            snr = float(rng.uniform(30.0, 40.0))
            noise_seed = int(rng.integers(0, 2**31 - 1))
            plans.append(UttPlan(UttId(speaker.id, books[b], segment), speaker, words, n_words, snr, noise_seed))
    return plans


def limited_supervision(lang: Language, size: CorpusSize, seed: int, train_ids: list[str]) -> tuple[list[list[str]], list[str]]:
    """Disjoint ``1hr/0..5`` folds and a ``9hr`` set drawn from the train ids (each list sorted)."""
    need = ONE_HOUR_FOLDS * size.one_hour_fold + size.nine_hour
    if need > len(train_ids):
        raise ValueError(f"size {size.name!r}: limited supervision needs {need} utterances, train has {len(train_ids)}")
    rng = rng_for(seed, lang, 3)
    shuffled = [train_ids[int(i)] for i in rng.permutation(len(train_ids))]
    folds = [sorted(shuffled[f * size.one_hour_fold : (f + 1) * size.one_hour_fold]) for f in range(ONE_HOUR_FOLDS)]
    start = ONE_HOUR_FOLDS * size.one_hour_fold
    nine = sorted(shuffled[start : start + size.nine_hour])
    return folds, nine
