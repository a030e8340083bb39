"""Word lists and sentence drafts for the generated corpus, from the pinned ``wordfreq`` package."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import wordfreq

from espnet_pathways.data.languages import Language

__all__ = ["Vocabulary", "load_vocabulary", "draft_words"]


@dataclass(frozen=True)
class Vocabulary:
    """The ``size`` most frequent clean words of a language and their sampling probabilities."""

    words: tuple[str, ...]
    probs: tuple[float, ...]


def load_vocabulary(lang: Language, size: int, flatten: float = 0.5) -> Vocabulary:
    """Take the ``size`` most frequent words of ``lang`` that pass :meth:`Language.is_word`.

    Sampling probability is ``frequency ** flatten`` (normalised), so common words are common
    without drowning the rest. Raises ``ValueError`` if wordfreq has too few clean words.
    """
    words: list[str] = []
    candidates = wordfreq.top_n_list(lang.code, size * 3)
    for word in candidates:
        if lang.is_word(word) and word not in words:
            words.append(word)
            if len(words) == size:
                break
    if len(words) < size:
        raise ValueError(f"wordfreq has only {len(words)} clean {lang.code} words among the top {len(candidates)}")
    freqs = np.array([wordfreq.word_frequency(w, lang.code) for w in words], dtype=np.float64)
    weights = np.power(np.maximum(freqs, 1e-12), flatten)
    probs = weights / weights.sum()
    return Vocabulary(tuple(words), tuple(float(p) for p in probs))


def draft_words(rng: np.random.Generator, vocab: Vocabulary, count: int) -> tuple[str, ...]:
    """Draw ``count`` words (with replacement) and avoid the same word twice in a row."""
    indices = rng.choice(len(vocab.words), size=count * 2, p=np.asarray(vocab.probs))
    out: list[str] = []
    for index in indices:
        word = vocab.words[int(index)]
        if out and out[-1] == word:
            continue
        out.append(word)
        if len(out) == count:
            break
    while len(out) < count:  # extremely unlikely; keep the length contract deterministically
        out.append(vocab.words[(len(out) * 7) % len(vocab.words)])
    return tuple(out)
