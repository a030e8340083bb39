"""Frozen elements of a masked model (``PathwayHandle.freeze``): exact under every optimizer, even
with momentum and Adam moments built up before the freeze, and with weight decay."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from espnet_pathways.masks import MaskMismatchError, MaskSet, attach, magnitude_masks, prunable_parameters

OPTIMIZERS = {
    "momentum": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
}


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 16)
        self.b = nn.Linear(16, 5)

    def forward(self, x, lang=None):
        return self.b(torch.tanh(self.a(x))).pow(2).mean()


def setup(seed: int = 0):
    torch.manual_seed(seed)
    model = Net()
    params = prunable_parameters(model)
    gen = torch.Generator().manual_seed(seed)
    masks = {l: magnitude_masks({n: torch.rand(p.shape, generator=gen) for n, p in params.items()}, 0.5)
             for l in ("en", "es")}
    attach(model, MaskSet(masks), mode="soft", lang_list=["en", "es"])
    return model, masks


def step(model, opt, lang_id: int, seed: int) -> None:
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(seed))
    opt.zero_grad()
    model(x, lang=torch.full((4, 1), lang_id)).backward()
    opt.step()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_frozen_elements_stay_exact_after_optimizer_state_built_up(name):
    model, masks = setup()
    opt = OPTIMIZERS[name](model.parameters())
    for i in range(5):  # momentum / moments on every weight of both languages
        step(model, opt, i % 2, i)
    handle = model.pathway_masks
    frozen = {n: m.clone() for n, m in masks["en"].items()}
    frozen["a.bias"] = torch.ones(16, dtype=torch.bool)
    frozen["b.bias"] = torch.tensor([True, True, True, False, False])  # rows 3, 4 stay trainable
    handle.freeze(frozen)
    before = {**{n: p.detach().clone() for n, p in model.named_parameters()}, **handle.full_weights()}
    for i in range(6):
        step(model, opt, 1, 100 + i)
    after = {**{n: p.detach().clone() for n, p in model.named_parameters()}, **handle.full_weights()}
    for name_, keep in frozen.items():
        assert torch.equal(after[name_][keep], before[name_][keep]), name_
    assert not torch.equal(after["b.bias"][3:], before["b.bias"][3:])
    free = ~masks["en"]["a.weight"] & handle.region("es")["a.weight"]
    assert not torch.equal(after["a.weight"][free], before["a.weight"][free])
    handle.freeze({})
    step(model, opt, 0, 200)
    assert not torch.equal(model.a.bias, before["a.bias"])


def test_freeze_checks_names_and_shapes():
    model, _ = setup()
    with pytest.raises(MaskMismatchError, match="no parameter 'c.weight'"):
        model.pathway_masks.freeze({"c.weight": torch.ones(2, dtype=torch.bool)})
    with pytest.raises(MaskMismatchError, match="'a.bias' has shape"):
        model.pathway_masks.freeze({"a.bias": torch.ones(3, dtype=torch.bool)})
