"""Small per-language corpora for the SentencePiece tests."""

from __future__ import annotations

from typing import Dict, List

import pytest

_WORDS = {
    "en": "the cat sat on the mat while the dog was sleeping near the warm fire in the house",
    "fr": "le chat est assis sur le tapis pendant que le chien dort près du feu dans la maison été",
    "it": "il gatto è seduto sul tappeto mentre il cane dorme vicino al fuoco nella casa città",
    "nl": "de kat zit op de mat terwijl de hond slaapt bij het warme vuur in het huis één",
}


def make_sentences(lang: str, n: int = 60) -> List[str]:
    """Deterministic sentences: rotations of the language's word list."""
    words = _WORDS[lang].split()
    out = []
    for i in range(n):
        k = 4 + i % 7
        start = (i * 5) % len(words)
        out.append(" ".join(words[(start + j) % len(words)] for j in range(k)))
    return out


@pytest.fixture(scope="session")
def corpora() -> Dict[str, List[str]]:
    return {lang: make_sentences(lang) for lang in _WORDS}
