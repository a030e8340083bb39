"""Stage 5: the token-list CLI over a training data dir."""

from __future__ import annotations

import pytest

from espnet_pathways.recipe.stages import token_list
from espnet_pathways.text import MultilingualTokenizer, read_token_list

EN = ["the cat sat on the mat", "a dog ran in the park", "the sun is warm today", "we like green tea"] * 5
FR = ["le chat est sur le tapis", "un chien court dans le parc", "il fait beau", "nous aimons le thé vert"] * 5


@pytest.fixture
def train_dir(tmp_path):
    d = tmp_path / "train"
    d.mkdir()
    text, utt2lang = [], []
    for lang, lines in (("en", EN), ("fr", FR)):
        for i, line in enumerate(lines):
            text.append(f"{lang}_{i:03d} {line}")
            utt2lang.append(f"{lang}_{i:03d} {lang}")
    (d / "text").write_text("\n".join(text) + "\n", encoding="utf-8")
    (d / "utt2lang").write_text("\n".join(utt2lang) + "\n", encoding="utf-8")
    (d / "lang_list.txt").write_text("en\nfr\n", encoding="utf-8")
    return d


@pytest.mark.parametrize(
    "spec, expected",
    [("64", {"en": 64, "fr": 64}), ("en:64 fr:32", {"en": 64, "fr": 32}), ("fr:32,en:64", {"en": 64, "fr": 32})],
)
def test_parse_nbpe(spec, expected):
    assert token_list.parse_nbpe(spec, ["en", "fr"]) == expected


@pytest.mark.parametrize(
    "spec, match",
    [("en:64", r"missing languages \['fr'\]"), ("en:64 fr:32 de:8", r"unknown languages \['de'\]"),
     ("x", "not an integer"), ("1", ">= 2"), ("en:64 en:32", "given twice"), (":3", "LANG:N")],
)
def test_parse_nbpe_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        token_list.parse_nbpe(spec, ["en", "fr"])


def test_cli_builds_and_skips(train_dir, tmp_path):
    out = tmp_path / "token_list" / "bpe_unigram"
    argv = ["--train_dir", str(train_dir), "--out_dir", str(out), "--nbpe", "en:25 fr:24"]
    assert token_list.main(argv) == 0
    tokens = read_token_list(out / "tokens.txt")
    tok = MultilingualTokenizer(out)
    assert tok.langs == ["en", "fr"]
    assert tok.decode(tok.encode_ids("le chat est sur le tapis", "fr")) == "le chat est sur le tapis"
    stamp = (out / token_list.STAMP).read_text()
    assert token_list.main(argv) == 0 and (out / token_list.STAMP).read_text() == stamp
    assert not token_list.make_token_list(train_dir, out, "bpe", "unigram", "en:25 fr:24", 0, 1.0, True)
    assert len(tokens) == len(set(tokens))


def test_char_units(train_dir, tmp_path):
    out = tmp_path / "char"
    assert token_list.make_token_list(train_dir, out, "char", "unigram", "512", 0, 1.0, True)
    pieces = read_token_list(out / "tokens.txt")[2:-1]
    assert all(len(p) == 1 for p in pieces) and "é" in pieces


def test_unknown_language_in_utt2lang(train_dir, tmp_path):
    (train_dir / "utt2lang").write_text((train_dir / "utt2lang").read_text().replace("fr_002 fr", "fr_002 de"))
    with pytest.raises(ValueError, match=r"utt2lang:23: utterance 'fr_002' has language 'de'"):
        token_list.make_token_list(train_dir, tmp_path / "o", "bpe", "unigram", "20", 0, 1.0, True)
    assert token_list.main(["--train_dir", str(train_dir), "--out_dir", str(tmp_path / "o"), "--nbpe", "20"]) == 1
    assert not (tmp_path / "o").exists()


def test_language_without_text(train_dir, tmp_path):
    (train_dir / "lang_list.txt").write_text("en\nfr\nnl\n")
    with pytest.raises(ValueError, match=r"no training text for language\(s\) \['nl'\]"):
        token_list.make_token_list(train_dir, tmp_path / "o", "bpe", "unigram", "20", 0, 1.0, True)


def test_vocab_too_large(train_dir, tmp_path):
    with pytest.raises(ValueError, match="en: training failed"):
        token_list.make_token_list(train_dir, tmp_path / "o", "bpe", "unigram", "5000", 0, 1.0, True)
    assert token_list.make_token_list(train_dir, tmp_path / "o", "bpe", "unigram", "5000", 0, 1.0, False)
