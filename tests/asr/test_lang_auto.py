"""``lang="auto"``: decoding with every pathway and keeping the best (Python API and CLI).

The model is the tiny tone-corpus transducer with random weights (no training). Where the answer
must be known, the joiner is set up so that every joint activation is ~1 and the blank row of the
output layer alone gives blank a logit of ~10 (every other logit 0): the pathway that keeps that
row is confident, the pathway whose mask removes it sees a uniform distribution, so auto must
pick the former whichever language it is.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from asr_tiny_corpus import LANGS, TINY_CONFIG, tone_word, write_corpus
from espnet_pathways.asr import loader
from espnet_pathways.asr.inference import AUTO_LANG, DecodingResult, Speech2Text, StreamingSpeech2Text, lid_score
from espnet_pathways.bin import asr_inference
from espnet_pathways.masks import MaskSet, attach, prunable_parameters
from espnet_pathways.tasks.asr import PathwaysASRTask

WORDS = ["cad", "dcea", "bed"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("lang_auto")
    files = write_corpus(root / "data")
    (root / "train.yaml").write_text(TINY_CONFIG)
    files["config"] = root / "train.yaml"
    return files


def build(corpus: dict) -> tuple:
    """(random-weight tiny transducer, its training args); some labels are emitted (blank bias lowered)."""
    args = PathwaysASRTask.get_parser().parse_args(
        ["--config", str(corpus["config"]), "--token_list", str(corpus["tokens"]), "--lang_list", str(corpus["lang_list"])]
    )
    torch.manual_seed(0)
    model = PathwaysASRTask.build_model(args)
    with torch.no_grad():
        model.joiner.output.bias[0] -= 1.0
    return model, args


def random_masks(model, langs=LANGS, sparsity: float = 0.5) -> MaskSet:
    gen = torch.Generator().manual_seed(1)
    params = prunable_parameters(model)
    return MaskSet({l: {n: torch.rand(p.shape, generator=gen) >= sparsity for n, p in params.items()} for l in langs})


def confident_pathway(model, right: str) -> MaskSet:
    """Masks where only pathway ``right`` keeps the blank row of the output layer (see the module doc)."""
    joiner = model.joiner
    with torch.no_grad():
        for proj in (joiner.encoder_proj, joiner.predictor_proj):
            proj.weight.mul_(1e-3)
        joiner.encoder_proj.bias.fill_(5.0)  # tanh(~5): every joint activation ~1
        joiner.output.weight.zero_()
        joiner.output.weight[0] = 10.0 / joiner.output.weight.size(1)
        joiner.output.bias.zero_()
    keep = {n: torch.ones_like(p, dtype=torch.bool) for n, p in prunable_parameters(model).items()}
    wrong = {n: k.clone() for n, k in keep.items()}
    wrong["joiner.output.weight"][0] = False
    return MaskSet({lang: keep if lang == right else wrong for lang in LANGS})


def decoder(model, **kwargs) -> Speech2Text:
    return Speech2Text.from_model(model, lang_list=LANGS, **kwargs)


@pytest.mark.parametrize("right", LANGS)
def test_auto_picks_the_pathway_that_is_right_by_construction(corpus, right):
    model, _ = build(corpus)
    attach(model, confident_pathway(model, right), mode="hard", lang_list=LANGS)
    wav = tone_word("dcea", seed=0)
    for kwargs in ({"streaming": False}, {"lid_chunks": 0}, {"lid_chunks": 1}, {"lid_chunks": 2}):
        best = decoder(model, **kwargs)(wav, lang=AUTO_LANG)[0]
        assert best.lang == right, kwargs
    stream = StreamingSpeech2Text(decoder(model, lid_chunks=1))
    stream.reset(AUTO_LANG)
    for start in range(0, len(wav), 1000):
        stream(wav[start : start + 1000])
    assert stream(wav[:0], is_final=True)[0].lang == right
    # the winner's per-decision log-probability is ~0, the loser's -log(V)
    s2t = decoder(model, lid_chunks=0)
    wrong = next(l for l in LANGS if l != right)
    assert s2t(wav, lang=right)[0].score > s2t(wav, lang=wrong)[0].score + 10


def test_streaming_auto_equals_whole_utterance_auto_and_the_chosen_pathway(corpus):
    model, _ = build(corpus)
    attach(model, random_masks(model, ["xx", "yy", "zz"]), mode="hard", lang_list=["xx", "yy", "zz"])
    langs = ["xx", "yy", "zz"]
    whole = Speech2Text.from_model(model, lang_list=langs, lid_chunks=0)
    late = Speech2Text.from_model(model, lang_list=langs, lid_chunks=10_000)  # more than any utterance's chunks
    early = Speech2Text.from_model(model, lang_list=langs, lid_chunks=1)
    chosen = set()
    for seed, word in enumerate(WORDS):
        wav = tone_word(word, seed=seed)
        a, b = whole(wav, lang=AUTO_LANG)[0], late(wav, lang=AUTO_LANG)[0]
        assert (a.lang, a.text, a.score) == (b.lang, b.text, b.score)
        # the choice is the best lid_score among the pathways' whole-utterance decodings
        singles = {lang: whole(wav, lang=lang)[0] for lang in langs}
        scores = {l: lid_score(r) for l, r in singles.items()}
        assert a.lang == max(langs, key=scores.get)
        assert (a.text, a.score) == (singles[a.lang].text, singles[a.lang].score)
        # after k chunks the chosen pathway continues alone: exactly its own decoding
        c = early(wav, lang=AUTO_LANG)[0]
        assert (c.text, c.score) == (singles[c.lang].text, singles[c.lang].score)
        chosen.add(a.lang)
        # an audio stream fed in pieces gives the same result as the whole utterance
        stream = StreamingSpeech2Text(early)
        stream.reset(AUTO_LANG)
        for start in range(0, len(wav), 2000):
            partial = stream(wav[start : start + 2000])[0]
            assert partial.lang in langs
        final = stream(wav[:0], is_final=True)[0]
        assert (final.lang, final.text, final.score) == (c.lang, c.text, c.score)
    assert any(len(singles[l].token_int) for l in langs)  # the search emits labels: scores are not trivial


def test_lid_score_is_log_probability_per_label_plus_one():
    def hyp(score: float, n_tokens: int) -> DecodingResult:
        return DecodingResult(text="", tokens=[], token_int=list(range(n_tokens)), score=score)

    assert lid_score(hyp(-10.0, 4)) == pytest.approx(-2.0)
    assert lid_score(hyp(0.0, 0)) == 0.0
    assert lid_score(hyp(-12.0, 2)) < lid_score(hyp(-12.5, 6))  # a shorter hypothesis is not preferred for being short


def test_dense_and_shared_mask_models_refuse_auto(corpus):
    model, _ = build(corpus)
    with pytest.raises(ValueError, match=r"--lang auto needs a model with a pathway mask per language.*dense"):
        decoder(model)(tone_word("ab", seed=0), lang=AUTO_LANG)
    with pytest.raises(ValueError, match="dense"):
        decoder(model, lang=AUTO_LANG)
    params = prunable_parameters(model)
    attach(model, MaskSet({"*": {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}}), mode="hard",
           lang_list=LANGS)  # fmt: skip
    with pytest.raises(ValueError, match="only a shared mask"):
        decoder(model)(tone_word("ab", seed=0), lang=AUTO_LANG)
    stream = StreamingSpeech2Text(decoder(model))
    stream.reset(AUTO_LANG)
    with pytest.raises(ValueError, match="only a shared mask"):
        stream(tone_word("ab", seed=0))


def test_fixed_language_results_carry_it(corpus):
    model, _ = build(corpus)
    attach(model, random_masks(model), mode="hard", lang_list=LANGS)
    assert decoder(model)(tone_word("ab", seed=0), lang="yy")[0].lang == "yy"
    assert decoder(model, streaming=False)(tone_word("ab", seed=0), lang=1)[0].lang == "yy"


def _cli(corpus, out: Path, *extra: str) -> None:
    asr_inference.main([
        "--asr_train_config", str(corpus["model_config"]), "--asr_model_file", str(corpus["model_config"]),
        "--data_path_and_name_and_type", f"{corpus['wav.scp']},speech,sound", "--output_dir", str(out), *extra,
    ])  # fmt: skip


def _read(path: Path) -> dict:
    rows = (line.partition(" ") for line in path.read_text().splitlines())
    return {key: value for key, _, value in rows}


def test_cli_writes_the_chosen_language(corpus, tmp_path, monkeypatch):
    model, args = build(corpus)
    right = "yy"
    attach(model, confident_pathway(model, right), mode="hard", lang_list=LANGS)
    monkeypatch.setattr(loader, "MODEL_LOADER", lambda config, model_file, device: (model, args))
    corpus = dict(corpus, model_config=tmp_path / "config.yaml")
    corpus["model_config"].write_text("model: pathways_transducer\n")
    _cli(corpus, tmp_path / "auto", "--lang", "auto", "--lid_chunks", "2",
         "--data_path_and_name_and_type", f"{corpus['utt2lang_id']},lang,text_int")  # ignored with auto
    best = tmp_path / "auto" / "1best_recog"
    keys = set(_read(corpus["wav.scp"]))
    assert _read(best / "lang") == {k: right for k in keys}
    for name in ("text", "token", "token_int", "score"):
        assert set(_read(best / name)) == keys
    _cli(corpus, tmp_path / "fixed", "--lang", "xx")
    assert not (tmp_path / "fixed" / "1best_recog" / "lang").exists()  # outputs as before without auto
    with pytest.raises(ValueError, match="--lid_chunks must be >= 0"):
        _cli(corpus, tmp_path / "bad", "--lang", "auto", "--lid_chunks", "-1")


def test_cli_refuses_auto_for_a_dense_model(corpus, tmp_path, monkeypatch):
    model, args = build(corpus)
    monkeypatch.setattr(loader, "MODEL_LOADER", lambda config, model_file, device: (model, args))
    corpus = dict(corpus, model_config=tmp_path / "config.yaml")
    corpus["model_config"].write_text("model: pathways_transducer\n")
    with pytest.raises(ValueError, match="pathway mask per language"):
        _cli(corpus, tmp_path / "auto", "--lang", "auto")


def test_stock_espnet_models_refuse_auto():
    with pytest.raises(ValueError, match="--lang auto decodes pathways_transducer models only"):
        asr_inference.decode_with_espnet(["--asr_train_config", "conformer.yaml", "--lang", "auto"])
