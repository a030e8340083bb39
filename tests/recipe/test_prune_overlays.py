"""The recipe's pruning overlays (conf/prune/): the papers' behaviour, and fixed vs adaptive pairs
that differ in adaptivity only (same warm-up, schedule and budget)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from espnet_pathways.pruning import PruningConfig
from espnet_pathways.recipe.phases import merge_configs

CONF = Path(__file__).resolve().parents[2] / "egs2_mls_pathways" / "asr1" / "conf"
DENSE = yaml.safe_load((CONF / "train_asr_emformer_demo.yaml").read_text())
PAIRS = [("imp", "adaptive_imp"), ("lth", "adaptive_lth"), ("pathways", "dynamic_pathways")]
SCHEDULE_KEYS = ("target_sparsity", "schedule", "num_events", "start_step", "prune_interval", "ranking")


def _config(*overlays: str) -> dict:
    """The dense demo config with ``overlays`` merged on it, as a phase gets it."""
    conf = DENSE
    for name in overlays:
        conf = merge_configs(conf, yaml.safe_load((CONF / "prune" / f"{name}.yaml").read_text()))
    if conf.get("pruning_conf", {}).get("method") in ("pathways", "dynamic_pathways"):
        conf["pruning_conf"]["init_masks"] = ["given/by/the/phases/file.pwm"]
    return conf


def _steps(conf: dict) -> int:
    return conf["num_iters_per_epoch"] * conf["max_epoch"] // conf.get("accum_grad", 1)


def _pruning(conf: dict) -> PruningConfig:
    return PruningConfig.from_dict(conf["pruning_conf"])


@pytest.mark.parametrize("fixed, adaptive", PAIRS)
def test_fixed_and_adaptive_overlays_differ_only_in_adaptivity(fixed, adaptive):
    a, b = _config(fixed), _config(adaptive)
    for key in ("scheduler", "scheduler_conf", "optim_conf", "num_iters_per_epoch", "max_epoch", "accum_grad",
                "batch_type", "batch_size"):
        assert a.get(key) == b.get(key), key
    if fixed != "pathways":  # fixed ASR Pathways has no schedule; Dynamic starts at the masks' sparsity
        pa, pb = _pruning(a), _pruning(b)
        for key in SCHEDULE_KEYS + ("initial_sparsity",):
            assert getattr(pa, key) == getattr(pb, key), key


@pytest.mark.parametrize("name", ["imp", "lth", "lap", "adaptive_imp", "adaptive_lth", "dynamic_pathways"])
def test_events_start_after_the_warm_up_and_the_schedule_fits_the_budget(name):
    conf = _config(name)
    pruning = _pruning(conf)
    assert pruning.start_step >= conf["scheduler_conf"]["warmup_steps"]
    assert max(pruning.sparsity_schedule().end, pruning.hard_from()) < _steps(conf)
    for other in ("imp", "lap", "adaptive_lth", "dynamic_pathways"):
        theirs = _pruning(_config(other))
        assert [getattr(pruning, k) for k in SCHEDULE_KEYS] == [getattr(theirs, k) for k in SCHEDULE_KEYS]


@pytest.mark.parametrize("name", ["adaptive_imp", "adaptive_lth", "dynamic_pathways"])
def test_paper_methods_rezero_at_re_ranking_and_the_ablation_does_not(name):
    assert _pruning(_config(name)).rezero_on_adapt is True
    ablation = _pruning(_config(name, "ablation_norezero"))
    assert ablation.rezero_on_adapt is False
    assert ablation.method == name


def test_lap_trains_on_mixed_batches_and_the_others_on_monolingual_ones():
    assert _pruning(_config("lap")).batches == "mixed"
    assert {_pruning(_config(n)).batches for n in ("imp", "adaptive_lth", "pathways", "dynamic_pathways")} == {
        "monolingual"}


def test_dense_control_has_the_pruning_overlays_budget():
    control, pruned = _config("dense_continued"), _config("imp")
    assert "pruning_conf" not in control
    for key in ("scheduler", "scheduler_conf", "optim_conf", "num_iters_per_epoch", "max_epoch", "accum_grad",
                "batch_type", "batch_size"):
        assert control.get(key) == pruned.get(key), key
