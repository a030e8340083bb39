"""What the generated MLS-shaped corpus contains: sizes, speakers, books and sentence drafts.

Everything here is a pure function of (language, size, seed, train scale); no audio is made.
A train scale other than 1 (``--lang_scale``) changes that language's train split only: its dev
and test speakers, books and sentences are those of scale 1, and other languages draw from their
own random streams (:func:`rng_for`), so they do not change either.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Union

import numpy as np

from espnet_pathways.data.corpus_text import Vocabulary, draft_words
from espnet_pathways.data.languages import LANGUAGES, Language
from espnet_pathways.data.mls_format import ONE_HOUR_FOLDS, SPLITS, UttId

__all__ = [
    "CorpusSize",
    "SIZES",
    "Speaker",
    "UttPlan",
    "parse_lang_scale",
    "train_amounts",
    "speaker_pool",
    "assign_speakers",
    "assign_books",
    "plan_split",
    "plan_language",
    "limited_supervision",
    "rng_for",
]

MALE_VARIANTS: tuple[str, ...] = tuple(f"m{i}" for i in range(1, 9))
FEMALE_VARIANTS: tuple[str, ...] = tuple(f"f{i}" for i in range(1, 6))
RATES: tuple[int, ...] = (135, 150, 165, 180)
PITCHES: tuple[int, ...] = (30, 42, 54, 66)
MIN_SECONDS = 1.5
MAX_SECONDS = 4.0
BOOK_RANGE = (100, 16000)  # book ids are drawn from [100, 16000)
BOOKS_PER_SPEAKER = 4  # candidate books of a speaker (1–4 are used, by utterance count)


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
        # Method comparisons: > 3000 test words per language (8.4-8.9 words an utterance: 3370-3550
        # measured for en fr it nl), 8 test speakers; limited supervision fits --lang_scale >= 0.1.
        CorpusSize("repro", 500, {"train": 24, "dev": 4, "test": 8}, {"train": 1500, "dev": 100, "test": 400}, 10, 90),
    )
}


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def parse_lang_scale(spec: Union[str, Iterable[str], Mapping[str, float], None], langs: Iterable[str]) -> dict[str, float]:
    """``"en:4 fr:1 nl:0.25"`` (or its words, or a mapping) as ``{code: scale}`` for the languages
    that are not at scale 1.

    Raises ``ValueError`` naming ``--lang_scale`` for a malformed entry, a code not in ``langs`` (or not a
    language at all), a repeated code, or a scale that is not a finite number > 0.
    """
    option = "--lang_scale"
    langs = tuple(langs)
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        items = [(str(k), v) for k, v in spec.items()]
    else:
        words = [w for item in ([spec] if isinstance(spec, str) else spec) for w in str(item).split()]
        items = []
        for word in words:
            code, sep, value = word.partition(":")
            if not sep or not code or not value:
                raise ValueError(f"{option}: {word!r} is not <lang>:<scale>, e.g. {option} \"en:4 nl:0.25\"")
            items.append((code, value))
    out: dict[str, float] = {}
    for code, value in items:
        if code not in LANGUAGES:
            raise ValueError(f"{option}: unknown language code {code!r}; known codes: {' '.join(LANGUAGES)}")
        if code not in langs:
            raise ValueError(f"{option}: {code!r} is not one of the languages generated ({' '.join(langs)})")
        if code in out:
            raise ValueError(f"{option}: {code!r} is given more than once")
        try:
            scale = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{option}: scale of {code!r} is {value!r}, not a number") from None
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"{option}: scale of {code!r} must be a number > 0, got {value!r}")
        out[code] = scale
    return {code: scale for code, scale in out.items() if scale != 1.0}


def train_amounts(size: CorpusSize, scale: float = 1.0) -> tuple[int, int]:
    """(utterances, speakers) of the train split at ``scale`` times the size's amounts.

    Both are rounded half up; at least 2 speakers (one of each gender) and no more speakers than
    utterances. :func:`assign_speakers` may lower the speakers further to the voices that exist.
    """
    if scale <= 0:
        raise ValueError(f"train scale must be > 0, got {scale}")
    if scale == 1.0:
        return size.utterances["train"], size.speakers["train"]
    utterances = max(2, _round_half_up(size.utterances["train"] * scale))
    speakers = min(utterances, max(2, _round_half_up(size.speakers["train"] * scale)))
    return utterances, speakers


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


def _voice_queues(lang: Language, rng: np.random.Generator) -> dict[str, list[Speaker]]:
    """Each gender's voices round-robin over its variants (random order, random rate and pitch per round)."""
    pool = speaker_pool(lang)
    queues: dict[str, list[Speaker]] = {}
    for gender, variants in (("M", MALE_VARIANTS), ("F", FEMALE_VARIANTS)):
        order = [str(v) for v in rng.permutation(variants)]
        by_variant = {v: [pool[int(i)] for i in rng.permutation([j for j, s in enumerate(pool) if s.variant == v])] for v in order}
        queues[gender] = [by_variant[v][r] for r in range(len(RATES) * len(PITCHES)) for v in order]
    return queues


