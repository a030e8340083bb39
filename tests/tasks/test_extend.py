"""Adding a language to a trained pathways model: token ids, grown rows and masks, and
``freeze_existing`` through a real Adam/AdamW training loop (the existing languages' decoding
must stay identical, token for token)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

from espnet_pathways.asr.search.greedy import greedy_search
from espnet_pathways.masks import MaskMismatchError, MaskSet, attach, magnitude_masks, prunable_parameters
from espnet_pathways.masks.layout import ATTR
from espnet_pathways.pruning import PruningConfigError
from espnet_pathways.tasks.asr import PathwaysASRTask
from espnet_pathways.tasks.extend import extend_model, main
from espnet_pathways.text.token_list import extend_pieces, write_token_list

OLD_TOKENS = ["<blank>", "<unk>", *[f"p{i}" for i in range(10)], "<sos/eos>"]
NEW_PIECES = ["<unk>", "p3", "ñ", "á", "p7", "<s>", "é"]  # es's pieces: 3 new, 2 shared, 2 control
LANGS = ["en", "fr"]
ARCH = [
    "--model", "pathways_transducer", "--encoder", "emformer",
    "--encoder_conf", "{output_size: 32, num_layers: 1, num_heads: 2, ffn_dim: 64, time_reduction_stride: 4, "
    "segment_length: 2, right_context_length: 1, dropout: 0.0}",
    "--predictor_conf", "{embed_dim: 16, hidden_size: 24, dropout: 0.0}",
    "--joiner_conf", "{joint_size: 24}",
    "--frontend_conf", "{n_fft: 256, hop_length: 80, n_mels: 20}",
    "--model_conf", "{ctc_weight: 0.5}",
]  # fmt: skip


def random_masks(params, sparsity: float, seed: int):
    gen = torch.Generator().manual_seed(seed)
    return magnitude_masks({n: torch.rand(p.shape, generator=gen) for n, p in params.items()}, sparsity)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A 'trained' en/fr pathways model (random weights, 50% masks) saved as a run leaves it,
    a LAP-style shared mask on its tensors, and the merged token list with es."""
    root = tmp_path_factory.mktemp("extend")
    (root / "tokens.txt").write_text("\n".join(OLD_TOKENS) + "\n")
    (root / "langs.txt").write_text("\n".join(LANGS) + "\n")
    torch.manual_seed(0)
    args = PathwaysASRTask.get_parser().parse_args(
        ["--token_list", str(root / "tokens.txt"), "--lang_list", str(root / "langs.txt"), *ARCH]
    )
    model = PathwaysASRTask.build_model(args)
    params = prunable_parameters(model)
    attach(model, MaskSet({l: random_masks(params, 0.5, i) for i, l in enumerate(LANGS)}), lang_list=LANGS)
    torch.save(model.state_dict(), root / "old.pth")
    with (root / "config.yaml").open("w") as f:
        yaml_no_alias_safe_dump({k: v for k, v in vars(args).items() if k != "required"}, f, indent=4, sort_keys=False)
    MaskSet({"*": random_masks(params, 0.5, 7)}).save(root / "lap.pwm")
    token_dir = root / "token_list_es"
    token_dir.mkdir()
    write_token_list(token_dir / "tokens.txt", extend_pieces(OLD_TOKENS, NEW_PIECES, "es"))
    return {"root": root, "model": model, "tokens": token_dir / "tokens.txt"}


@pytest.fixture(scope="module")
def grown(trained) -> Path:
    root = trained["root"]
    extend_model(root / "config.yaml", root / "old.pth", trained["tokens"], "es", root / "grown", init_mask=root / "lap.pwm")
    return root / "grown"


