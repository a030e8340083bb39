"""recipe.phase_archive: a phase (θ0) packed on one machine and imported by stage 11 on another."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from espnet_pathways.recipe import launch, phases
from espnet_pathways.recipe.phase_archive import main as pack_main, parse_imports, read_manifest
from espnet_pathways.recipe.stages import collect_stats, repro_report, train
from recipe_data import read_lines, write_dump_and_char_tokens
from test_repro_report import write_reporter

MODULE = "fake_asr_train"
OPTS = launch.LaunchOptions(python=sys.executable)


def make_machine(root: Path, monkeypatch):
    """The recipe dir of one machine (cwd ``root``): relative data dirs, stats, and a phases file
    dense -> lth; returns (TrainSetup, phases)."""
    root.mkdir()
    monkeypatch.chdir(root)
    Path("dump").mkdir()
    dirs, token_dir = write_dump_and_char_tokens(Path("dump"))
    Path("train.yaml").write_text("encoder: emformer\nbatch_type: folded\n")
    stats = Path("exp/asr_stats")
    collect_stats.collect_stats(dirs["train"], dirs["dev"], token_dir, Path("train.yaml"), stats, module=MODULE)
    Path("phases.yaml").write_text(
        "phases:\n  - {name: dense, config: train.yaml, exp: asr_dense}\n"
        "  - {name: lth, config: train.yaml, exp: asr_lth, init_from: dense}\n"
    )
    setup = train.TrainSetup(train_dir=dirs["train"], valid_dir=dirs["dev"], token_dir=token_dir, stats_dir=stats,
                             asr_args=("--max_epoch", "1"), module=MODULE)
    return setup, phases.load_phases(Path("phases.yaml"), Path("exp"))


def pack(setup: train.TrainSetup, out: Path) -> int:
    return pack_main(["--exp_dir", "exp/asr_dense", "--out", str(out), "--train_dir", str(setup.train_dir),
                      "--valid_dir", str(setup.valid_dir), "--token_dir", str(setup.token_dir),
                      "--stats_dir", str(setup.stats_dir)])


@pytest.fixture
def packed(tmp_path, fakes_env, monkeypatch):
    """Machine A trained θ0 (ESPnet's reporter: 2 epochs) and packed it into ``theta0.tar``."""
    setup, plan = make_machine(tmp_path / "a", monkeypatch)
    train.run_phases(setup, plan[:1], OPTS)
    write_reporter(Path("exp/asr_dense"), 500, 2, 60.0)
    state = torch.load("exp/asr_dense/checkpoint.pth", weights_only=False)
    state["optimizers"] = [{"state": {0: torch.ones(1000)}}]
    torch.save(state, "exp/asr_dense/checkpoint.pth")
    out = tmp_path / "theta0.tar"
    assert pack(setup, out) == 0
    return out, repro_report.run_cost(tmp_path / "a" / "exp" / "asr_dense")


def test_imported_theta0_is_the_trained_one_and_later_phases_start_from_it(packed, tmp_path, monkeypatch):
    archive, cost = packed
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["checkpoint.pth", "config.yaml", "manifest.json", "train.log",
                                          "valid.loss.ave.pth"]
    assert "dump/raw/train/text" in read_manifest(archive)["data"]
    assert not any("wav.scp" in name for name in read_manifest(archive)["data"])  # machine paths
    setup, plan = make_machine(tmp_path / "b", monkeypatch)
    dense = Path("exp/asr_dense")
    dense.mkdir(parents=True)
    (dense / "3epoch.pth").write_bytes(b"a killed local training")
    (dense / ".train_started").write_text("x\n")
    (dense / "valid.loss.best.pth").write_bytes(b"local best")
    (dense / "valid.loss.ave.pth").symlink_to("valid.loss.best.pth")  # as ESPnet links it

    train.run_phases(setup, plan, OPTS, {"dense": archive})
    assert not (dense / "calls.jsonl").exists()  # not trained here
    assert (dense / "valid.loss.ave.pth").read_bytes() == b"fake model"
    assert not (dense / "valid.loss.ave.pth").is_symlink()  # the link was replaced, not written through
    assert (dense / "valid.loss.best.pth").read_bytes() == b"local best"
    assert not (dense / "3epoch.pth").exists() and not (dense / ".train_started").exists()
    reporter = torch.load(dense / "checkpoint.pth", weights_only=False)
    assert set(reporter) == {"reporter"}  # no model or optimizer state travels
    imported = repro_report.run_cost(dense)
    assert (imported.steps, imported.valid_loss) == (cost.steps, cost.valid_loss)
    assert repro_report.theta0_signature(imported) == repro_report.theta0_signature(cost)
    argv = json.loads(read_lines(Path("exp/asr_lth/calls.jsonl"))[0])
    assert argv[argv.index("--init_param") + 1] == "exp/asr_dense/valid.loss.ave.pth"

    train.run_phases(setup, plan, OPTS, {"dense": archive})  # up to date: neither imported nor trained again
    assert len(read_lines(Path("exp/asr_lth/calls.jsonl"))) == 1
    assert not (dense / "calls.jsonl").exists()

    train.run_phases(setup, plan[:1], OPTS)  # without the archive: trained afresh, never resumed from it
    assert len(read_lines(dense / "calls.jsonl")) == 1
    assert not (dense / "checkpoint.pth").exists()


def test_archive_of_other_data_is_refused_and_nothing_written(packed, tmp_path, monkeypatch):
    archive, _ = packed
    setup, plan = make_machine(tmp_path / "b", monkeypatch)
    text = setup.train_dir / "text"
    text.write_text(text.read_text().replace(" ", "  ", 1))
    with pytest.raises(ValueError, match=r"other data than this recipe's: dump/raw/train/text differ"):
        train.run_phases(setup, plan, OPTS, {"dense": archive})
    assert not Path("exp/asr_dense").exists()


def test_bad_imports_name_the_key(packed, tmp_path, monkeypatch):
    archive, _ = packed
    setup, plan = make_machine(tmp_path / "b", monkeypatch)
    with pytest.raises(ValueError, match="no phase named lap"):
        train.run_phases(setup, plan, OPTS, {"lap": archive})
    with pytest.raises(ValueError, match="expected <phase>=<archive>, got 'dense'"):
        parse_imports("dense")
    with pytest.raises(FileNotFoundError, match="none.tar: no such archive"):
        parse_imports("dense=none.tar")
    Path("not.tar").write_bytes(b"not a tar")
    with pytest.raises(ValueError, match="not.tar: not a phase archive"):
        read_manifest(Path("not.tar"))
    assert pack(setup, tmp_path / "x.tar") != 0  # machine B's dense never trained: nothing to pack
    assert not (tmp_path / "x.tar").exists()


def test_same_phase_packs_to_the_same_bytes(packed, tmp_path):
    archive, _ = packed  # cwd: machine A
    again = tmp_path / "again.tar"
    setup = train.TrainSetup(train_dir=Path("dump/raw/train"), valid_dir=Path("dump/raw/dev"),
                             token_dir=Path("dump/token_list/char"), stats_dir=Path("exp/asr_stats"))
    assert pack(setup, again) == 0
    assert again.read_bytes() == archive.read_bytes()
