"""A tiny ESPnet-shaped model and training loop for pruning-engine tests."""

from typing import Iterable, Optional, Sequence

import pytest
import torch
from torch import nn

from espnet_pathways.masks import MaskSet, magnitude_masks, prunable_parameters
from espnet_pathways.pruning import PruningConfig, attach_pruning

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "adam_fused")
# every device test runs on the CPU, and on CUDA where there is a GPU (skipped otherwise)
DEVICES = ("cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")))


class Toy(nn.Module):
    """forward(x, y, lang) -> (loss, stats, weight) like an ESPnet model (B: batch, D: 8)."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(8, 32)
        self.mid = nn.Linear(32, 32)
        self.out = nn.Linear(32, 4)

    def forward(self, x, y, lang=None, lang_lengths=None):
        pred = self.out(torch.tanh(self.mid(torch.tanh(self.enc(x)))))
        loss = (pred - y).pow(2).mean()
        return loss, {"loss": loss.detach()}, torch.tensor(x.shape[0])


def batch(step: int, size: int = 6, device: str = "cpu"):
    gen = torch.Generator().manual_seed(1000 + step)
    return torch.randn(size, 8, generator=gen).to(device), torch.randn(size, 4, generator=gen).to(device)


def build(conf: dict, lang_list: Sequence[str] = ("en", "fr"), init_param: Optional[str] = None, seed: int = 0,
          lr: float = 1e-2, optimizer: str = "adam", device: str = "cpu"):
    torch.manual_seed(seed)
    model = Toy().to(device)
    engine = attach_pruning(model, PruningConfig.from_dict(conf), lang_list, init_param=init_param)
    if init_param:
        state = torch.load(init_param, map_location=device, weights_only=False)
        model.load_state_dict({**model.state_dict(), **state})
    opt = make_optimizer(optimizer, model.parameters(), lr)
    engine.bind(opt)
    return model, engine, opt


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """One of :data:`OPTIMIZERS`: plain SGD, SGD + momentum 0.9, Adam, AdamW (decay 0.01), fused Adam."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    if name in ("adam", "adam_fused"):
        return torch.optim.Adam(params, lr=lr, fused=name == "adam_fused")
    raise ValueError(f"unknown optimizer {name!r}")


def write_masks(directory, sparsity_by_lang, seed: int = 3, model: Optional[nn.Module] = None):
    """Random masks of ``model`` (default: a :class:`Toy`) of the given sparsity per language, one
    file each: (paths, MaskSet)."""
    params = prunable_parameters(model if model is not None else Toy())
    gen = torch.Generator().manual_seed(seed)
    masks = {}
    for lang, s in sparsity_by_lang.items():
        scores = {n: torch.rand(p.shape, generator=gen) for n, p in params.items()}
        masks[lang] = magnitude_masks(scores, s)
    paths = [str(MaskSet({lang: masks[lang]}).save(directory / f"{lang}.pwm")) for lang in masks]
    return paths, MaskSet(masks)


def train(model, opt, steps: Iterable[int], accum: int = 1, lang_of=None, on_step=None):
    model.train()
    for step in steps:
        for micro in range(accum):
            x, y = batch(step * accum + micro)
            lang = None if lang_of is None else torch.full((x.shape[0], 1), lang_of(step))
            loss, _, _ = model(x, y, lang=lang)
            (loss / accum).backward()
        opt.step()
        opt.zero_grad()
        if on_step is not None:
            on_step(step)
