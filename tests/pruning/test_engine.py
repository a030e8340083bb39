"""The pruning engine on a toy model: events, hard/soft semantics, LTH, LAP, adaptive, pathways."""

import logging
import re

import pytest
import torch
from torch import nn

from espnet_pathways.masks import MaskMismatchError, MaskSet, keep_count, magnitude_masks, prunable_parameters
from espnet_pathways.pruning import PruningConfig, PruningConfigError, attach_pruning, rank_within
from toy import Toy, batch, build, train, write_masks

CUBIC = dict(schedule="cubic", target_sparsity=0.7, initial_sparsity=0.1, num_events=3, prune_interval=4)


def _sparsity(model):
    return model.pathway_pruning.sparsity()


def test_events_fire_at_scheduled_steps_with_scheduled_sparsity():
    model, engine, opt = build(dict(method="imp", languages=["en"], **CUBIC))
    schedule = engine.schedule
    seen = {}
    train(model, opt, range(14), on_step=lambda s: seen.__setitem__(int(engine.step), _sparsity(model)))
    num = model.pathway_masks.maskset().num_prunable
    for step, target in schedule.events():
        if step == 0:
            continue
        assert seen[step] == pytest.approx(1 - keep_count(num, target) / num, abs=1e-12), step
        assert seen[step - 1] < seen[step], f"no event at step {step}"
    assert seen[13] == pytest.approx(0.7, abs=1 / num)
    assert int(engine.events_done) == schedule.last_event + 1


def test_step_zero_event_fires_at_first_training_forward():
    model, engine, opt = build(dict(method="imp", **CUBIC))
    assert _sparsity(model) == 0.0
    model.eval()
    model(*batch(0))
    assert _sparsity(model) == 0.0, "evaluation must not start pruning"
    model.train()
    model(*batch(0))
    assert _sparsity(model) == pytest.approx(0.1, abs=1e-3)


def test_events_follow_optimizer_steps_under_gradient_accumulation():
    model, engine, opt = build(dict(method="imp", **CUBIC))
    train(model, opt, range(4), accum=3)
    assert int(engine.step) == 4 and int(engine.events_done) == 2  # events at steps 0 and 4


@pytest.mark.parametrize("optimizer", ["adam", "adam_fused"])
def test_hard_pruned_weights_stay_zero_and_get_no_update(optimizer):
    model, engine, opt = build(dict(method="imp", **CUBIC), optimizer=optimizer)
    params = prunable_parameters(model)

    def check(step):
        masks = model.pathway_masks.maskset()["*"]
        for name, p in params.items():
            assert bool((p[~masks[name]] == 0).all()), (step, name)
            state = opt.state.get(p, {})
            if "exp_avg" in state:
                assert bool((state["exp_avg"][~masks[name]] == 0).all())

    train(model, opt, range(14), on_step=check)


def test_lth_rewinds_survivors_to_theta0_and_resets_optimizer(tmp_path):
    torch.manual_seed(5)
    theta0 = Toy().state_dict()
    torch.save(theta0, tmp_path / "dense.pth")
    model, engine, opt = build(dict(method="lth", **CUBIC), init_param=str(tmp_path / "dense.pth"))
    train(model, opt, range(3))  # event 0 at step 0; weights move
    moved = model.enc.weight.detach().clone()
    captured = {}

    def capture(step):
        if int(engine.step) == 4:
            captured["masks"] = model.pathway_masks.maskset()["*"]
            captured["params"] = {n: p.detach().clone() for n, p in model.named_parameters()}
            captured["state"] = len(opt.state)

    train(model, opt, range(3, 4), on_step=capture)
    assert not torch.equal(moved, theta0["enc.weight"])
    for name, value in captured["params"].items():
        expected = theta0[name]
        if name in captured["masks"]:
            expected = expected * captured["masks"][name]
        assert torch.equal(value, expected), name
    assert captured["state"] == 0, "optimizer state was not reset"


def test_rewind_checkpoint_must_fit(tmp_path):
    bad = Toy().state_dict()
    bad["mid.weight"] = torch.zeros(3, 3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="mid.weight"):
        build(dict(method="lth", rewind_to=str(tmp_path / "bad.pth"), **CUBIC))
    with pytest.raises(FileNotFoundError, match="rewind_to"):
        build(dict(method="lth", rewind_to=str(tmp_path / "missing.pth"), **CUBIC))


def test_lap_shared_mask_accepts_mixed_batches():
    model, engine, opt = build(dict(method="lap", **CUBIC))
    model.train()
    x, y = batch(0)
    model(x, y, lang=torch.tensor([[0], [1], [0], [1], [0], [1]]))
    assert model.pathway_masks.languages == ("*",)
    assert model.pathway_masks.active == "*"


