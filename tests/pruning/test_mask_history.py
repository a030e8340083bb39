"""The engine records its masks at every event (mask history): fixed, adaptive and Dynamic ASR Pathways
runs, kill-and-resume, and the plots at the end of training."""

import json

import pytest
import torch

from espnet_pathways.masks import MaskSet
from espnet_pathways.masks.history import HISTORY_FILE, MaskHistory
from espnet_pathways.pruning.outputs import schedule_trace, write_pruning_outputs
from toy import Toy, build, train, write_masks

CUBIC = dict(schedule="cubic", target_sparsity=0.7, initial_sparsity=0.1, num_events=3, prune_interval=4)
ORDER = [0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0]  # batch languages (en 0, fr 1)


def _dynamic(tmp_path):
    paths, _ = write_masks(tmp_path, {"*": 0.5})  # one LAP-like mask: pathways become language-specific
    return dict(method="dynamic_pathways", init_masks=paths, schedule="cubic", initial_sparsity=0.5,
                target_sparsity=0.7, num_events=2, prune_interval=8, adapt_interval=2)


def _run(model, engine, opt, path, steps, lang_of=None):
    """Train ``steps`` recording the history at ``path``; returns the masks after each step and every
    mask set the engine recorded, as (step, kind, languages, masks)."""
    if engine.history is None:
        engine.record_history(path)
    recorded, after_step = [], {}
    append = engine.history.append
    engine.history.append = lambda *args: (recorded.append(args), append(*args))
    train(model, opt, steps, lang_of=lang_of,
          on_step=lambda s: after_step.__setitem__(int(engine.step), model.pathway_masks.maskset()))
    engine.freeze()  # the end of training (PathwaysTrainer)
    return after_step, recorded


def _check(history, recorded, after_step, final):
    assert [(r.step, r.kind, r.languages) for r in history.records] == [(s, k, tuple(l)) for s, k, l, _ in recorded]
    for index, (step, _, _, masks) in enumerate(recorded):
        rebuilt = history.maskset(index)
        assert rebuilt == masks, f"record {index} (step {step}) does not rebuild the engine's masks"
        last_at_step = index + 1 == len(recorded) or recorded[index + 1][0] != step
        if last_at_step and step in after_step:
            assert rebuilt == after_step[step], f"step {step}: the masks after the step differ from the record"
    assert history.maskset(-1) == final


@pytest.mark.parametrize("method", ["imp", "adaptive_imp"])
def test_every_event_of_a_run_is_recorded_and_rebuilt(tmp_path, method):
    conf = dict(method=method, **CUBIC, **({"adapt_interval": 2} if method == "adaptive_imp" else {}))
    model, engine, opt = build(conf, lr=0.3, optimizer="sgd")
    steps = 14 if method == "imp" else 17  # past the last event at step 12 / the masks fixed at step 16
    after_step, recorded = _run(model, engine, opt, tmp_path / HISTORY_FILE, range(steps))
    history = MaskHistory(tmp_path / HISTORY_FILE)
    expected = [(s, k) for s, _, k in schedule_trace(engine)]
    if method == "imp":
        expected.append((14, "freeze"))  # masks fixed at the end of training
    assert [(r.step, r.kind) for r in history.records] == expected
    _check(history, recorded, after_step, model.pathway_masks.maskset())
    if method == "adaptive_imp":
        assert any(r.changed for r in history.records if r.kind == "adapt"), "no re-ranking moved a weight"


def test_dynamic_pathways_record_each_language_after_its_own_steps(tmp_path):
    conf = _dynamic(tmp_path)
    model, engine, opt = build(conf, lr=0.2, optimizer="sgd")
    after_step, recorded = _run(model, engine, opt, tmp_path / HISTORY_FILE, range(len(ORDER)),
                                lang_of=lambda s: ORDER[s])
    history = MaskHistory(tmp_path / HISTORY_FILE)
    hard_from = engine.config.hard_from()  # pruning events at steps 0, 8, 16; masks fixed at 24
    expected, own_steps = [(0, "init", ("en", "fr")), (0, "prune", ("en", "fr"))], [0, 0]
    for step, code in enumerate(ORDER, start=1):
        own_steps[code] += 1
        if step % 8 == 0 and step <= 16:
            expected.append((step, "prune", ("en", "fr")))
        elif own_steps[code] % 2 == 0 and step < hard_from:
            expected.append((step, "adapt", (("en", "fr")[code],)))
        if step == hard_from:
            expected.append((step, "freeze", ("en", "fr")))
    assert hard_from == 24 and expected[-1] == (24, "freeze", ("en", "fr"))
    assert [(r.step, r.kind, r.languages) for r in history.records] == expected
    assert all(set(r.changed) <= set(r.languages) for r in history.records if r.kind == "adapt")
    _check(history, recorded, after_step, model.pathway_masks.maskset())
    first, last = history.maskset(0), history.maskset(-1)
    assert first.select(["en"]) == MaskSet({"en": first["fr"]}), "both pathways start from the one mask"
    assert last.select(["en"]) != MaskSet({"en": last["fr"]}), "the pathways did not become language-specific"