def _per_gender(count: int) -> dict[str, int]:
    """Half female; an odd count has one more male."""
    return {"M": (count + 1) // 2, "F": count // 2}


def assign_speakers(lang: Language, size: CorpusSize, seed: int, train_scale: float = 1.0) -> dict[str, list[Speaker]]:
    """Pick disjoint train/dev/test speakers, half of each split female (odd counts: one more male).

    Each gender's voices are queued round-robin over its variants, so a split uses every variant
    of a gender before it reuses one. Splits take the queue in the order train, dev, test with the
    size's counts; at ``train_scale`` != 1 the train split keeps a prefix of those train voices and
    takes any further ones from after the test voices (so dev and test do not change), at most as
    many as are left (the pool has 128 male and 80 female voices).
    Returns:
        ``{split: speakers sorted by id}``.
    """
    queues = _voice_queues(lang, rng_for(seed, lang, 0))
    taken = {"M": 0, "F": 0}
    out: dict[str, list[Speaker]] = {}
    for split in SPLITS:
        chosen: list[Speaker] = []
        for gender, wanted in _per_gender(size.speakers[split]).items():
            queue, start = queues[gender], taken[gender]
            if start + wanted > len(queue):
                raise ValueError(f"size {size.name!r} needs more {gender} voices than the {len(queue)} that exist")
            chosen += queue[start : start + wanted]
            taken[gender] += wanted
        out[split] = sorted(chosen, key=lambda s: s.id)
    if train_scale != 1.0:
        base = _per_gender(size.speakers["train"])
        left = {g: len(queues[g]) - taken[g] for g in queues}
        count = min(train_amounts(size, train_scale)[1], 2 * (base["M"] + left["M"]) - 1, 2 * (base["F"] + left["F"]) + 1)
        chosen = []
        for gender, wanted in _per_gender(count).items():
            queue = queues[gender]
            extra = max(0, wanted - base[gender])
            chosen += queue[: min(wanted, base[gender])] + queue[taken[gender] : taken[gender] + extra]
        out["train"] = sorted(chosen, key=lambda s: s.id)
    return out


def assign_books(
    lang: Language, size: CorpusSize, seed: int, speakers: dict[str, list[Speaker]], train_scale: float = 1.0
) -> dict[str, list[tuple[int, ...]]]:
    """:data:`BOOKS_PER_SPEAKER` candidate books for each speaker of :func:`assign_speakers`, all distinct.

    Returns:
        ``{split: [books of speakers[split][k] for each k]}``. The size's speakers draw from one
        stream, in split order; a train split at ``train_scale`` != 1 draws new books from a stream
        of its own, among those the others do not use.
    """
    n = BOOKS_PER_SPEAKER
    base = rng_for(seed, lang, 2).choice(np.arange(*BOOK_RANGE), size=n * sum(size.speakers.values()), replace=False)
    out: dict[str, list[tuple[int, ...]]] = {}
    first = 0
    for split in SPLITS:
        books = base
        start = first
        if split == "train" and train_scale != 1.0:
            free = np.setdiff1d(np.arange(*BOOK_RANGE), base)
            books = rng_for(seed, lang, 2, 1).choice(free, size=n * len(speakers[split]), replace=False)
            start = 0
        out[split] = [tuple(int(b) for b in books[start + n * k : start + n * (k + 1)]) for k in range(len(speakers[split]))]
        first += n * size.speakers[split]
    return out


def plan_split(
    lang: Language,
    size: CorpusSize,
    seed: int,
    split: str,
    speakers: list[Speaker],
    books: list[tuple[int, ...]],
    vocab: Vocabulary,
    total: int,
) -> list[UttPlan]:
    """Spread ``total`` utterances evenly over ``speakers``, each speaker over 1–4 of its ``books``."""
    rng = rng_for(seed, lang, 1, SPLITS.index(split))
    plans: list[UttPlan] = []
    for k, speaker in enumerate(speakers):
        count = total // len(speakers) + (1 if k < total % len(speakers) else 0)
        n_books = int(min(BOOKS_PER_SPEAKER, max(1, round(count / 60))))
        next_segment = [0] * n_books
        for i in range(count):
            b = i * n_books // count
            segment = next_segment[b]
            next_segment[b] += 1
            n_words = int(rng.integers(size.min_words, size.max_words + 1))
            words = draft_words(rng, vocab, size.max_words + 4)
            snr = float(rng.uniform(30.0, 40.0))
            noise_seed = int(rng.integers(0, 2**31 - 1))
            plans.append(UttPlan(UttId(speaker.id, books[k][b], segment), speaker, words, n_words, snr, noise_seed))
    return plans


def plan_language(
    lang: Language, size: CorpusSize, seed: int, vocab: Vocabulary, train_scale: float = 1.0
) -> dict[str, list[UttPlan]]:
    """Every planned utterance of one language: ``{split: plans}`` (see the module docstring)."""
    speakers = assign_speakers(lang, size, seed, train_scale)
    books = assign_books(lang, size, seed, speakers, train_scale)
    totals = {split: size.utterances[split] for split in SPLITS}
    totals["train"] = train_amounts(size, train_scale)[0]
    need = ONE_HOUR_FOLDS * size.one_hour_fold + size.nine_hour
    if totals["train"] < need:
        raise ValueError(
            f"--lang_scale {lang.code}:{train_scale:g} leaves {totals['train']} train utterances; size "
            f"{size.name!r} needs at least {need} for limited_supervision (scale >= {need / size.utterances['train']:g})"
        )
    return {split: plan_split(lang, size, seed, split, speakers[split], books[split], vocab, totals[split]) for split in SPLITS}


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