def test_adaptive_masks_let_pruned_weights_reenter_then_freeze_hard(caplog):
    conf = dict(method="adaptive_imp", adapt_interval=2, **CUBIC)
    model, engine, opt = build(conf, lr=0.3, optimizer="sgd")
    history = {}
    with caplog.at_level(logging.INFO):
        train(model, opt, range(24), on_step=lambda s: history.__setitem__(int(engine.step), model.pathway_masks.maskset()["*"]))
    reentered = 0
    for step in range(2, 25):
        if step % 4 == 0:
            continue  # pruning events
        before, after = history[step - 1], history[step]
        reentered += sum(int((after[n] & ~before[n]).sum()) for n in after)
    assert reentered > 0, "no pruned weight re-entered the mask"
    logged = [int(m) for m in re.findall(r"weights re-entering \{'\*': (\d+)\}", caplog.text)]
    assert sum(logged) == reentered, "the adaptation log must count the weights that re-entered"
    hard_from = engine.config.hard_from()
    assert bool(engine.frozen) and model.pathway_masks.mode == "hard"
    final = history[hard_from]
    for step in range(hard_from, 25):
        assert all(torch.equal(history[step][n], final[n]) for n in final), "masks changed after freezing"
    for name, p in prunable_parameters(model).items():
        assert bool((p[~final[name]] == 0).all())
    assert _sparsity(model) == pytest.approx(0.7, abs=1e-2)


def test_soft_pruning_zeroes_at_event_but_weights_regrow_between_events():
    model, engine, opt = build(dict(method="adaptive_imp", adapt_interval=3, **CUBIC), lr=0.3, optimizer="sgd")
    train(model, opt, range(1))
    masks = model.pathway_masks.maskset()["*"]
    nonzero_pruned = sum(int((p[~masks[n]] != 0).sum()) for n, p in prunable_parameters(model).items())
    assert nonzero_pruned > 0, "soft-pruned weights must keep training"


@pytest.mark.parametrize("rezero", [True, False])
def test_rezero_on_adapt_decides_whether_a_reranking_zeroes_dropped_weights(rezero):
    conf = dict(method="adaptive_imp", adapt_interval=2, rezero_on_adapt=rezero, **CUBIC)
    model, engine, opt = build(conf, lr=0.3, optimizer="sgd")
    params = prunable_parameters(model)
    outside_after_adapt = []

    def record(step):
        if int(engine.step) % 4 == 2:  # an adaptation step (events at multiples of 4)
            masks = model.pathway_masks.maskset()["*"]
            outside_after_adapt.append(sum(int((p[~masks[n]] != 0).sum()) for n, p in params.items()))

    train(model, opt, range(10), on_step=record)
    assert len(outside_after_adapt) == 3
    if rezero:
        assert outside_after_adapt == [0, 0, 0]
    else:
        assert all(n > 0 for n in outside_after_adapt), "pruned weights must keep their regrown values"


def test_fixed_pathways_train_each_language_inside_its_mask(tmp_path):
    paths, masks = write_masks(tmp_path, {"en": 0.7, "fr": 0.7})
    model, engine, opt = build(dict(method="pathways", init_masks=paths))
    handle = model.pathway_masks

    def check(step):
        assert handle.maskset() == masks, "fixed pathways must not change"

    train(model, opt, range(2), lang_of=lambda s: s % 2, on_step=check)
    assert handle.languages == ("en", "fr")
    full_before = handle.full_weights()
    train(model, opt, range(2, 3), lang_of=lambda s: 1, on_step=check)  # a fr step
    full_after = handle.full_weights()
    for n in full_before:
        outside = ~masks["fr"][n]
        assert torch.equal(full_before[n][outside], full_after[n][outside])
    assert engine.schedule is None


def test_dynamic_pathways_rerank_inside_mask_plus_free_zone(tmp_path):
    paths, init = write_masks(tmp_path, {"en": 0.5, "fr": 0.5})
    conf = dict(method="dynamic_pathways", init_masks=paths, schedule="cubic", initial_sparsity=0.5,
                target_sparsity=0.7, num_events=2, prune_interval=4, adapt_interval=2)
    model, engine, opt = build(conf, lr=0.2, optimizer="sgd")
    handle = model.pathway_masks
    train(model, opt, range(1), lang_of=lambda s: s % 2)
    assert handle.maskset() == init, "initial masks come from init_masks"

    def check(step):
        if bool(engine.frozen):
            return
        # after a (re-)ranking every pathway lies inside its region of before the step
        for lang in handle.languages:
            for n, mask in handle.maskset()[lang].items():
                assert not bool((mask & ~regions[lang][n]).any()), f"{lang} left its mask + free zone"

    regions = {}
    for step in range(1, 14):
        regions = {l: handle.region(l) for l in handle.languages}
        train(model, opt, range(step, step + 1), lang_of=lambda s: s % 2, on_step=check)
    final = handle.maskset()
    for lang in ("en", "fr"):
        assert final.sparsity(lang) == pytest.approx(0.7, abs=1e-2)
    assert bool(engine.frozen) and handle.mode == "hard"
    assert final != init


