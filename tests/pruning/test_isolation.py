"""The invariants every pruning method keeps after every optimizer step (isolation, hard zeros,
reset optimizer state), with the optimizers people use, with gradient accumulation, and at the steps
where something happens: pruning events, adaptations, rewinds, the freeze and a resume.

One test body runs methods x optimizers x accumulation. After each optimizer step it checks:

(i) every weight outside the step's region (the union of the regions of the languages the step
    applied) is bit-identical to its value before the step, except that a step which fired an event
    may set weights outside every new mask to exactly 0 (a pruning event, a re-ranking that
    re-zeroes, the freeze) and a rewind may reset them to theta_0 (LTH);
(ii) in hard mode, weights outside every mask are exactly 0;
(iii) in hard mode with ``reset_optimizer_state``, the optimizer state (momentum, Adam moments) of
    weights outside every mask is exactly 0.
"""

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from espnet_pathways.masks import SHARED, prunable_parameters
from toy import DEVICES, OPTIMIZERS, Toy, batch, build, make_optimizer, write_masks

LANGS = ("en", "fr")
STEPS = 16
RESUME_AT = 7  # the run continues from state dicts in a fresh model and optimizer after this step
# events at steps 0, 4, 8; adaptive methods re-rank every 2 steps and freeze at step 12
SCHEDULE = dict(schedule="cubic", initial_sparsity=0.2, target_sparsity=0.6, num_events=2, prune_interval=4)
# language id of each optimizer step for the multilingual methods (runs and switches)
LANG_OF_STEP = (0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 1)

METHODS = {
    "imp": dict(method="imp", languages=["en"], **SCHEDULE),
    "lth": dict(method="lth", languages=["en"], **SCHEDULE),
    "lap": dict(method="lap", **SCHEDULE),
    "adaptive_imp": dict(method="adaptive_imp", languages=["en"], adapt_interval=2, **SCHEDULE),
    "adaptive_lth": dict(method="adaptive_lth", languages=["en"], adapt_interval=2, **SCHEDULE),
    "pathways": dict(method="pathways"),
    "dynamic_pathways": dict(
        method="dynamic_pathways", adapt_interval=2,
        **{**SCHEDULE, "initial_sparsity": 0.5, "target_sparsity": 0.7},
    ),
}


def _setup(method, optimizer, tmp_path):
    conf = dict(METHODS[method])
    if method in ("pathways", "dynamic_pathways"):
        conf["init_masks"], _ = write_masks(tmp_path, {"en": 0.5, "fr": 0.5})
    init = None
    if method in ("lth", "adaptive_lth"):
        torch.manual_seed(11)
        init = str(tmp_path / "theta0.pth")
        torch.save(Toy().state_dict(), init)
    lr = 0.05 if optimizer in ("sgd", "momentum") else 1e-2
    return conf, init, lr


def _lang_batch(method, step, device, size=6):
    """The ``lang`` tensor of a micro-batch: mixed for LAP, monolingual otherwise."""
    if method == "lap":
        ids = torch.arange(size) % 2  # a batch holding both languages
    elif METHODS[method].get("languages"):
        ids = torch.zeros(size, dtype=torch.long)
    else:
        ids = torch.full((size,), LANG_OF_STEP[step])
    return ids.to(device)


def _step_region(handle):
    """Union of the regions of the languages the coming step applies (read in a pre-step hook)."""
    regions = [handle.region(lang) for lang in handle.stepped_languages]
    return {n: torch.stack([r[n] for r in regions]).any(0) for n in handle.names}


class _Watch:
    """Records the full weights, the region and the engine state just before each optimizer step."""

    def __init__(self, model, opt):
        self.model, self.before = model, None
        opt.register_step_pre_hook(self._record)

    def _record(self, opt, args, kwargs):
        handle, engine = self.model.pathway_masks, self.model.pathway_pruning
        self.before = dict(
            weights=handle.full_weights(),
            region=_step_region(handle),
            state=(int(engine.events_done), bool(engine.frozen)),
            masks=handle.maskset(),
        )


