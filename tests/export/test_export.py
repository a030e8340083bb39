"""Export of one language (standalone model, ESPnet-style archive) and packed sparse checkpoints of a
tiny pathways transducer: decoding identical to the multilingual model with ``--lang``, bit-exact
round trips, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from espnet2.main_funcs.pack_funcs import unpack

from asr_tiny_corpus import LANGS, TINY_CONFIG, UTTERANCES, tone_word, write_corpus
from espnet_pathways.asr.inference import Speech2Text
from espnet_pathways.bin import asr_inference
from espnet_pathways.bin import masks as cli
from espnet_pathways.masks import ATTR, MaskSet, magnitude_masks, prunable_parameters
from espnet_pathways.masks.sparse_checkpoint import load_sparse
from espnet_pathways.tasks.asr import PathwaysASRTask
from espnet_pathways.tasks.registry import load_model

KEYS = ["spk1_utt1", "spk2_utt3"]  # two short utterances keep the decoding tests fast
WAVS = [tone_word(UTTERANCES[key][1], seed=i) for i, key in enumerate(KEYS)]


def _random_masks(params, seed: int):
    gen = torch.Generator().manual_seed(seed)
    return magnitude_masks({n: torch.rand(p.shape, generator=gen) for n, p in params.items()}, 0.7)


@pytest.fixture(scope="module")
def multilingual(tmp_path_factory):
    """A checkpoint with hard 70% pathways for xx and yy (different random masks), and its config
    (global_mvn statistics and a bpemodel folder, so that the export has files to carry)."""
    root = tmp_path_factory.mktemp("multi")
    files = write_corpus(root / "data")
    np.savez(root / "feats_stats.npz", count=np.array(100.0), sum=np.full(40, 5.0), sum_square=np.full(40, 400.0))
    (root / "bpe").mkdir()
    for lang in LANGS:
        (root / "bpe" / f"{lang}.model").write_bytes(b"not used with token_type char")
    init = root / "init.pwm"
    config = yaml.safe_load(TINY_CONFIG)
    config.update(normalize="global_mvn", normalize_conf={"stats_file": str(root / "feats_stats.npz")},
                  bpemodel=str(root / "bpe"), pruning_conf={"method": "pathways", "init_masks": [str(init)]})
    (root / "train.yaml").write_text(yaml.safe_dump(config))
    args = PathwaysASRTask.get_parser().parse_args(
        ["--config", str(root / "train.yaml"), "--token_list", str(files["tokens"]), "--lang_list", str(files["lang_list"])]
    )
    torch.manual_seed(1)
    model = PathwaysASRTask.build_model(args)
    with torch.no_grad():
        model.joiner.output.bias[0] = -1.5  # emit labels: hypotheses that depend on every weight
    params = prunable_parameters(model)
    full_masks = MaskSet({lang: _random_masks(params, seed) for seed, lang in enumerate(LANGS)})
    full_masks.save(init)
    getattr(model, ATTR).set_masks(full_masks)
    torch.save(model.state_dict(), root / "model.pth")
    (root / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    return {"root": root, "config": root / "config.yaml", "model": root / "model.pth", "masks": full_masks,
            "files": files}


@pytest.fixture(scope="module")
def exported(multilingual):
    """xx exported (folder + zip archive)."""
    root = multilingual["root"]
    argv = ["export", "--lang", "xx", "--asr_train_config", str(multilingual["config"]),
            "--asr_model_file", str(multilingual["model"]), "--out_dir", str(root / "asr_xx"),
            "--archive", str(root / "asr_xx.zip")]
    assert cli.main(argv) == 0
    return root / "asr_xx"


def _decode(s2t: Speech2Text, lang=None):
    return [(r.text, r.token_int, r.score) for r in (s2t(wav, lang=lang)[0] for wav in WAVS)]


@pytest.mark.parametrize("beam_size", [1, 2], ids=["greedy", "beam"])
def test_exported_model_decodes_like_the_multilingual_model_with_lang(multilingual, exported, beam_size):
    multi = Speech2Text(multilingual["config"], multilingual["model"], beam_size=beam_size)
    alone = Speech2Text(exported / "config.yaml", exported / "model.pth", beam_size=beam_size)
    assert not hasattr(alone.model, ATTR) and not hasattr(alone.model, "pathway_pruning")
    want = _decode(multi, "xx")
    assert _decode(alone) == want
    assert all(tokens for _, tokens, _ in want), "an empty hypothesis proves little"
    assert _decode(multi, "yy") != want, "the two pathways decode alike: the test could not tell them apart"


def test_exported_folder_holds_the_squashed_weights_and_a_portable_config(multilingual, exported):
    source = yaml.safe_load(multilingual["config"].read_text())
    config = yaml.safe_load((exported / "config.yaml").read_text())
    assert config["pruning_conf"] == {}
    assert config["normalize_conf"]["stats_file"] == str(exported / "feats_stats.npz")
    assert config["bpemodel"] == str(exported / "bpe")
    assert sorted(p.name for p in (exported / "bpe").iterdir()) == ["xx.model", "yy.model"]
    changed = {"pruning_conf", "normalize_conf", "bpemodel"}
    assert {k: v for k, v in config.items() if k not in changed} == {k: v for k, v in source.items() if k not in changed}
    assert (exported / "tokens.txt").read_text().split("\n")[:-1] == source["token_list"]

    state = torch.load(exported / "model.pth")
    original = torch.load(multilingual["model"])
    assert not [k for k in state if k.startswith((f"{ATTR}.", "pathway_pruning."))]
    mask = multilingual["masks"]["xx"]
    for name, value in state.items():
        want = original[name].masked_fill(~mask[name], 0.0) if name in mask else original[name]
        assert torch.equal(value, want), name


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_archive_unpacks_with_espnet_and_decodes_identically(multilingual, exported, suffix, tmp_path):
    archive = exported.parent / "asr_xx.zip"
    if suffix != ".zip":
        archive = tmp_path / f"asr_xx{suffix}"
        assert cli.main(["export", "--lang", "xx", "--asr_train_config", str(multilingual["config"]),
                         "--asr_model_file", str(multilingual["model"]), "--out_dir", str(tmp_path / "asr_xx"),
                         "--archive", str(archive)]) == 0
    files = unpack(archive, tmp_path / "unpacked")
    assert set(files) == {"asr_train_config", "asr_model_file"}
    config = yaml.safe_load(Path(files["asr_train_config"]).read_text())
    for path in (config["normalize_conf"]["stats_file"], config["bpemodel"]):
        assert Path(path).exists() and Path(path).is_relative_to(tmp_path / "unpacked"), path
    alone = Speech2Text(exported / "config.yaml", exported / "model.pth")
    assert _decode(Speech2Text(**files)) == _decode(alone)


def test_decoding_cli_without_lang_matches_the_multilingual_model_with_lang(multilingual, exported, tmp_path):
    data = multilingual["files"]
    (tmp_path / "keys").write_text("".join(f"{key} x\n" for key in KEYS))
    common = ["--data_path_and_name_and_type", f"{data['wav.scp']},speech,sound", "--key_file", str(tmp_path / "keys"),
              "--beam_size", "2"]
    asr_inference.main(["--asr_train_config", str(multilingual["config"]), "--asr_model_file",
                        str(multilingual["model"]), "--output_dir", str(tmp_path / "multi"), "--lang", "xx", *common])
    asr_inference.main(["--asr_train_config", str(exported / "config.yaml"), "--asr_model_file",
                        str(exported / "model.pth"), "--output_dir", str(tmp_path / "alone"), *common])
    for name in ("text", "token_int", "score"):
        want = (tmp_path / "multi" / "1best_recog" / name).read_text()
        assert (tmp_path / "alone" / "1best_recog" / name).read_text() == want
    assert len(want.splitlines()) == len(KEYS)


def _same_state(got, want):
    assert list(got) == list(want)
    for name, value in want.items():
        assert got[name].dtype == value.dtype and torch.equal(got[name], value), name


def test_pack_unpack_round_trips_bit_exactly(multilingual, exported, tmp_path, capsys):
    model = multilingual["model"]
    assert cli.main(["pack", "--asr_model_file", str(model), "--out", str(tmp_path / "all.pws")]) == 0
    assert cli.main(["unpack", str(tmp_path / "all.pws"), "--out", str(tmp_path / "all.pth")]) == 0
    _same_state(torch.load(tmp_path / "all.pth"), torch.load(model))
    assert load_sparse(tmp_path / "all.pws").masks == multilingual["masks"]
    rebuilt, _ = load_model(multilingual["config"], tmp_path / "all.pth", "cpu")
    original, _ = load_model(multilingual["config"], model, "cpu")
    _same_state(rebuilt.state_dict(), original.state_dict())

    # one language: the exported weights, from the multilingual checkpoint or from the exported model
    assert cli.main(["pack", "--asr_model_file", str(model), "--lang", "xx", "--out", str(tmp_path / "xx.pws")]) == 0
    assert cli.main(["pack", "--asr_model_file", str(exported / "model.pth"), "--asr_train_config",
                     str(exported / "config.yaml"), "--out", str(tmp_path / "exp.pws")]) == 0
    for name in ("xx", "exp"):
        assert cli.main(["unpack", str(tmp_path / f"{name}.pws"), "--out", str(tmp_path / f"{name}.pth")]) == 0
        _same_state(torch.load(tmp_path / f"{name}.pth"), torch.load(exported / "model.pth"))
    assert "of " in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "--lang", "zz", "--out_dir", "{tmp}/out"], "unknown language 'zz'"),
        (["pack", "--lang", "zz", "--out", "{tmp}/x.pws"], "unknown language 'zz'"),
        (["pack", "--lang", "zz", "--out", "{tmp}/x.pws", "--no_config"], "language 'zz' has no pathway"),
    ],
    ids=["export", "pack", "pack_without_config"],
)
def test_unknown_language_is_refused(multilingual, argv, message, tmp_path, caplog):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    paths = ["--asr_model_file", str(multilingual["model"])]
    if "--no_config" in argv:
        argv.remove("--no_config")
    else:
        paths += ["--asr_train_config", str(multilingual["config"])]
    assert cli.main(argv + paths) == 1
    assert message in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_export_of_a_checkpoint_without_masks_is_refused(exported, tmp_path, caplog):
    assert cli.main(["export", "--lang", "xx", "--asr_train_config", str(exported / "config.yaml"),
                     "--asr_model_file", str(exported / "model.pth"), "--out_dir", str(tmp_path / "o")]) == 1
    assert f"{exported / 'model.pth'}: the checkpoint has no pathway masks" in caplog.text
    assert cli.main(["pack", "--asr_model_file", str(exported / "model.pth"), "--out", str(tmp_path / "x.pws")]) == 1
    assert "give --asr_train_config" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_truncated_sparse_checkpoint_is_refused_naming_the_file(multilingual, tmp_path, caplog):
    assert cli.main(["pack", "--asr_model_file", str(multilingual["model"]), "--out", str(tmp_path / "m.pws")]) == 0
    cut = tmp_path / "cut.pws"
    cut.write_bytes((tmp_path / "m.pws").read_bytes()[:-10])
    assert cli.main(["unpack", str(cut), "--out", str(tmp_path / "m.pth")]) == 1
    assert f"{cut}: truncated payload" in caplog.text
    assert not (tmp_path / "m.pth").exists()
