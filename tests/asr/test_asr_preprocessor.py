"""Language-aware preprocessing: per-language SentencePiece models, one merged token list."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import sentencepiece as spm
from espnet2.train.preprocessor import CommonPreprocessor

from espnet_pathways.tasks.asr import PathwaysASRTask
from espnet_pathways.tasks.preprocessor import LanguageAwarePreprocessor

TEXTS = {
    "fr": ["bonjour le monde", "le chat est noir", "la maison est grande", "bonjour la maison"] * 5,
    "nl": ["hallo wereld", "de kat is zwart", "het huis is groot", "hallo het huis"] * 5,
}


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    root = tmp_path_factory.mktemp("bpe")
    pieces = []
    for lang, lines in TEXTS.items():
        corpus = root / f"{lang}.txt"
        corpus.write_text("\n".join(lines) + "\n")
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(root / lang), vocab_size=20, model_type="unigram",
            character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0, minloglevel=2,
        )  # fmt: skip
        proc = spm.SentencePieceProcessor(model_file=str(root / f"{lang}.model"))
        pieces += [proc.id_to_piece(i) for i in range(1, proc.get_piece_size())]
    merged = ["<blank>", "<unk>", *dict.fromkeys(pieces), "<sos/eos>"]
    tokens = root / "tokens.txt"
    tokens.write_text("\n".join(merged) + "\n")
    return root, tokens, merged


def make(bpe, **kwargs) -> LanguageAwarePreprocessor:
    root, tokens, _ = bpe
    return LanguageAwarePreprocessor(
        train=True, lang_list=["fr", "nl"], token_type="bpe", token_list=str(tokens), bpemodel=str(root), **kwargs
    )


def test_each_utterance_uses_its_languages_model(bpe):
    root, _, merged = bpe
    pre = make(bpe)
    for lang_id, (lang, sentence) in enumerate([("fr", "bonjour le chat"), ("nl", "hallo de kat")]):
        out = pre("utt", {"text": sentence, "lang": np.array([lang_id])})
        expected = spm.SentencePieceProcessor(model_file=str(root / f"{lang}.model")).encode(sentence, out_type=str)
        assert [merged[i] for i in out["text"]] == expected
        assert out["text"].dtype == np.int64
    fr_as_nl = pre("u", {"text": "bonjour le chat", "lang": np.array([1])})["text"]
    fr_as_fr = pre("u", {"text": "bonjour le chat", "lang": np.array([0])})["text"]
    assert fr_as_nl.tolist() != fr_as_fr.tolist()


def test_language_errors_name_the_utterance(bpe):
    pre = make(bpe)
    with pytest.raises(ValueError, match=r"utterance utt9: .*'lang' data entry"):
        pre("utt9", {"text": "bonjour"})
    with pytest.raises(ValueError, match=r"utterance utt3: .*language id 5"):
        pre("utt3", {"text": "bonjour", "lang": np.array([5])})


def test_missing_model_or_lang_list_is_an_error(bpe):
    root, tokens, _ = bpe
    with pytest.raises(FileNotFoundError, match="'it'"):
        LanguageAwarePreprocessor(
            train=True, lang_list=["fr", "it"], token_type="bpe", token_list=str(tokens), bpemodel=str(root)
        )
    with pytest.raises(ValueError, match="--lang_list is required"):
        LanguageAwarePreprocessor(train=True, token_type="bpe", token_list=str(tokens), bpemodel=str(root))


def test_single_model_file_behaves_like_espnet(bpe):
    root, tokens, _ = bpe
    ours = LanguageAwarePreprocessor(
        train=False, token_type="bpe", token_list=str(tokens), bpemodel=str(root / "fr.model")
    )
    stock = CommonPreprocessor(train=False, token_type="bpe", token_list=str(tokens), bpemodel=str(root / "fr.model"))
    data = {"text": "le chat est grand"}
    assert ours("u", dict(data))["text"].tolist() == stock("u", dict(data))["text"].tolist()


def test_task_picks_the_language_aware_preprocessor_for_a_bpe_directory(bpe, tmp_path):
    root, tokens, _ = bpe
    langs = tmp_path / "langs.txt"
    langs.write_text("fr\nnl\n")
    args = PathwaysASRTask.get_parser().parse_args(
        ["--token_list", str(tokens), "--token_type", "bpe", "--bpemodel", str(root), "--lang_list", str(langs)]
    )
    pre = PathwaysASRTask.build_preprocess_fn(args, train=True)
    assert isinstance(pre, LanguageAwarePreprocessor) and pre.per_language
    assert args.lang_list == ["fr", "nl"]  # resolved to a list for config.yaml
    args_file = PathwaysASRTask.get_parser().parse_args(
        ["--token_list", str(tokens), "--token_type", "bpe", "--bpemodel", str(root / "nl.model")]
    )
    assert type(PathwaysASRTask.build_preprocess_fn(args_file, train=True)) is CommonPreprocessor
    assert isinstance(args, argparse.Namespace)
