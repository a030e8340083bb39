"""A tiny ESPnet-shaped model and training loop for pruning-engine tests."""

from typing import Iterable, Optional, Sequence

import torch
from torch import nn

from espnet_pathways.pruning import PruningConfig, attach_pruning


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


def batch(step: int, size: int = 6):
    gen = torch.Generator().manual_seed(1000 + step)
    return torch.randn(size, 8, generator=gen), torch.randn(size, 4, generator=gen)


def build(conf: dict, lang_list: Sequence[str] = ("en", "fr"), init_param: Optional[str] = None, seed: int = 0,
          lr: float = 1e-2, optimizer: str = "adam"):
    torch.manual_seed(seed)
    model = Toy()
    engine = attach_pruning(model, PruningConfig.from_dict(conf), lang_list, init_param=init_param)
    if init_param:
        state = torch.load(init_param, weights_only=False)
        model.load_state_dict({**model.state_dict(), **state})
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr, fused=optimizer == "adam_fused")
    engine.bind(opt)
    return model, engine, opt


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
