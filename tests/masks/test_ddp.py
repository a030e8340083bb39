"""Pathway masks under DistributedDataParallel (2 CPU processes, gloo), with Adam and gradient
accumulation (monolingual groups, and groups that mix languages), and with an existing language's
pathway frozen (``freeze_existing``) part-way through, after Adam's moments have built up."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from espnet_pathways.utils.distributed import exit_now, leave_process_group
from espnet_pathways.masks import MaskSet, attach, prunable_parameters

LANGS = ["en", "fr"]


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 3))


def _masks(model):
    gen = torch.Generator().manual_seed(7)
    params = prunable_parameters(model)
    return MaskSet({l: {n: torch.rand(p.shape, generator=gen) < 0.6 for n, p in params.items()} for l in LANGS})


def _data(step):
    gen = torch.Generator().manual_seed(100 + step)
    return torch.randn(4, 6, generator=gen), torch.randn(4, 3, generator=gen)


class _LangModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _model()

    def forward(self, x, lang=None):
        return self.net(x)


# language ids of the micro-batches of each optimizer step
GROUPS = {
    "no_accumulation": [[0], [1], [0], [1], [0], [1]],
    "monolingual_groups": [[0, 0], [1, 1], [1, 1], [0, 0]],
    "mixed_groups": [[0, 1], [1, 1], [1, 0, 0], [0]],
}


def _frozen(model):
    """What ``freeze_existing`` keeps of an existing language: en's pathway and a bias."""
    return {**_masks(model)["en"], "net.0.bias": torch.ones(12, dtype=torch.bool)}


FREEZE_AT = 2  # optimizer step after which the frozen test freezes (Adam's moments are not zero)


def _weights(model):
    """Full (unmasked-storage) weights of the masked parameters, and the bias the frozen test keeps."""
    return {**model.pathway_masks.full_weights(), "net.0.bias": model.net[0].bias.detach().clone()}


def _train(model, wrapped, rank, world, groups, freeze=False):
    """Train; returns the final weights and (with ``freeze``) those at the freeze, else None."""
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    micro, at_freeze = 0, None
    for step, group in enumerate(groups):
        if freeze and step == FREEZE_AT:
            at_freeze = _weights(model)
            model.pathway_masks.freeze(_frozen(model))
        for lang_id in group:
            x, y = _data(micro)
            micro += 1
            shard = slice(rank * 4 // world, (rank + 1) * 4 // world)
            lang = torch.full((4 // world,), lang_id)
            loss = (wrapped(x[shard], lang=lang) - y[shard]).pow(2).mean() / len(group)
            loss.backward()
        opt.step()
        opt.zero_grad()
    return _weights(model), at_freeze


def _worker(rank, world, init_file, out_file, groups, freeze=False):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    model = _LangModel()
    attach(model, _masks(model), lang_list=LANGS)
    ddp = nn.parallel.DistributedDataParallel(model)
    full, at_freeze = _train(model, ddp, rank, world, groups, freeze)
    gathered = [None] * world
    dist.all_gather_object(gathered, full)
    if rank == 0:
        torch.save({"weights": gathered, "at_freeze": at_freeze, "masks": model.pathway_masks.maskset()}, out_file)
    leave_process_group()  # no rank leaves while another still talks to it
    exit_now(0)


@pytest.mark.parametrize("schedule", list(GROUPS))
def test_ddp_two_processes_match_single_process(schedule, tmp_path):
    out = tmp_path / "ddp.pt"
    groups = GROUPS[schedule]
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(out), groups), nprocs=2, join=True)
    result = torch.load(out, weights_only=False)
    rank0, rank1 = result["weights"]
    single = _LangModel()
    masks = _masks(single)
    attach(single, masks, lang_list=LANGS)
    expected, _ = _train(single, single, 0, 1, groups)
    assert result["masks"] == masks
    for name in expected:
        assert torch.equal(rank0[name], rank1[name]), f"{name} differs between ranks"
        assert torch.allclose(rank0[name], expected[name], atol=1e-5), f"{name} differs from single process"
    for name, kept in masks.union().items():
        assert bool((rank0[name][~kept] == 0).all())


def test_ddp_frozen_pathway_stays_exact_with_accumulation(tmp_path):
    """Frozen after two Adam steps, en's pathway (and a bias) keeps its values exactly on both ranks
    through accumulated groups of both languages, while fr trains; as in one process."""
    out = tmp_path / "ddp.pt"
    groups = GROUPS["mixed_groups"] + GROUPS["monolingual_groups"]
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(out), groups, True), nprocs=2, join=True)
    result = torch.load(out, weights_only=False)
    (rank0, rank1), at_freeze = result["weights"], result["at_freeze"]
    single = _LangModel()
    attach(single, _masks(single), lang_list=LANGS)
    expected, _ = _train(single, single, 0, 1, groups, freeze=True)
    frozen = _frozen(single)
    for name, keep in frozen.items():
        assert torch.equal(rank0[name], rank1[name]), f"{name} differs between ranks"
        assert torch.equal(rank0[name][keep], at_freeze[name][keep]), f"frozen elements of {name} moved"
        assert torch.allclose(rank0[name], expected[name], atol=1e-5), f"{name} differs from single process"
    fr_only = _masks(single)["fr"]["net.0.weight"] & ~frozen["net.0.weight"]
    assert not torch.equal(rank0["net.0.weight"][fr_only], at_freeze["net.0.weight"][fr_only]), "fr trained"