def test_grown_checkpoint_keeps_every_existing_row_and_grows_masks(trained, grown):
    old = torch.load(trained["root"] / "old.pth")
    new = torch.load(grown / "model.pth")
    config = yaml.safe_load((grown / "config.yaml").read_text())
    assert config["lang_list"] == ["en", "fr", "es"] and "pruning_conf" not in config
    assert config["model_conf"]["lang_vocab_size"] == {"en": 12, "fr": 12}
    assert not any(k.startswith(f"{ATTR}.") or k.startswith("pathway_pruning.") for k in new)
    v_old, v_new = len(OLD_TOKENS), len(config["token_list"])
    assert v_new == v_old + 3
    for name, value in new.items():
        if name in ("joiner.output.weight", "joiner.output.bias", "predictor.embed.weight", "ctc.ctc_lo.weight",
                    "ctc.ctc_lo.bias"):
            assert value.shape[0] == v_new
            assert torch.equal(value[: v_old - 1], old[name][: v_old - 1]), name
            assert torch.equal(value[-1], old[name][-1]), name  # <sos/eos> moved with its id
        else:
            assert torch.equal(value, old[name]), name
    masks, old_masks = MaskSet.load(grown / "masks.pwm"), MaskSet.from_state_dict(old)
    assert masks.languages == ("en", "fr", "es")
    lap = MaskSet.load(trained["root"] / "lap.pwm")["*"]
    for name in masks.names:
        for lang in LANGS:
            if masks.shapes[name] == old_masks.shapes[name]:
                assert torch.equal(masks[lang][name], old_masks[lang][name])
            else:  # existing languages never use the new rows; es starts from LAP, True on its new rows
                assert not masks[lang][name][v_old - 1 : -1].any()
                assert torch.equal(masks[lang][name][: v_old - 1], old_masks[lang][name][: v_old - 1])
        if masks.shapes[name] != lap[name].shape:
            assert masks["es"][name][v_old - 1 : -1].all()
    record = json.loads((grown / "extend.json").read_text())
    assert record["new_tokens"] == ["ñ", "á", "é"]


def test_extend_errors_name_the_file_and_key(trained, tmp_path):
    root = trained["root"]
    cfg, pth = root / "config.yaml", root / "old.pth"
    with pytest.raises(ValueError, match=r"config.yaml: lang_list: language 'fr' is already"):
        extend_model(cfg, pth, trained["tokens"], "fr", tmp_path / "x")
    with pytest.raises(ValueError, match="unknown language code 'xx'"):
        extend_model(cfg, pth, trained["tokens"], "xx", tmp_path / "x")
    bad = tmp_path / "bad.pwm"
    MaskSet({"*": {"encoder.nope.weight": torch.ones(3, dtype=torch.bool)}}).save(bad)
    with pytest.raises(MaskMismatchError, match="bad.pwm fits neither"):
        extend_model(cfg, pth, trained["tokens"], "es", tmp_path / "x", init_mask=bad)
    moved = tmp_path / "moved.txt"
    moved.write_text("\n".join(["<blank>", "<unk>", "ñ", *OLD_TOKENS[2:]]) + "\n")
    with pytest.raises(ValueError, match="moved.txt: token 'p0' has id 3"):
        extend_model(cfg, pth, moved, "es", tmp_path / "x")
    assert main(["--asr_train_config", str(cfg), "--asr_model_file", str(pth), "--token_list", str(trained["tokens"]),
                 "--lang", "en", "--out_dir", str(tmp_path / "x")]) == 1
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- training the new language


def extension(grown: Path, freeze: bool, optimizer: str):
    conf = (
        f"{{method: dynamic_pathways, init_masks: [{grown / 'masks.pwm'}], new_languages: [es], "
        f"freeze_existing: {str(freeze).lower()}, target_sparsity: 0.5, initial_sparsity: 0.5, num_events: 1, "
        "prune_interval: 4, adapt_interval: 2}"
    )
    args = PathwaysASRTask.get_parser().parse_args(["--config", str(grown / "config.yaml"), "--pruning_conf", conf])
    torch.manual_seed(1)
    model = PathwaysASRTask.build_model(args)
    state = model.state_dict()
    state.update(torch.load(grown / "model.pth"))  # what ESPnet's --init_param does
    model.load_state_dict(state)
    if optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    model.pathway_pruning.bind(opt)
    return model, opt


