"""Stages 12-13 with ``--lid_eval true``: which phases are evaluated with ``--lang auto``."""

from __future__ import annotations

from pathlib import Path

from espnet_pathways.recipe.phases import load_phases
from espnet_pathways.recipe.stages import phase_eval

RECIPE = Path(__file__).resolve().parents[2] / "egs2_mls_pathways" / "asr1"


def test_only_phases_with_a_mask_per_language_identify_the_language(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(RECIPE)
    phases = load_phases(Path("conf/phases/demo_pathways.yaml"), tmp_path / "exp", ["en", "fr"])
    assert {p.name: phase_eval.identifies_language(p) for p in phases} == {
        "dense": False, "lth_en": False, "lth_fr": False, "pathways_lth": True, "lap": False,
        "dynamic_pathways_lap": True,
    }  # fmt: skip
    plan = [(p, ["mls_en_test"]) for p in phases]
    with caplog.at_level("INFO"):
        flags = [lid for _, _, lid in phase_eval.lid_plan(plan, True)]
    assert flags == [False, False, False, True, False, True]
    assert "phase dense: no mask per language; no --lang auto evaluation" in caplog.text
    assert not any(lid for _, _, lid in phase_eval.lid_plan(plan, False))
