"""Magnitude ranking: exact counts, agreement with torch.nn.utils.prune, candidates, ties."""

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from espnet_pathways.masks import keep_count, magnitude_masks
from espnet_pathways.masks import ranking


def _tie_free(*shapes):
    """Distinct magnitudes: a random permutation of 1..N spread over the tensors."""
    total = sum(torch.Size(s).numel() for s in shapes)
    values = (torch.randperm(total).double() + 1) / total
    values = values * torch.where(torch.rand(total) < 0.5, -1.0, 1.0).double()
    out, start = {}, 0
    for i, s in enumerate(shapes):
        n = torch.Size(s).numel()
        out[f"t{i}.weight"] = values[start : start + n].float().view(s)
        start += n
    return out


def _holders(tensors):
    mods = []
    for value in tensors.values():
        m = nn.Module()
        m.weight = nn.Parameter(value.clone())
        mods.append(m)
    return mods


SHAPES = [(37, 19), (64, 3, 5), (11,), (128, 40)]


@pytest.mark.parametrize("sparsity", [0.0, 0.13, 0.5, 0.7, 0.9, 0.99])
def test_global_matches_torch_global_unstructured(sparsity):
    tensors = _tie_free(*SHAPES)
    ours = magnitude_masks(tensors, sparsity, scope="global")
    mods = _holders(tensors)
    prune.global_unstructured([(m, "weight") for m in mods], pruning_method=prune.L1Unstructured, amount=sparsity)
    for (name, mask), m in zip(ours.items(), mods):
        assert torch.equal(mask, m.weight_mask.bool()), name


@pytest.mark.parametrize("sparsity", [0.0, 0.25, 0.6, 0.95])
def test_layerwise_matches_torch_l1_unstructured(sparsity):
    tensors = _tie_free(*SHAPES)
    ours = magnitude_masks(tensors, sparsity, scope="layerwise")
    for name, value in tensors.items():
        (m,) = _holders({name: value})
        prune.l1_unstructured(m, "weight", amount=sparsity)
        assert torch.equal(ours[name], m.weight_mask.bool()), name


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_keeps_exactly_round_of_candidates(scope):
    gen = torch.Generator().manual_seed(3)
    for trial in range(20):
        shapes = [(int(torch.randint(1, 50, (1,), generator=gen)), 7) for _ in range(3)]
        tensors = {f"w{i}": torch.randn(s, generator=gen) for i, s in enumerate(shapes)}
        s = float(torch.rand(1, generator=gen)) * 0.99
        masks = magnitude_masks(tensors, s, scope=scope)
        if scope == "global":
            assert sum(int(m.sum()) for m in masks.values()) == keep_count(sum(t.numel() for t in tensors.values()), s)
        else:
            for name, t in tensors.items():
                assert int(masks[name].sum()) == keep_count(t.numel(), s)


def test_kept_weights_dominate_pruned_weights():
    tensors = {"a": torch.randn(300, 20), "b": torch.randn(50)}
    masks = magnitude_masks(tensors, 0.8)
    kept = torch.cat([t.abs()[m] for t, m in zip(tensors.values(), masks.values())])
    pruned = torch.cat([t.abs()[~m] for t, m in zip(tensors.values(), masks.values())])
    assert kept.min() >= pruned.max()


def test_candidates_restrict_ranking():
    tensors = {"a": torch.randn(40, 30), "b": torch.randn(25, 8)}
    cands = {"a": torch.rand(40, 30) < 0.5, "b": torch.rand(25, 8) < 0.3}
    n_cand = sum(int(c.sum()) for c in cands.values())
    masks = magnitude_masks(tensors, 0.6, candidates=cands)
    assert sum(int(m.sum()) for m in masks.values()) == keep_count(n_cand, 0.6)
    for name in tensors:
        assert not bool((masks[name] & ~cands[name]).any()), "a non-candidate was kept"
    # the kept candidates are the largest candidates
    kept = torch.cat([tensors[n].abs()[masks[n]] for n in tensors])
    dropped = torch.cat([tensors[n].abs()[cands[n] & ~masks[n]] for n in tensors])
    assert kept.min() >= dropped.max()


def test_missing_candidate_entry_means_all():
    tensors = {"a": torch.randn(10, 10), "b": torch.randn(10)}
    masks = magnitude_masks(tensors, 0.5, candidates={"a": torch.ones(10, 10, dtype=torch.bool)})
    assert sum(int(m.sum()) for m in masks.values()) == 55


def test_ties_are_broken_by_tensor_order_then_index(monkeypatch):
    monkeypatch.setattr(ranking, "_CHUNK", 4)  # ties spanning several chunks
    tensors = {"a": torch.full((3, 3), 2.0), "b": -torch.full((5,), 2.0), "c": torch.tensor([5.0, 0.1])}
    masks = magnitude_masks(tensors, 0.25)  # 16 weights, keep 12: the 5.0, then 11 of the fourteen 2.0s
    assert masks["c"].tolist() == [True, False]
    assert bool(masks["a"].all()) and masks["b"].tolist() == [True, True, False, False, False]
    masks = magnitude_masks(tensors, 0.5)  # keep 8: the 5.0 and the first 7 ties of "a"
    assert masks["a"].reshape(-1).tolist() == [True] * 7 + [False] * 2
    again = magnitude_masks(tensors, 0.5)
    assert all(torch.equal(again[n], masks[n]) for n in masks)


def test_chunked_selection_matches_unchunked(monkeypatch):
    tensors = {"a": torch.randn(1000), "b": torch.randn(37, 11)}
    reference = magnitude_masks(tensors, 0.42)
    monkeypatch.setattr(ranking, "_CHUNK", 64)
    chunked = magnitude_masks(tensors, 0.42)
    assert all(torch.equal(reference[n], chunked[n]) for n in tensors)


def test_other_dtypes_rank_by_magnitude():
    base = _tie_free((30, 30))["t0.weight"]
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        masks = magnitude_masks({"w": base.to(dtype)}, 0.5)
        ref = magnitude_masks({"w": base.to(dtype).float()}, 0.5)
        assert torch.equal(masks["w"], ref["w"])


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), "x"])
def test_sparsity_outside_unit_interval_is_rejected(bad):
    with pytest.raises(ValueError, match="sparsity"):
        magnitude_masks({"a": torch.randn(4)}, bad)


def test_bad_arguments():
    with pytest.raises(ValueError, match="scope"):
        magnitude_masks({"a": torch.randn(4)}, 0.5, scope="per-row")
    with pytest.raises(ValueError, match="NaN"):
        magnitude_masks({"a": torch.tensor([1.0, float("nan"), 2.0])}, 0.5)
    with pytest.raises(ValueError, match="candidates"):
        magnitude_masks({"a": torch.randn(4)}, 0.5, candidates={"a": torch.ones(5, dtype=torch.bool)})
    with pytest.raises(ValueError, match="no tensors"):
        magnitude_masks({}, 0.5)


def test_extremes():
    tensors = {"a": torch.randn(7, 3)}
    assert magnitude_masks(tensors, 0.0)["a"].all()
    assert not magnitude_masks(tensors, 0.99)["a"].any()  # round(0.01 * 21) = 0