def lang_batch(lang_id: int, vocab: int, step: int, new_ids=()) -> dict:
    gen = torch.Generator().manual_seed(100 + step)
    lengths = torch.tensor([4000, 3200])
    text = torch.randint(2, 12, (2, 5), generator=gen)
    for i, token in enumerate(new_ids):
        text[i % 2, i % 5] = token
    return dict(speech=torch.randn(2, 4000, generator=gen), speech_lengths=lengths, text=text,
                text_lengths=torch.tensor([5, 5]), lang=torch.full((2, 1), lang_id), lang_lengths=torch.ones(2, dtype=torch.long))


def train_steps(model, opt, steps: int, lang_ids, vocab: int) -> None:
    model.train()
    for step in range(steps):
        lang_id = lang_ids[step % len(lang_ids)]
        new_ids = (vocab - 4, vocab - 3, vocab - 2) if lang_id == 2 else ()
        loss, _, _ = model(**lang_batch(lang_id, vocab, step, new_ids))
        opt.zero_grad()
        loss.backward()
        opt.step()


@torch.no_grad()
def decode(model, lang: str, n: int = 4):
    """Greedy hypotheses (as tokens) and scores of ``n`` random utterances through ``lang``'s pathway."""
    model.eval()
    model.pathway_masks.activate(lang)
    out = []
    for i in range(n):
        gen = torch.Generator().manual_seed(10 + i)
        enc, lens = model.encode(torch.randn(1, 6000, generator=gen), torch.tensor([6000]))
        state = greedy_search(model.predictor, model.joiner, enc, lens)
        out.append(([model.token_list[t] for t in state.tokens[0]], float(state.scores[0])))
    return out


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_freeze_existing_keeps_existing_languages_decoding_identical(trained, grown, optimizer):
    before = {lang: decode(trained["model"], lang) for lang in LANGS}
    assert any(tokens for lang in LANGS for tokens, _ in before[lang])  # hypotheses are not all empty
    model, opt = extension(grown, True, optimizer)
    vocab = model.vocab_size
    model.pathway_masks.set_masks(MaskSet.load(grown / "masks.pwm"))  # what the first training forward does
    start = {**{n: p.detach().clone() for n, p in model.named_parameters()}, **model.pathway_masks.full_weights()}
    after_grow = {lang: decode(model, lang) for lang in LANGS}
    train_steps(model, opt, 10, [2], vocab)  # masks hard from step 8
    assert bool(model.pathway_pruning.frozen)
    after = {lang: decode(model, lang) for lang in LANGS}
    for lang in LANGS:
        for (tok_b, score_b), (tok_g, score_g), (tok_a, score_a) in zip(before[lang], after_grow[lang], after[lang]):
            assert tok_b == tok_g == tok_a, lang
            assert score_a == score_g and score_g == pytest.approx(score_b, abs=1e-5)
    frozen = model.pathway_masks.frozen()
    full = {**dict(model.named_parameters()), **model.pathway_masks.full_weights()}
    moved = 0
    for name, value in start.items():
        keep = frozen[name]
        assert torch.equal(full[name][keep], value[keep]), name
        moved += int((full[name][~keep] != value[~keep]).sum())
    assert moved > 0  # the new language did train
    masks = model.pathway_masks.maskset()
    grown_masks = MaskSet.load(grown / "masks.pwm")
    for lang in LANGS:
        assert all(torch.equal(masks[lang][n], grown_masks[lang][n]) for n in masks.names)
    assert masks.sparsity("es") == pytest.approx(0.5, abs=0.01)
    with pytest.raises(PruningConfigError, match="training batch of language 'en'"):
        train_steps(model, opt, 1, [0], vocab)


