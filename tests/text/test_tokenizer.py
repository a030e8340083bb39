"""Per-language SentencePiece models through one merged list: round trip, determinism, errors."""

from __future__ import annotations

import pickle

import pytest

from espnet_pathways.text import (
    BLANK,
    SOS_EOS,
    UNK,
    MultilingualTokenizer,
    SpmOptions,
    build_token_list_dir,
    read_token_list,
    train_sentencepiece,
)

LANGS = ["en", "fr", "it", "nl"]


@pytest.fixture(scope="module", params=["unigram", "bpe", "char"])
def token_dir(request, corpora, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "tokens"
    opts = {lang: SpmOptions(model_type=request.param, vocab_size=30) for lang in LANGS}
    build_token_list_dir(corpora, LANGS, opts, out)
    return out


def test_dir_layout_and_list_invariants(token_dir):
    assert sorted(p.name for p in token_dir.iterdir()) == ["en.model", "fr.model", "it.model", "nl.model", "tokens.txt"]
    tokens = read_token_list(token_dir / "tokens.txt")
    assert tokens[0] == BLANK and tokens[1] == UNK and tokens[-1] == SOS_EOS
    assert len(set(tokens)) == len(tokens)
    assert "<s>" not in tokens and "</s>" not in tokens


def test_merged_list_is_union_of_language_pieces(token_dir):
    tok = MultilingualTokenizer(token_dir)
    union = set()
    for lang in LANGS:
        sp = tok._processor(lang)
        union |= {sp.id_to_piece(i) for i in range(sp.get_piece_size()) if i != sp.unk_id()}
    assert set(tok.token_list) - {BLANK, UNK, SOS_EOS} == union


def test_round_trip_every_language(token_dir, corpora):
    tok = MultilingualTokenizer(token_dir)
    assert tok.langs == sorted(LANGS)
    for lang in LANGS:
        for text in corpora[lang][:10]:
            ids = tok.encode_ids(text, lang)
            assert ids and all(2 <= i < len(tok.token_list) - 1 for i in ids)
            assert tok.decode(ids) == text
            assert tok.decode(tok.encode(text, lang)) == text
            assert tok.for_lang(lang).tokens2text(tok.for_lang(lang).text2tokens(text)) == text


def test_decode_drops_blank_and_eos(token_dir):
    tok = MultilingualTokenizer(token_dir)
    ids = tok.encode_ids("the cat", "en")
    assert tok.decode([0, *ids, len(tok.token_list) - 1]) == "the cat"


def test_unknown_character_maps_to_unk(token_dir):
    tok = MultilingualTokenizer(token_dir)
    assert tok.unk_id in tok.encode_ids("the ж cat", "en")


def test_unknown_language(token_dir):
    with pytest.raises(KeyError, match="de"):
        MultilingualTokenizer(token_dir).encode("hallo", "de")


def test_pickle_reloads_models(token_dir):
    tok = MultilingualTokenizer(token_dir)
    ids = tok.encode_ids("le chat", "fr")
    clone = pickle.loads(pickle.dumps(tok))
    assert clone.encode_ids("le chat", "fr") == ids


def test_training_is_deterministic(corpora, tmp_path):
    opts = {lang: SpmOptions(model_type="unigram", vocab_size=30, seed=3) for lang in LANGS}
    build_token_list_dir(corpora, LANGS, opts, tmp_path / "a")
    build_token_list_dir(corpora, LANGS, opts, tmp_path / "b")
    for name in ["tokens.txt"] + [f"{lang}.model" for lang in LANGS]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_vocab_too_high_fails_clearly(corpora):
    with pytest.raises(ValueError, match="fr: training failed"):
        train_sentencepiece(corpora["fr"], SpmOptions(vocab_size=5000), name="fr")


def test_no_text_fails(tmp_path):
    with pytest.raises(ValueError, match="no non-empty"):
        build_token_list_dir({"en": ["", "  "]}, ["en"], {"en": SpmOptions()}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_model_missing_from_token_list(token_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "en.model").write_bytes((token_dir / "en.model").read_bytes())
    (bad / "tokens.txt").write_text(f"{BLANK}\n{UNK}\n{SOS_EOS}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing from tokens.txt"):
        MultilingualTokenizer(bad).encode("the cat", "en")
