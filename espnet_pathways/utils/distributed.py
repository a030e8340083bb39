"""Leaving torch.distributed cleanly at the end of a multi-process run."""

from __future__ import annotations

import logging
import os
import sys

import torch

__all__ = ["leave_process_group", "exit_now"]


def leave_process_group() -> bool:
    """Under torch.distributed, wait for every rank, then destroy the process group.

    ESPnet's training returns without destroying it; a rank that then exits while another one is
    still finishing (rank 0 averages and writes the checkpoints) can abort in the gloo teardown
    ("terminate called without an active exception", SIGABRT), failing a finished training.

    Returns:
        whether there was a process group to leave.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
        return True
    return False


def exit_now(code: int = 0) -> None:
    """Flush logs and streams, then end the process without the interpreter's teardown.

    After a distributed run the C++ side of torch.distributed is still torn down at interpreter exit,
    and that teardown occasionally aborts a rank whose work is complete (seen in 2-process CPU runs
    of the test suite even after :func:`leave_process_group`); every output is written by then.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
