"""The languages of Multilingual LibriSpeech: code, release name, alphabet and espeak-ng voice.

This is the one table that maps a language code (``en``) to its MLS folder name
(``mls_english``); the corpus generator and the data prep both use it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence, Union

__all__ = [
    "Language",
    "LANGUAGES",
    "UnknownLanguageError",
    "get_language",
    "parse_langs",
]


@dataclass(frozen=True)
class Language:
    """One MLS language.

    Attributes:
        code: ISO 639-1 code used in ids and ``utt2lang`` (``"en"``).
        name: MLS release name (``"english"`` → folder ``mls_english``).
        letters: lowercase letters a word of this language may use (apostrophe is always allowed).
        one_letter_words: the single-letter words that are real words (others are tokenizer debris).
        espeak_voice: espeak-ng voice name.
        not_words: clitic stubs that wordfreq's tokenizer cuts off at an apostrophe (``qu`` of ``qu'il``).
    """

    code: str
    name: str
    letters: str
    one_letter_words: frozenset[str]
    espeak_voice: str
    not_words: frozenset[str] = frozenset()

    @property
    def mls_dir(self) -> str:
        """Folder name of the FLAC release (``mls_english``)."""
        return f"mls_{self.name}"

    @property
    def mls_opus_dir(self) -> str:
        """Folder name of the Opus release (``mls_english_opus``)."""
        return f"mls_{self.name}_opus"

    def is_word(self, word: str) -> bool:
        """True when ``word`` is made only of this language's letters (and apostrophes) and has a
        vowel: vowel-less tokens are abbreviations (``mr``, ``km``, ``tv``) that a TTS expands."""
        if word in self.not_words:
            return False
        if len(word) == 1:
            return word in self.one_letter_words
        pattern = "[" + re.escape(self.letters) + "']+"
        return re.fullmatch(pattern, word) is not None and any(_is_vowel(c) for c in word)


def _is_vowel(char: str) -> bool:
    """Vowel letters, accented ones included (``é`` → ``e``), plus the ligatures œ æ ĳ."""
    base = unicodedata.normalize("NFKD", char)[:1]
    return (base != "" and base in "aeiouy") or char in "œæĳ"


_ASCII = "abcdefghijklmnopqrstuvwxyz"

LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", "english", _ASCII, frozenset({"a", "i"}), "en"),
        Language("fr", "french", _ASCII + "àâæçéèêëîïôœùûüÿ", frozenset({"a", "à", "y"}), "fr",
                 frozenset({"qu", "jusqu", "lorsqu", "puisqu", "quoiqu"})),
        Language("it", "italian", _ASCII + "àèéìíîòóùú", frozenset({"a", "e", "è", "i", "o"}), "it",
                 frozenset({"all", "dall", "dell", "nell", "sull", "quest", "quell"})),
        Language("nl", "dutch", _ASCII + "áéíóúàèëïöüĳ", frozenset({"u"}), "nl"),
        Language("de", "german", _ASCII + "äöüß", frozenset(), "de"),
        Language("es", "spanish", _ASCII + "áéíóúüñ", frozenset({"a", "e", "o", "u", "y"}), "es"),
        Language("pt", "portuguese", _ASCII + "áâãàçéêíóôõú", frozenset({"a", "e", "o", "à"}), "pt"),
        Language("pl", "polish", _ASCII + "ąćęłńóśźż", frozenset({"a", "i", "o", "u", "w", "z"}), "pl"),
    )
}


class UnknownLanguageError(ValueError):
    """A language code that is not in :data:`LANGUAGES`."""


def get_language(code: str) -> Language:
    """Return the :class:`Language` for ``code``; raise :class:`UnknownLanguageError` naming the known codes."""
    try:
        return LANGUAGES[code]
    except KeyError:
        known = " ".join(LANGUAGES)
        raise UnknownLanguageError(f"unknown language code {code!r}; known codes: {known}") from None


def parse_langs(langs: Union[str, Iterable[str]]) -> tuple[str, ...]:
    """Turn ``"en fr"`` or ``["en", "fr it"]`` into validated codes, keeping order; duplicates are an error."""
    items: Sequence[str] = [langs] if isinstance(langs, str) else list(langs)
    codes = tuple(code for item in items for code in item.split())
    if not codes:
        raise UnknownLanguageError(f"no language given; known codes: {' '.join(LANGUAGES)}")
    for code in codes:
        get_language(code)
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise ValueError(f"language codes given more than once: {' '.join(duplicates)}")
    return codes
