"""Stage 1: generate the embedded corpus only when no MLS root is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from espnet_pathways.recipe.stages import data_prep


@pytest.fixture
def calls(monkeypatch):
    seen = []
    monkeypatch.setattr(data_prep, "generate_mini_mls", lambda out, **kw: seen.append(("generate", Path(out), kw)))
    monkeypatch.setattr(data_prep, "prepare_mls", lambda root, out, langs, **kw: seen.append(("prepare", Path(root), langs, kw)))
    return seen


def test_embedded_corpus_is_generated_then_prepared(calls, tmp_path):
    argv = ["--langs", "en fr", "--corpus_dir", str(tmp_path / "c"), "--corpus_size", "ci", "--corpus_seed", "3",
            "--out_dir", str(tmp_path / "data"), "--nj", "2"]
    assert data_prep.main(argv) == 0
    assert calls[0] == ("generate", tmp_path / "c", {"size": "ci", "langs": ["en", "fr"], "seed": 3, "nj": 2, "lang_scale": ""})
    assert calls[1][:3] == ("prepare", tmp_path / "c", ["en", "fr"])
    assert calls[1][3] == {"train_subset": "full", "skip_bad_utts": False, "nj": 2}


def test_real_mls_is_only_prepared(calls, tmp_path):
    argv = ["--langs", "nl", "--mls_root", str(tmp_path / "mls"), "--train_subset", "10h", "--skip_bad_utts", "true"]
    assert data_prep.main(argv) == 0
    assert [c[0] for c in calls] == ["prepare"]
    assert calls[0][1] == tmp_path / "mls" and calls[0][3]["train_subset"] == "10h" and calls[0][3]["skip_bad_utts"]


def test_missing_mls_root_fails(tmp_path):
    assert data_prep.main(["--langs", "en", "--mls_root", str(tmp_path / "none"), "--out_dir", str(tmp_path / "d")]) == 1
    assert not (tmp_path / "d").exists()


def test_no_language(calls):
    with pytest.raises(ValueError, match="no language"):
        data_prep.data_prep(Path("d"), [], None, Path("c"), "ci", 0, "full", False, 1)