def test_without_freeze_existing_languages_keep_adapting(grown):
    model, opt = extension(grown, False, "adam")
    start = model.pathway_masks.full_weights()
    before = model.pathway_masks.maskset()
    train_steps(model, opt, 10, [0, 1, 2], model.vocab_size)
    after = model.pathway_masks.maskset()
    en_region = before["en"]
    full = model.pathway_masks.full_weights()
    assert any(not torch.equal(full[n][en_region[n]], start[n][en_region[n]]) for n in en_region)
    assert any(not torch.equal(after["en"][n], before["en"][n]) for n in before.names)  # re-ranked
    assert model.pathway_masks.frozen() == {}


def test_existing_language_output_is_restricted_to_its_vocabulary(grown):
    model, _ = extension(grown, True, "adam")
    vocab = model.vocab_size
    model.eval()
    model.pathway_masks.activate("en")
    logits = model.joiner(torch.randn(1, 3, 32), torch.randn(1, 2, 24))
    assert (logits[..., 12:-1] == torch.finfo(logits.dtype).min).all()
    assert (logits[..., :12] > -1e30).all() and (logits[..., -1] > -1e30).all()
    model.pathway_masks.activate("es")
    assert (model.joiner(torch.randn(1, 3, 32), torch.randn(1, 2, 24)) > -1e30).all()
    assert vocab == len(OLD_TOKENS) + 3


def test_pruning_conf_checks_the_extension_keys():
    with pytest.raises(PruningConfigError, match="freeze_existing: true needs new_languages"):
        from espnet_pathways.pruning import PruningConfig

        PruningConfig.from_dict({"method": "dynamic_pathways", "init_masks": ["m.pwm"], "adapt_interval": 1,
                                 "prune_interval": 2, "freeze_existing": True})
    with pytest.raises(PruningConfigError, match="new_languages: method lth"):
        PruningConfig.from_dict({"method": "lth", "new_languages": ["es"]})


def test_recipe_stage_writes_token_list_grown_model_and_overlay(trained, tmp_path):
    from espnet_pathways.recipe.stages import extend as stage

    root = trained["root"]
    token_dir, train, exp = tmp_path / "token_list", tmp_path / "train", tmp_path / "exp"
    token_dir.mkdir(), train.mkdir(), exp.mkdir()
    (token_dir / "tokens.txt").write_text("\n".join(OLD_TOKENS) + "\n")
    (exp / "config.yaml").write_text((root / "config.yaml").read_text())
    (exp / "valid.loss.ave.pth").write_bytes((root / "old.pth").read_bytes())
    texts = {"u1": ("en", "p1 p2"), "u4": ("fr", "p3"), "u2": ("es", "hola niño"), "u3": ("es", "año nuevo")}
    (train / "text").write_text("".join(f"{u} {t}\n" for u, (_, t) in texts.items()))
    (train / "utt2lang").write_text("".join(f"{u} {l}\n" for u, (l, _) in texts.items()))
    (train / "lang_list.txt").write_text("en\nfr\nes\n")
    args = ["--lang", "es", "--token_dir", str(token_dir), "--train_dir", str(train), "--asr_exp", str(exp),
            "--init_mask", str(root / "lap.pwm"), "--out_dir", str(tmp_path / "ext")]
    assert stage.main(args) == 0
    overlay = yaml.safe_load((tmp_path / "ext" / stage.OVERLAY).read_text())
    assert overlay["pruning_conf"] == {"init_masks": [str(tmp_path / "ext" / "grown" / "masks.pwm")], "new_languages": ["es"]}
    assert overlay["model_conf"] == {"lang_vocab_size": {"en": 12, "fr": 12}}
    tokens = (tmp_path / "ext" / "token_list" / "tokens.txt").read_text().split()
    assert tokens[:12] == OLD_TOKENS[:-1] and "ñ" in tokens and tokens[-1] == "<sos/eos>"
    assert not stage.extend_recipe_model("es", token_dir, train, exp, tmp_path / "ext", init_mask=root / "lap.pwm")
