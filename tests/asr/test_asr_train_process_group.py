"""``espnet_pathways.utils.distributed.leave_process_group``: the training entry point leaves torch.distributed cleanly."""

from __future__ import annotations

import torch
import torch.distributed as dist

from espnet_pathways.utils.distributed import leave_process_group


def test_leave_process_group_destroys_the_group(tmp_path):
    assert leave_process_group() is False  # no process group: nothing to do
    assert not dist.is_initialized()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        t = torch.ones(1)
        dist.all_reduce(t)
        assert leave_process_group() is True
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
