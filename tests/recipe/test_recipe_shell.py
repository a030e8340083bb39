"""The recipe's shell: option parsing and stages 1-5 on the CI-size embedded corpus."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[2] / "egs2_mls_pathways" / "asr1"

CI_LANGS = ("en", "fr")
CI_TEST_SETS = tuple(f"mls_{lang}_test" for lang in CI_LANGS)
CI_RECIPE_ARGS = (  # the CI corpus, BPE 64, one epoch: what the e2e runs of test_e2e*.py share
    "--corpus_size", "ci", "--langs", " ".join(CI_LANGS), "--test_sets", " ".join(CI_TEST_SETS),
    "--nj", "2", "--inference_nj", "2", "--nbpe", "64", "--bpe_hard_vocab_limit", "false",
    "--asr_args", "--max_epoch 1",
)


def make_recipe_copy(root: Path) -> Path:
    """A fresh recipe dir whose scripts and configs link to the real ones (outputs stay in ``root``)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("run.sh", "asr.sh", "path.sh", "db.sh", "local", "conf"):
        (root / name).symlink_to(RECIPE / name)
    return root


def run(cwd: Path, *args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLCONFIGDIR": os.environ.get("MPLCONFIGDIR", "/tmp/mpl")}
    proc = subprocess.run(["./run.sh", "--python", sys.executable, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"run.sh {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def test_unknown_option_and_help(tmp_path):
    recipe = make_recipe_copy(tmp_path / "asr1")
    proc = run(recipe, "--no_such_option", "1", check=False)
    assert proc.returncode == 2 and "unknown option --no_such_option" in proc.stderr
    proc = run(recipe, "--help")
    assert "--inference_nj" in proc.stdout and "--corpus_size" in proc.stdout
    assert "--num_threads" in proc.stdout  # processes x threads: auto unless given
    assert [line.split()[1] for line in proc.stdout.splitlines() if "--num_procs" in line] == ["auto"]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng (Debian package) is not installed")
def test_stages_1_to_5_on_ci_corpus(tmp_path):
    recipe = make_recipe_copy(tmp_path / "asr1")
    args = ["--stop_stage", "5", "--corpus_size", "ci", "--langs", "en fr", "--nj", "2",
            "--nbpe", "40", "--bpe_hard_vocab_limit", "false"]
    run(recipe, *args)
    assert (recipe / "downloads" / "mini_mls_ci" / "mls_english").is_dir()
    assert (recipe / "data" / "lang_list.txt").read_text() == "en\nfr\n"
    for name in ("train", "dev"):
        d = recipe / "dump" / "raw" / name
        keys = [line.split()[0] for line in (d / "wav.scp").read_text().splitlines()]
        assert keys
        for f in ("text", "utt2spk", "utt2lang", "utt2lang_id", "utt2category", "utt2num_samples"):
            assert [line.split()[0] for line in (d / f).read_text().splitlines()] == keys, (name, f)
    for lang in ("en", "fr"):
        for split in ("test", "dev"):
            assert (recipe / "dump" / "raw" / f"mls_{lang}_{split}" / "utt2lang_id").is_file()
    token_dir = recipe / "data" / "token_list" / "bpe_unigram40"
    assert sorted(p.name for p in token_dir.glob("*.model")) == ["en.model", "fr.model"]
    tokens = (token_dir / "tokens.txt").read_text().splitlines()
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    stamp = (token_dir / "token_list.done").stat().st_mtime_ns
    proc = run(recipe, *args, "--stage", "3")
    assert "up to date; skipping" in proc.stderr
    assert (token_dir / "token_list.done").stat().st_mtime_ns == stamp
    # stage 11 gets --import_phases from asr.sh: a missing archive fails before anything trains
    proc = run(recipe, *args, "--stage", "11", "--stop_stage", "11", "--phases_config", "conf/phases/repro.yaml",
               "--import_phases", "dense=theta0.tar", check=False)
    assert proc.returncode != 0 and "theta0.tar: no such archive (phase dense)" in proc.stderr
    assert not (recipe / "exp" / "asr_dense").exists()


def test_training_stages_need_a_config(tmp_path):
    recipe = make_recipe_copy(tmp_path / "asr1")
    proc = run(recipe, "--stage", "10", "--train_config", "", check=False)
    assert proc.returncode == 2 and "need --train_config" in proc.stderr