def test_dynamic_pathways_adapt_each_language_after_its_own_steps(tmp_path):
    """From one shared (LAP-like) initial mask, the pathways become language-specific."""
    paths, init = write_masks(tmp_path, {"*": 0.5})
    conf = dict(method="dynamic_pathways", init_masks=paths, schedule="cubic", initial_sparsity=0.5,
                target_sparsity=0.7, num_events=2, prune_interval=8, adapt_interval=2)
    model, engine, opt = build(conf, lr=0.2, optimizer="sgd")
    handle = model.pathway_masks
    order = [0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0]
    reranked = []

    def record(step):
        after = handle.maskset()
        reranked.append([l for l in handle.languages if not all(torch.equal(after[l][n], before[l][n]) for n in after[l])])

    for step, code in enumerate(order):
        before = handle.maskset()
        train(model, opt, [step], lang_of=lambda s: code, on_step=record)
    for step, (code, changed) in enumerate(zip(order, reranked), start=1):
        lang = ("en", "fr")[code]
        if step == 1 or step % 8 == 0 or step >= conf["prune_interval"] * conf["num_events"]:
            continue  # pruning events (the first at the first forward) re-rank every language; then masks are fixed
        assert set(changed) <= {lang}, f"step {step}: a {lang} batch re-ranked {changed}"
    assert int(engine.pathway_steps.sum()) == len(order)
    assert engine.pathway_steps.tolist() == [order.count(0), order.count(1)]
    final = handle.maskset()
    assert not all(torch.equal(final["en"][n], final["fr"][n]) for n in final["en"]), "pathways stayed identical"
    assert final.sparsity("en") == pytest.approx(0.7, abs=1e-2) and final.sparsity("fr") == pytest.approx(0.7, abs=1e-2)


def test_rank_within_is_relative_to_all_weights():
    tensors = {"a": torch.randn(10, 10), "b": torch.randn(50)}
    cands = {"a": torch.rand(10, 10) < 0.8, "b": torch.rand(50) < 0.8}
    masks = rank_within(tensors, 0.5, "global", cands)
    assert sum(int(m.sum()) for m in masks.values()) == 75
    assert not any(bool((m & ~cands[n]).any()) for n, m in masks.items())
    layer = rank_within(tensors, 0.5, "layerwise", cands)
    assert int(layer["a"].sum()) == min(50, int(cands["a"].sum()))
    tiny = rank_within(tensors, 0.1, "global", {"a": torch.zeros(10, 10, dtype=torch.bool), "b": torch.ones(50, dtype=torch.bool)})
    assert int(tiny["b"].sum()) == 50 and int(tiny["a"].sum()) == 0


def test_resume_from_state_dicts_is_identical(tmp_path):
    conf = dict(method="adaptive_lth", adapt_interval=2, **CUBIC)
    torch.save(Toy().state_dict(), tmp_path / "dense.pth")
    init = str(tmp_path / "dense.pth")
    model, engine, opt = build(conf, init_param=init)
    train(model, opt, range(20))
    reference = {k: v.clone() for k, v in model.state_dict().items()}

    first, _, opt1 = build(conf, init_param=init)
    train(first, opt1, range(9))
    torch.save({"model": first.state_dict(), "opt": opt1.state_dict()}, tmp_path / "ckpt.pth")
    del first, opt1
    resumed, engine2, opt2 = build(conf, init_param=init, seed=123)
    ckpt = torch.load(tmp_path / "ckpt.pth", weights_only=False)
    resumed.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["opt"])
    train(resumed, opt2, range(9, 20))
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, reference[key]), key


