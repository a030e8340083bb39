"""Attached masks: hard/soft semantics, language switching, state_dict, copies, squash."""

import copy
import io

import pytest
import torch
from torch import nn

from espnet_pathways.masks import (
    SHARED,
    MaskMismatchError,
    MaskSet,
    attach,
    magnitude_masks,
    prunable_parameters,
)


class Net(nn.Module):
    """A small model with the layer kinds the prunable set covers (B: batch, D: features)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 6, 3, padding=1)
        self.lstm = nn.LSTM(6, 8, batch_first=True)
        self.norm = nn.LayerNorm(8)
        self.out = nn.Linear(8, 5)

    def forward(self, x, lang=None):
        """x (Tensor): (B, T, 4) -> (B, T, 5)."""
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)
        h, _ = self.lstm(torch.relu(h))
        return self.out(self.norm(h))


def _random_masks(model, languages, density=0.5, seed=1):
    gen = torch.Generator().manual_seed(seed)
    params = prunable_parameters(model)
    return MaskSet({l: {n: torch.rand(p.shape, generator=gen) < density for n, p in params.items()} for l in languages})


def _reference_output(model, weights, x):
    """Forward of a plain copy of ``model`` whose prunable weights are replaced by ``weights``."""
    ref = Net()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("pathway_masks.")}
    state.update(weights)
    ref.load_state_dict(state)
    return ref(x)


def _train_steps(model, x, langs, opt):
    for lang in langs:
        model(x, lang=lang).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()


def test_default_prunable_set():
    names = list(prunable_parameters(Net()))
    assert names == ["conv.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0", "out.weight"]
    assert list(prunable_parameters(Net(), exclude=["lstm"])) == ["conv.weight", "out.weight"]
    assert list(prunable_parameters(Net(), include=[r"^out\."])) == ["out.weight"]


def test_empty_prunable_set_is_an_error():
    from espnet_pathways.masks import PrunableSetError

    with pytest.raises(PrunableSetError, match="no prunable tensor"):
        prunable_parameters(Net(), include=["nothing-matches"])
    with pytest.raises(PrunableSetError, match="invalid regular expression"):
        prunable_parameters(Net(), include=["("])


def test_hard_mask_forward_equals_masked_weights():
    model, x = Net(), torch.randn(2, 7, 4)
    theta = {n: p.detach().clone() for n, p in prunable_parameters(model).items()}
    masks = _random_masks(model, ["en"])
    attach(model, masks)
    expected = _reference_output(model, {n: theta[n] * masks["en"][n] for n in theta}, x)
    assert torch.allclose(model(x), expected, atol=1e-6)


ADAM_IMPLEMENTATIONS = [{"foreach": True}, {"foreach": False}, {"fused": True}]


@pytest.mark.parametrize("adam", ADAM_IMPLEMENTATIONS, ids=["foreach", "for-loop", "fused"])
def test_hard_pruned_weights_stay_zero_through_adam_with_momentum(adam):
    model, x = Net(), torch.randn(2, 7, 4)
    opt = torch.optim.Adam(model.parameters(), lr=0.05, **adam)
    _train_steps(model, x, [None] * 3, opt)  # build dense momentum first
    params = prunable_parameters(model)
    masks = MaskSet({"en": magnitude_masks(params, 0.7)})
    attach(model, masks, mode="hard")
    for _ in range(4):
        model(x).pow(2).mean().backward()
        for n, p in params.items():
            assert bool((p.grad[~masks["en"][n]] == 0).all()), f"pruned weight of {n} got a gradient"
        opt.step()
        opt.zero_grad()
        for n, p in params.items():
            assert bool((p[~masks["en"][n]] == 0).all()), f"pruned weight of {n} moved"
    assert any(bool((p[masks["en"][n]] != 0).any()) for n, p in params.items())


@pytest.mark.parametrize("adam", ADAM_IMPLEMENTATIONS, ids=["foreach", "for-loop", "fused"])
def test_pathways_switch_in_place_and_update_only_their_region(adam):
    model, x = Net(), torch.randn(3, 5, 4)
    masks = _random_masks(model, ["en", "fr"])
    handle = attach(model, masks, lang_list=["en", "fr"])
    params = prunable_parameters(model)
    storage = {n: p.data_ptr() for n, p in params.items()}
    opt = torch.optim.Adam(model.parameters(), lr=0.05, **adam)
    _train_steps(model, x, [torch.tensor([1, 1, 1])], opt)  # fr momentum exists
    for step in range(4):
        code = ["en", "fr"][step % 2]
        before = handle.full_weights()
        _train_steps(model, x, [torch.full((3, 1), step % 2)], opt)
        after = handle.full_weights()
        assert handle.active == code
        for n in params:
            outside = ~masks[code][n]
            assert torch.equal(after[n][outside], before[n][outside]), f"{code} step changed {n} outside its pathway"
            assert bool((params[n][outside] == 0).all())
    assert {n: p.data_ptr() for n, p in params.items()} == storage, "switching re-allocated weights"
    assert prunable_parameters(model) == params, "switching re-registered parameters"
    full = handle.full_weights()
    for code in ("en", "fr"):
        out = model(x, lang=code)
        expected = _reference_output(model, {n: full[n] * masks[code][n] for n in full}, x)
        assert torch.allclose(out, expected, atol=1e-6)


def test_batch_language_rules():
    model, x = Net(), torch.randn(2, 5, 4)
    attach(model, _random_masks(model, ["en", "fr"]), lang_list=["en", "fr"])
    with pytest.raises(ValueError, match="mixes languages"):
        model(x, lang=torch.tensor([0, 1]))
    with pytest.raises(KeyError, match="outside lang_list"):
        model(x, lang=torch.tensor([5, 5]))
    with pytest.raises(KeyError, match="has no pathway"):
        model.pathway_masks.activate("de")
    shared = Net()
    h = attach(shared, _random_masks(shared, ["en", SHARED]), lang_list=["en", "fr"])
    shared(x, lang=torch.tensor([0, 1]))
    assert h.active == SHARED
    shared(x, lang=torch.tensor([0, 0]))
    assert h.active == "en"
    shared(x, lang=torch.tensor([1, 1]))  # no fr pathway: the shared mask serves it
    assert h.active == SHARED


def test_soft_mode_zeroes_at_event_but_keeps_training():
    model, x = Net(), torch.randn(2, 7, 4)
    params = prunable_parameters(model)
    masks = MaskSet({"en": magnitude_masks(params, 0.6)})
    handle = attach(model, masks, mode="soft")
    for n, p in params.items():
        assert bool((p[~masks["en"][n]] == 0).all())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    _train_steps(model, x, [None] * 2, opt)
    regrown = sum(int((p[~masks["en"][n]] != 0).sum()) for n, p in params.items())
    assert regrown > 0, "soft-pruned weights must stay trainable"
    assert not handle.masking
    theta = handle.full_weights()
    reranked = MaskSet({"en": magnitude_masks(params, 0.6)})
    handle.set_masks(reranked, zero_pruned=False)  # a re-ranking that lets pruned weights keep regrowing
    assert all(torch.equal(handle.full_weights()[n], theta[n]) for n in theta)
    handle.set_masks(reranked)
    assert all(bool((p[~reranked["en"][n]] == 0).all()) for n, p in params.items())
    with pytest.raises(ValueError, match="hard masks always zero"):
        handle.set_masks(reranked, mode="hard", zero_pruned=False)


def test_soft_multilingual_region_is_mask_plus_free_zone():
    model = Net()
    masks = _random_masks(model, ["en", "fr", "it"], density=0.3)
    handle = attach(model, masks, mode="soft")
    for code in masks.languages:
        others = [l for l in masks.languages if l != code]
        for n, region in handle.region(code).items():
            taken = torch.zeros_like(region)
            for o in others:
                taken |= masks[o][n]
            assert torch.equal(region, masks[code][n] | ~taken)


def test_set_masks_is_a_pruning_event():
    model = Net()
    params = prunable_parameters(model)
    handle = attach(model, MaskSet.full(params, ["en"]))
    sparser = MaskSet({"en": magnitude_masks(params, 0.8)})
    handle.set_masks(sparser)
    assert handle.maskset() == sparser
    for n, p in params.items():
        assert bool((p[~sparser["en"][n]] == 0).all())
    with pytest.raises(MaskMismatchError):
        handle.set_masks(MaskSet.full(params, ["en", "fr"]))


def test_state_dict_holds_full_weights_and_loads_into_another_instance():
    model, x = Net(), torch.randn(2, 7, 4)
    masks = _random_masks(model, ["en", "fr"])
    handle = attach(model, masks, lang_list=["en", "fr"])
    handle.activate("fr")
    state = model.state_dict()
    full = handle.full_weights()
    for n in full:
        assert torch.equal(state[n], full[n])
    assert state["pathway_masks.masks.en.out__weight"].dtype == torch.bool
    other = Net()
    attach(other, MaskSet.full(prunable_parameters(other), ["en", "fr"]), lang_list=["en", "fr"])
    other.load_state_dict(state)
    assert other.pathway_masks.maskset() == masks
    for code in ("en", "fr"):
        assert torch.equal(other(x, lang=code), model(x, lang=code))


def test_maskset_from_checkpoint_state():
    model = Net()
    masks = _random_masks(model, ["en", "fr"])
    attach(model, masks)
    assert MaskSet.from_state_dict(model.state_dict()) == masks
    assert MaskSet.from_state_dict(Net().state_dict()) is None


def test_loading_dense_weights_keeps_pruned_weights_zero():
    dense, model = Net(), Net()
    masks = _random_masks(model, ["en"])
    attach(model, masks)
    state = dense.state_dict()
    state.update({k: v for k, v in model.state_dict().items() if k.startswith("pathway_masks.")})
    model.load_state_dict(state)
    for n, p in prunable_parameters(model).items():
        assert bool((p[~masks["en"][n]] == 0).all())
        assert torch.equal(p[masks["en"][n]], dict(dense.named_parameters())[n][masks["en"][n]])


def test_deepcopy_and_pickle_keep_working_masks():
    model, x = Net(), torch.randn(2, 7, 4)
    attach(model, _random_masks(model, ["en", "fr"]), lang_list=["en", "fr"])
    clone = copy.deepcopy(model)
    assert clone.pathway_masks is not model.pathway_masks
    assert clone.pathway_masks._params[0] is clone.conv.weight
    clone(x, lang="fr")
    assert model.pathway_masks.active == "en", "switching the copy changed the original"
    opt = torch.optim.SGD(clone.parameters(), lr=0.5, momentum=0.9)
    _train_steps(clone, x, ["fr", "fr"], opt)
    masks = clone.pathway_masks.maskset()
    for n, p in prunable_parameters(clone).items():
        assert bool((p[~masks["fr"][n]] == 0).all()), "the copy lost its gradient masking"
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    for code in ("en", "fr"):
        assert torch.equal(loaded(x, lang=code), model(x, lang=code))


def test_squash_and_detach():
    model, x = Net(), torch.randn(2, 7, 4)
    masks = _random_masks(model, ["en", "fr"])
    handle = attach(model, masks)
    full = handle.full_weights()
    expected = model(x, lang="fr")
    keys = [k for k in Net().state_dict()]
    handle.squash("fr")
    assert not hasattr(model, "pathway_masks") and list(model.state_dict()) == keys
    assert torch.equal(model(x), expected)
    for n, p in prunable_parameters(model).items():
        assert torch.equal(p.detach(), full[n] * masks["fr"][n])
    other = Net()
    handle = attach(other, masks)
    full = handle.full_weights()
    handle.detach()
    assert not hasattr(other, "pathway_masks")
    for n, p in prunable_parameters(other).items():
        assert torch.equal(p.detach(), full[n])
    assert other._ddp_params_and_buffers_to_ignore == []


def test_mismatched_masks_name_the_tensor(tmp_path):
    model = Net()
    params = prunable_parameters(model)
    bad_shape = {n: torch.ones(p.shape, dtype=torch.bool) for n, p in params.items()}
    bad_shape["out.weight"] = torch.ones(3, 3, dtype=torch.bool)
    with pytest.raises(MaskMismatchError, match="out.weight"):
        attach(model, MaskSet({"en": bad_shape}))
    bad_name = {n.replace("lstm", "gru"): torch.ones(p.shape, dtype=torch.bool) for n, p in params.items()}
    with pytest.raises(MaskMismatchError, match="gru.weight_ih_l0"):
        attach(model, MaskSet({"en": bad_name}))
    assert not hasattr(model, "pathway_masks")
    attach(model, MaskSet.full(params, ["en"]))
    with pytest.raises(ValueError, match="already has pathway masks"):
        attach(model, MaskSet.full(params, ["en"]))


def test_mask_file_made_on_one_instance_plugs_into_another(tmp_path):
    a, b, x = Net(), Net(), torch.randn(2, 7, 4)
    masks = MaskSet({"en": magnitude_masks(prunable_parameters(a), 0.5)})
    path = masks.save(tmp_path / "m.pwm")
    attach(b, MaskSet.load(path))
    for n, p in prunable_parameters(b).items():
        assert bool((p[~masks["en"][n]] == 0).all())
    b(x)


def test_ddp_ignores_mask_buffers():
    model = Net()
    attach(model, _random_masks(model, ["en", "fr"]))
    ignored = set(model._ddp_params_and_buffers_to_ignore)
    assert {f"pathway_masks.{n}" for n, _ in model.pathway_masks.named_buffers()} == ignored
    assert not any(n.startswith("pathway_masks") for n, _ in model.named_parameters())
