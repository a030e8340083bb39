"""ESPnet's ASR training CLI with the plugin registered.

Every ``espnet2.bin.asr_train`` option works (``--config``, ``--ngpu``, ``--init_param``, ``--resume``,
distributed options, ...), plus ``--lang_list``, ``--predictor``/``--predictor_conf``,
``--joiner_conf`` and ``model: pathways_transducer`` / ``encoder: emformer`` in the YAML::

    python -m espnet_pathways.bin.asr_train --config conf/train_asr_emformer_demo.yaml \\
        --token_list data/token_list/tokens.txt --output_dir exp/asr_demo ...
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, Optional

import torch

from espnet_pathways.tasks.asr import PathwaysASRTask


def get_parser() -> argparse.ArgumentParser:
    """The task's full argument parser."""
    return PathwaysASRTask.get_parser()


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


def main(cmd: Optional[List[str]] = None) -> None:
    """Run ESPnet's training main with the plugin task (``cmd`` = argv without the program name)."""
    PathwaysASRTask.main(cmd=cmd)
    if leave_process_group():
        exit_now(0)


if __name__ == "__main__":
    main()