@pytest.mark.parametrize("method", ["adaptive_lth", "dynamic_pathways", "lth"])
def test_kill_and_resume_gives_the_history_of_an_uninterrupted_run(tmp_path, method):
    """Killed after a checkpoint at step 9, past more events and in the middle of writing a record;
    resumed from the checkpoint, the run ends with the same history, byte for byte."""
    conf = _dynamic(tmp_path) if method == "dynamic_pathways" else dict(method=method, adapt_interval=2, **CUBIC)
    if method == "lth":
        conf.pop("adapt_interval")
    torch.save(Toy().state_dict(), tmp_path / "dense.pth")
    options = dict(init_param=str(tmp_path / "dense.pth"), lr=0.2, optimizer="sgd")
    lang_of = lambda s: ORDER[s]  # noqa: E731
    model, engine, opt = build(conf, **options)
    _run(model, engine, opt, tmp_path / "uninterrupted.pwh", range(18), lang_of)
    reference = (tmp_path / "uninterrupted.pwh").read_bytes()

    path = tmp_path / HISTORY_FILE
    first, engine1, opt1 = build(conf, **options)
    engine1.record_history(path)
    train(first, opt1, range(9), lang_of=lang_of)
    torch.save({"model": first.state_dict(), "opt": opt1.state_dict()}, tmp_path / "checkpoint.pth")
    train(first, opt1, range(9, 15), lang_of=lang_of)  # records after the checkpoint, then killed
    with open(path, "ab") as f:
        f.write(reference[-30:-10])
    del first, engine1, opt1

    resumed, engine2, opt2 = build(conf, seed=123, **options)
    engine2.record_history(path)  # before ESPnet resumes (PathwaysTrainer)
    checkpoint = torch.load(tmp_path / "checkpoint.pth", weights_only=False)
    resumed.load_state_dict(checkpoint["model"])
    opt2.load_state_dict(checkpoint["opt"])
    assert [r.step for r in MaskHistory(path).records][-1] <= 9, "records after the checkpoint were kept"
    _run(resumed, engine2, opt2, path, range(9, 18), lang_of)
    assert path.read_bytes() == reference


def test_a_finished_run_resumed_records_its_end_once(tmp_path):
    """A run killed after fixing its masks at the end of training, resumed from its last checkpoint
    (ESPnet then trains no more): one freeze record, not two."""
    model, engine, opt = build(dict(method="imp", **CUBIC))
    engine.record_history(tmp_path / HISTORY_FILE)
    train(model, opt, range(14))
    checkpoint = {k: v.clone() for k, v in model.state_dict().items()}
    engine.freeze()
    reference = (tmp_path / HISTORY_FILE).read_bytes()
    resumed, engine2, _ = build(dict(method="imp", **CUBIC))
    engine2.record_history(tmp_path / HISTORY_FILE)
    resumed.load_state_dict(checkpoint)
    engine2.freeze()
    assert (tmp_path / HISTORY_FILE).read_bytes() == reference
    assert [r.kind for r in MaskHistory(tmp_path / HISTORY_FILE).records].count("freeze") == 1


def test_a_fresh_run_starts_a_new_history(tmp_path):
    (tmp_path / HISTORY_FILE).write_bytes(b"a history of an earlier run")
    model, engine, opt = build(dict(method="imp", **CUBIC))
    _run(model, engine, opt, tmp_path / HISTORY_FILE, range(5))
    assert [(r.step, r.kind) for r in MaskHistory(tmp_path / HISTORY_FILE).records] == [
        (0, "prune"), (4, "prune"), (5, "freeze")]


def test_the_end_of_training_draws_the_pathways_over_training(tmp_path):
    model, engine, opt = build(_dynamic(tmp_path), lr=0.2, optimizer="sgd")
    _run(model, engine, opt, tmp_path / "pruning" / HISTORY_FILE, range(len(ORDER)), lambda s: ORDER[s])
    written = write_pruning_outputs(model, engine, tmp_path)
    for key in ("iou", "sharing"):
        assert written[key].read_bytes()[:4] == b"\x89PNG" and written[key].parent == tmp_path / "pruning"
    data = json.loads(written["trajectory"].read_text())
    history = MaskHistory(tmp_path / "pruning" / HISTORY_FILE)
    assert data["steps"] == [r.step for r in history.records]
    final = MaskSet.load(tmp_path / "masks.pwm")
    assert data["iou"]["en/fr"][-1] == pytest.approx(float(final.overlap()[1][0, 1]))
    assert data["iou"]["en/fr"][0] == 1.0 and data["iou"]["en/fr"][-1] < 1.0