@pytest.mark.parametrize(
    "conf, match",
    [
        (dict(method="imp", target_sparsity=1.0), "target_sparsity"),
        (dict(method="prune_all"), "unknown 'prune_all'"),
        (dict(method="adaptive_imp", prune_interval=4, adapt_interval=4, target_sparsity=0.5), "adapt_interval"),
        (dict(method="adaptive_imp", prune_interval=4, target_sparsity=0.5), "needs adapt_interval"),
        (dict(method="imp", target_sparsty=0.5), "did you mean 'target_sparsity'"),
        (dict(method="pathways"), "init_masks"),
        (dict(method="imp", languages=["en", "fr"]), "monolingual"),
        (dict(method="lap", languages=["en"]), "shared"),
        (dict(target_sparsity=0.5), "'method' is required"),
        (dict(method="imp", schedule="linear"), "schedule"),
        (dict(method="adaptive_imp", prune_interval=4, adapt_interval=2, rezero_on_adapt="no"), "rezero_on_adapt"),
        (dict(method="imp", allow_short_schedul=True), "did you mean 'allow_short_schedule'"),
        (dict(method="imp", allow_short_schedule="yes"), "allow_short_schedule must be true or false"),
        (dict(method="adaptive_imp", adapt_interval=2, freeze_step=8, **CUBIC),
         r"freeze_step \(8\) fixes the masks before the last pruning event \(step 12\)"),
    ],
)
def test_config_validation(conf, match):
    with pytest.raises(PruningConfigError, match=match):
        PruningConfig.from_dict(conf)


def test_steps_needed_and_a_run_shorter_than_its_schedule_is_refused(caplog):
    imp = PruningConfig.from_dict(dict(method="imp", **CUBIC))  # events at steps 0, 4, 8, 12
    adaptive = PruningConfig.from_dict(dict(method="adaptive_imp", adapt_interval=2, **CUBIC))  # fixed at 16
    assert (imp.steps_needed(), adaptive.steps_needed()) == (12, 16)
    assert PruningConfig.from_dict(dict(method="pathways", init_masks=["x.pwm"])).steps_needed() == 0
    imp.check_steps(12, "enough")
    with pytest.raises(PruningConfigError, match=r"11 optimizer steps \(src\), the schedule needs 12 .* at "
                       r"sparsity 0\.6778, short of target_sparsity 0\.7.*allow_short_schedule: true"):
        imp.check_steps(11, "src")
    with pytest.raises(PruningConfigError, match=r"the schedule needs 16 \(last pruning event at step 12, masks "
                       r"fixed at step 16\)"):
        adaptive.check_steps(15, "src")
    short = PruningConfig.from_dict(dict(method="imp", allow_short_schedule=True, **CUBIC))
    with caplog.at_level(logging.WARNING):
        short.check_steps(11, "src")
    assert "the schedule needs 12" in caplog.text and "allow_short_schedule: true" in caplog.text


def test_masks_fixed_before_the_schedule_ends_warn(caplog):
    model, engine, opt = build(dict(method="imp", **CUBIC))
    train(model, opt, range(6))  # e.g. early stopping; the engine itself does not know the run's length
    with caplog.at_level(logging.WARNING):
        engine.freeze()
    assert "masks fixed after pruning event 2 of 4: short of target_sparsity 0.7" in caplog.text


def test_init_masks_of_another_architecture_fail_when_the_engine_binds_naming_file_and_tensor(tmp_path):
    """Checked before training (the task binds the engine before reading data), not at the first forward."""
    other = Toy()
    other.mid, other.out = nn.Linear(32, 16), nn.Linear(16, 4)
    paths, _ = write_masks(tmp_path, {"en": 0.5, "fr": 0.5}, model=other)
    model = Toy()
    engine = attach_pruning(model, PruningConfig.from_dict(dict(method="pathways", init_masks=paths)), ["en", "fr"])
    with pytest.raises(MaskMismatchError, match=r"init_masks: .*en\.pwm does not fit the model \(mask fingerprint "
                       r"\w+, model \w+\): tensor 'mid.weight' has shape \(16, 32\), the model's \(32, 32\)"):
        engine.bind(torch.optim.SGD(model.parameters(), lr=0.1))


DYNAMIC = dict(method="dynamic_pathways", schedule="cubic", target_sparsity=0.7, num_events=2, prune_interval=4,
               adapt_interval=2)


def test_initial_sparsity_must_match_the_init_masks(tmp_path):
    paths, _ = write_masks(tmp_path, {"en": 0.7, "fr": 0.2})
    with pytest.raises(PruningConfigError, match=r"init_masks: .*fr\.pwm, language 'fr', has sparsity 0\.20\d+, but "
                       r"pruning_conf.initial_sparsity is 0\.7"):
        build(dict(init_masks=paths, initial_sparsity=0.7, **DYNAMIC))
    shared, _ = write_masks(tmp_path, {"*": 0.695})  # within the tolerance, used by every language
    model, engine, opt = build(dict(init_masks=shared, initial_sparsity=0.7, **DYNAMIC))
    train(model, opt, range(1), lang_of=lambda s: 0)
    assert engine.sparsity("en") == engine.sparsity("fr") == pytest.approx(0.7, abs=1e-3)
