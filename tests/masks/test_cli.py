"""python -m espnet_pathways.bin.masks: stats, overlap, plot, prune, and bad input."""

import json
import re

import pytest
import torch
import yaml

from asr_tiny_corpus import TINY_CONFIG, write_corpus
from espnet_pathways.bin import masks as cli
from espnet_pathways.masks import MaskSet, magnitude_masks
from espnet_pathways.tasks.asr import PathwaysASRTask


@pytest.fixture()
def mask_file(tmp_path):
    tensors = {"enc.weight": torch.randn(20, 10), "dec.weight": torch.randn(5, 20)}
    masks = MaskSet({"en": magnitude_masks(tensors, 0.6), "fr": magnitude_masks(tensors, 0.3)}, method="test")
    return masks.save(tmp_path / "m.pwm"), masks


def test_stats_json_and_table(mask_file, capsys):
    path, masks = mask_file
    assert cli.main(["stats", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sparsity"]["en"] == pytest.approx(masks.sparsity("en"))
    assert out["tensors"]["enc.weight"]["sparsity"]["fr"] == pytest.approx(masks.tensor_sparsity("fr")["enc.weight"])
    assert cli.main(["stats", str(path)]) == 0
    assert "| enc.weight | 20x10 |" in capsys.readouterr().out


def test_overlap_and_plots(mask_file, tmp_path, capsys):
    path, masks = mask_file
    assert cli.main(["overlap", str(path), "--json"]) == 0
    overlap = json.loads(capsys.readouterr().out)["overlap"]
    assert overlap[0][1] == pytest.approx(float(masks.overlap()[1][0, 1]))
    assert cli.main(["plot", str(path), "--out_dir", str(tmp_path / "plots")]) == 0
    for name in ("layer_sparsity.png", "mask_overlap.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:4] == b"\x89PNG"


def test_prune_an_espnet_checkpoint(tmp_path, capsys):
    files = write_corpus(tmp_path / "data")
    parser = PathwaysASRTask.get_parser()
    (tmp_path / "train.yaml").write_text(TINY_CONFIG)
    args = parser.parse_args(["--config", str(tmp_path / "train.yaml"), "--token_list", str(files["tokens"])])
    model = PathwaysASRTask.build_model(args)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), tmp_path / "model.pth")
    out = tmp_path / "one_shot.pwm"
    assert cli.main(["prune", "--asr_train_config", str(tmp_path / "config.yaml"), "--asr_model_file",
                     str(tmp_path / "model.pth"), "--sparsity", "0.7", "--scope", "layerwise", "--out", str(out)]) == 0
    masks = MaskSet.load(out)
    assert masks.languages == ("*",) and masks.sparsity("*") == pytest.approx(0.7, abs=1e-3)
    assert any(n.startswith("encoder.") for n in masks.names) and any(n.startswith("predictor.") for n in masks.names)
    assert "| **prunable" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["stats", "missing.pwm"], "mask file not found"),
        (["prune", "--asr_train_config", "c.yaml", "--asr_model_file", "m.pth", "--sparsity", "1.2", "--out", "x"],
         "--sparsity must lie in"),
    ],
)
def test_bad_input_exits_non_zero_with_a_message(argv, message, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 1
    assert message in caplog.text
    assert not (tmp_path / "x").exists()


def test_foreign_file_is_rejected(tmp_path, caplog):
    (tmp_path / "f.pwm").write_bytes(b"not a mask file at all")
    assert cli.main(["overlap", str(tmp_path / "f.pwm")]) == 1
    assert "not an espnet_pathways mask file" in caplog.text


def test_edited_header_exits_non_zero_naming_the_file(mask_file, caplog):
    path, _ = mask_file
    data = path.read_bytes()
    assert data.count(b"[20,10]") == 1
    path.write_bytes(data.replace(b"[20,10]", b"[21,10]"))
    for command in ("stats", "overlap"):
        caplog.clear()
        assert cli.main([command, str(path)]) == 1
        assert str(path) in caplog.text


def test_flipped_header_length_exits_non_zero_naming_the_file(mask_file, caplog):
    path, _ = mask_file
    data = bytearray(path.read_bytes())
    data[8 + 5] ^= 0x80  # after the 8-byte magic: bit 47 of the header length (~140 TB)
    path.write_bytes(bytes(data))
    for command in ("stats", "overlap"):
        caplog.clear()
        assert cli.main([command, str(path)]) == 1
        assert str(path) in caplog.text


@pytest.fixture()
def model_file(tmp_path):
    """A checkpoint of the architecture ``mask_file`` was made for: its tensors plus a dense bias."""
    state = {"enc.weight": torch.randn(20, 10), "enc.bias": torch.randn(20), "dec.weight": torch.randn(5, 20)}
    torch.save(state, tmp_path / "model.pth")
    return tmp_path / "model.pth", state


def test_stats_over_all_parameters_of_the_model(mask_file, model_file, capsys):
    path, masks = mask_file
    assert cli.main(["stats", str(path), "--json", "--asr_model_file", str(model_file[0])]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total_params"] == 320
    assert out["sparsity_all_params"]["en"] == pytest.approx(masks.sparsity("en", 320))


@pytest.mark.parametrize(
    "change, tensor",
    [({"enc.weight": torch.randn(20, 12)}, "enc.weight"), ({"dec.weight": None}, "dec.weight")],
    ids=["other_shape", "missing_tensor"],
)
def test_stats_with_a_model_of_another_architecture_fails(change, tensor, mask_file, model_file, caplog):
    path, _ = mask_file
    state = {k: v for k, v in {**model_file[1], **change}.items() if v is not None}
    other = model_file[0].with_name("other.pth")
    torch.save(state, other)
    assert cli.main(["stats", str(path), "--asr_model_file", str(other)]) == 1
    assert re.search(f"{re.escape(str(path))}.*{re.escape(str(other))}.*{re.escape(tensor)}", caplog.text)
