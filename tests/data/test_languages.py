"""The language table and the word filter used for the generated text."""

from __future__ import annotations

import pytest

from espnet_pathways.data.corpus_text import load_vocabulary
from espnet_pathways.data.languages import LANGUAGES, UnknownLanguageError, get_language, parse_langs


def test_table_names_and_folders() -> None:
    assert list(LANGUAGES) == ["en", "fr", "it", "nl", "de", "es", "pt", "pl"]
    assert get_language("nl").mls_dir == "mls_dutch"
    assert get_language("pt").mls_opus_dir == "mls_portuguese_opus"


def test_parse_langs_keeps_order_and_rejects_bad_codes() -> None:
    assert parse_langs("fr en") == ("fr", "en")
    assert parse_langs(["it", "nl de"]) == ("it", "nl", "de")
    with pytest.raises(UnknownLanguageError, match="'english'; known codes: en fr it nl de es pt pl"):
        parse_langs("english")
    with pytest.raises(ValueError, match="more than once: en"):
        parse_langs("en fr en")
    with pytest.raises(UnknownLanguageError, match="no language given"):
        parse_langs("  ")


@pytest.mark.parametrize(
    "code, good, bad",
    [
        ("en", ["the", "don't", "a", "i"], ["mr", "tv", "u.s", "3", "s", "x'"]),
        ("fr", ["été", "aujourd'hui", "à", "cœur"], ["qu", "km", "l", "d", "°"]),
        ("it", ["è", "perché", "e"], ["dell", "l", "tv"]),
        ("nl", ["één", "foto's", "u"], ["http", "km", "t"]),
    ],
)
def test_word_filter(code: str, good: list[str], bad: list[str]) -> None:
    lang = get_language(code)
    assert all(lang.is_word(w) for w in good), [w for w in good if not lang.is_word(w)]
    assert not any(lang.is_word(w) for w in bad), [w for w in bad if lang.is_word(w)]


@pytest.mark.parametrize("code", ["en", "fr", "it", "nl"])
def test_vocabulary_is_clean_frequent_and_deterministic(code: str) -> None:
    lang = get_language(code)
    vocab = load_vocabulary(lang, 300)
    assert len(vocab.words) == len(set(vocab.words)) == 300
    assert all(lang.is_word(w) for w in vocab.words)
    assert abs(sum(vocab.probs) - 1.0) < 1e-9 and vocab.probs[0] > vocab.probs[-1]
    assert load_vocabulary(lang, 300) == vocab