def _check_step(model, opt, watch, theta0, method, step):
    handle, engine = model.pathway_masks, model.pathway_pruning
    before, after = watch.before, handle.full_weights()
    masks = handle.maskset()
    union = masks.union()
    changed = before["state"] != (int(engine.events_done), bool(engine.frozen)) or before["masks"] != masks
    for name in handle.names:
        outside = ~before["region"][name]
        expected = before["weights"][name]
        if changed and engine.config.rewinds and before["state"][0] != int(engine.events_done):
            expected = theta0[name].to(expected.device) * union[name]  # rewound, then pruned
        elif changed:
            expected = torch.where(union[name], expected, torch.zeros_like(expected))
        moved = after[name][outside] != expected[outside]
        if changed and not engine.config.rewinds:
            # a re-ranking that keeps pruned values (rezero_on_adapt: false) leaves them as they were
            moved &= after[name][outside] != before["weights"][name][outside]
        assert not bool(moved.any()), (
            f"{method} step {step}: {int(moved.sum())} weights of {name} outside the step's region "
            f"({handle.stepped_languages}) changed"
        )
        if handle.mode == "hard":
            assert bool((after[name][~union[name]] == 0).all()), f"{method} step {step}: {name} pruned weight != 0"
    if handle.mode == "hard" and engine.config.reset_optimizer_state:
        for name, param in handle.parameters_by_name().items():
            for key, value in opt.state.get(param, {}).items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape:
                    assert bool((value[~union[name]] == 0).all()), (
                        f"{method} step {step}: optimizer state {key!r} of pruned weights of {name} != 0"
                    )


def _run(method, optimizer, accum, device, tmp_path):
    conf, init, lr = _setup(method, optimizer, tmp_path)
    theta0 = torch.load(init, weights_only=False) if init else None
    model, engine, opt = build(conf, lang_list=LANGS, init_param=init, lr=lr, optimizer=optimizer, device=device)
    watch = _Watch(model, opt)
    for step in range(STEPS):
        if step == RESUME_AT:
            state, opt_state = model.state_dict(), opt.state_dict()
            model, engine, opt = build(
                conf, lang_list=LANGS, init_param=init, seed=99, lr=lr, optimizer=optimizer, device=device
            )
            model.load_state_dict(state)
            opt.load_state_dict(opt_state)
            watch = _Watch(model, opt)
        model.train()
        for micro in range(accum):
            x, y = batch(step * accum + micro, device=device)
            loss, _, _ = model(x, y, lang=_lang_batch(method, step, device))
            (loss / accum).backward()
        opt.step()
        opt.zero_grad()
        _check_step(model, opt, watch, theta0, method, step)
    return model, engine


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("accum", [1, 4])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("method", list(METHODS))
def test_invariants_after_every_step(method, optimizer, accum, device, tmp_path):
    model, engine = _run(method, optimizer, accum, device, tmp_path)
    # the run went through the steps where something happens
    if engine.config.prunes:
        assert int(engine.events_done) == 3, "every pruning event fired"
    if engine.config.adaptive:
        assert bool(engine.frozen) and model.pathway_masks.mode == "hard", "masks were frozen"
    if method in ("pathways", "dynamic_pathways"):
        assert all(int(n) > 0 for n in engine.pathway_steps), "every language stepped"


def _two_language_step(model, opt, accum_langs):
    for micro, lang in enumerate(accum_langs):
        x, y = batch(100 + micro, device=opt.param_groups[0]["params"][0].device)
        loss, _, _ = model(x, y, lang=torch.full((x.shape[0],), lang, device=x.device))
        (loss / len(accum_langs)).backward()
    opt.step()
    opt.zero_grad()


def _gradient(model, weights, lang_micro_batches):
    """d loss / d theta of a plain Toy with ``weights``, summed over micro-batches (lang, index)."""
    plain = Toy()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("pathway_")}
    plain.load_state_dict(state)
    total = {n: torch.zeros_like(w) for n, w in weights.items()}
    for region, index in lang_micro_batches:
        with torch.no_grad():
            for n, p in prunable_parameters(plain).items():
                p.copy_(weights[n] * region[n])
        plain.zero_grad()
        x, y = batch(100 + index)
        loss, _, _ = plain(x, y)
        (loss / len(lang_micro_batches)).backward()
        for n, p in prunable_parameters(plain).items():
            total[n] += p.grad * region[n]
    return total


@pytest.mark.parametrize("method", ["pathways", "dynamic_pathways"])
def test_accumulating_two_languages_applies_each_gradient_to_its_own_region(method, tmp_path):
    """One SGD step over an en and an fr micro-batch = theta - lr * (g_en * r_en + g_fr * r_fr)."""
    conf, _, _ = _setup(method, "sgd", tmp_path)
    if method == "dynamic_pathways":
        conf["adapt_interval"] = 3  # no re-ranking in the two steps
    model, engine, opt = build(conf, lang_list=LANGS, lr=0.1, optimizer="sgd")
    model.train()
    _two_language_step(model, opt, [0])  # starts the engine (initial masks, step-0 event)
    handle = model.pathway_masks
    before = handle.full_weights()
    regions = {lang: handle.region(lang) for lang in LANGS}
    expected_grad = _gradient(model, before, [(regions["en"], 0), (regions["fr"], 1)])
    _two_language_step(model, opt, [0, 1])
    after = handle.full_weights()
    assert handle.stepped_languages == ("en", "fr")
    for n in handle.names:
        assert torch.allclose(after[n], before[n] - 0.1 * expected_grad[n], atol=1e-6), n
        en_only = regions["en"][n] & ~regions["fr"][n]
        assert bool((after[n][en_only] != before[n][en_only]).any()), f"en-exclusive weights of {n} did not learn"
    assert engine.pathway_steps.tolist() == [2, 1], "the step counts for both languages"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_mixed_accumulation_group_never_moves_weights_outside_its_languages(optimizer, device, tmp_path):
    """Three pathways, a step accumulating en and fr: weights of de alone stay bit-identical."""
    langs = ("en", "fr", "de")
    paths, _ = write_masks(tmp_path, {lang: 0.6 for lang in langs})
    model, engine, opt = build(
        dict(method="pathways", init_masks=paths), lang_list=langs, optimizer=optimizer, device=device
    )
    model.train()
    for _ in range(3):  # momentum and moments of every language
        for lang in (2, 0, 1):
            _two_language_step(model, opt, [lang])
    handle = model.pathway_masks
    before = handle.full_weights()
    outside = {n: ~(handle.region("en")[n] | handle.region("fr")[n]) for n in handle.names}
    _two_language_step(model, opt, [0, 1, 0, 1])
    after = handle.full_weights()
    for n in handle.names:
        assert torch.equal(after[n][outside[n]], before[n][outside[n]]), n
        inside = ~outside[n]
        assert bool((after[n][inside] != before[n][inside]).any())


def test_step_dropped_by_zero_grad_does_not_leave_its_language_in_the_next_step(tmp_path):
    """ESPnet skips a step with a non-finite gradient norm and zeroes the gradients: the next
    step, of fr alone, must not treat the dropped en micro-batch as part of its group."""
    paths, _ = write_masks(tmp_path, {"en": 0.5, "fr": 0.5})
    model, engine, opt = build(dict(method="pathways", init_masks=paths), lang_list=LANGS, optimizer="adam")
    model.train()
    for lang in (0, 1, 0, 1):
        _two_language_step(model, opt, [lang])
    handle = model.pathway_masks
    x, y = batch(7)
    model(x, y, lang=torch.zeros(6, dtype=torch.long))[0].backward()
    opt.zero_grad()  # the step is skipped
    before = handle.full_weights()
    _two_language_step(model, opt, [1])
    after = handle.full_weights()
    assert handle.stepped_languages == ("fr",)
    for n in handle.names:
        outside = ~handle.region("fr")[n]
        assert torch.equal(after[n][outside], before[n][outside]), n


@pytest.mark.parametrize("where", ["before_engine", "after_engine", "global"])
def test_any_post_step_hook_sees_other_pathways_untouched(where, tmp_path):
    """A user's hook reading the weights after the step (whatever its place among the hooks) and the
    engine's re-ranking both see weights outside the step's region as they were before the step."""
    paths, _ = write_masks(tmp_path, {"en": 0.5, "fr": 0.5})
    conf = dict(METHODS["dynamic_pathways"], init_masks=paths)
    torch.manual_seed(0)
    model = Toy()
    from espnet_pathways.pruning import PruningConfig, attach_pruning

    engine = attach_pruning(model, PruningConfig.from_dict(conf), LANGS)
    opt = make_optimizer("adam", model.parameters(), 1e-2)
    seen = []

    def user_hook(optimizer, args, kwargs):
        seen.append(model.pathway_masks.full_weights())

    if where == "before_engine":
        opt.register_step_post_hook(user_hook)
        engine.bind(opt)
    elif where == "after_engine":
        engine.bind(opt)
        opt.register_step_post_hook(user_hook)
    else:
        engine.bind(opt)
        removable = register_optimizer_step_post_hook(user_hook)
    try:
        watch = _Watch(model, opt)
        model.train()
        for step in range(10):
            x, y = batch(step)
            model(x, y, lang=torch.full((6,), LANG_OF_STEP[step]))[0].backward()
            opt.step()
            opt.zero_grad()
            _check_step(model, opt, watch, None, "dynamic_pathways", step)
            # the hook saw the weights before the step's event (if any) or after it, nothing else
            after = model.pathway_masks.full_weights()
            for n, region in watch.before["region"].items():
                seen_outside, outside = seen[-1][n][~region], ~region
                ok = (seen_outside == watch.before["weights"][n][outside]) | (seen_outside == after[n][outside])
                assert bool(ok.all()), (where, step, n)
    finally:
        if where == "global":
            removable.remove()
