"""The command line that launches training: one process, ESPnet's own multi-GPU spawn, torchrun, or srun.

| case | command |
|---|---|
| 1 node, ``num_procs`` <= 1, ``ngpu`` <= 1 | ``python -m <module> ... --ngpu G`` |
| 1 node, ``num_procs`` <= 1, ``ngpu`` > 1 | ESPnet spawns G processes: ``--ngpu G --multiprocessing_distributed true`` |
| 1 node, ``num_procs`` = P > 1 | ``python -m torch.distributed.run --standalone --nproc_per_node P -m <module> ... --multiprocessing_distributed false`` with ``--ngpu 1`` per process (GPU) or ``--ngpu 0 --dist_backend gloo`` (CPU) |
| N nodes, ``launcher=torchrun`` | ``torch.distributed.run --nnodes N --node_rank R --master_addr A --master_port M --nproc_per_node P``; run the same command on every node with its own ``--node_rank`` |
| N nodes, ``launcher=slurm`` | ``srun --export=ALL --nodes N --ntasks-per-node 1 python -m <module> ... --dist_launcher slurm --multiprocessing_distributed true`` (ESPnet spawns G per node), shared-file rendezvous |

Processes and threads (:meth:`LaunchOptions.resolve`; ``num_procs``/``num_threads`` None: by the
rule). On CPU (``ngpu`` 0), with C = the cores this process may use (``os.sched_getaffinity``):
P = the largest divisor of the batch size <= min(C, 8) (ESPnet gives each process batch_size / P
of every batch), T = C // P threads per process (``OMP_NUM_THREADS``); a given P or T is kept and
the other follows (P <= C // T). With GPUs: P = 1 (ESPnet's own G processes), T = 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["LaunchOptions", "launch_command", "available_cores", "cpu_split"]

LAUNCHERS = ("local", "torchrun", "slurm")
MAX_CPU_PROCS = 8  # a cap (2 utterances per process of a 16-utterance batch); measured on 2 cores only


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_split(cores: int, batch_size: Optional[int], num_procs: Optional[int] = None,
              num_threads: Optional[int] = None) -> Tuple[int, int]:
    """(processes, threads per process) for CPU training on ``cores`` cores: the rule of the module
    docstring for the ones not given (``batch_size`` None: any P divides it)."""
    if num_procs is None:
        limit = max(1, min(cores // (num_threads or 1), MAX_CPU_PROCS))
        num_procs = max(p for p in range(1, limit + 1) if not batch_size or batch_size % p == 0)
    return num_procs, num_threads or max(1, cores // num_procs)


@dataclass(frozen=True)
class LaunchOptions:
    """How many processes where.

    Attributes:
        python: the Python interpreter.
        ngpu: GPUs per node (0: CPU).
        num_procs: processes per node started by torchrun (>1 forces torchrun on one node); None:
            by the rule (:meth:`resolve`).
        num_threads: threads per process (``OMP_NUM_THREADS``); None: by the rule.
        num_nodes: nodes.
        launcher: ``local`` (one node), ``torchrun`` or ``slurm`` (several nodes).
        node_rank, master_addr, master_port: torchrun's rendezvous for several nodes.
        init_file: shared file for the slurm rendezvous (``file://``); must not exist yet.
    """

    python: str = "python3"
    ngpu: int = 0
    num_procs: Optional[int] = 1
    num_threads: Optional[int] = None
    num_nodes: int = 1
    launcher: str = "local"
    node_rank: int = 0
    master_addr: Optional[str] = None
    master_port: int = 29500
    init_file: Optional[Path] = None

    def __post_init__(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise ValueError(f"launcher must be one of {LAUNCHERS}, got {self.launcher!r}")
        counts = (self.num_procs, self.num_threads)
        if self.ngpu < 0 or self.num_nodes < 1 or any(n is not None and n < 1 for n in counts):
            raise ValueError(f"need ngpu >= 0, num_procs >= 1, num_threads >= 1, num_nodes >= 1: {self}")
        if self.num_nodes > 1 and self.launcher == "local":
            raise ValueError("--num_nodes > 1 needs --launcher torchrun (run on every node) or slurm")
        if self.num_nodes > 1 and self.launcher == "torchrun" and not self.master_addr:
            raise ValueError("--launcher torchrun with several nodes needs --master_addr")
        if self.launcher == "slurm" and self.init_file is None:
            raise ValueError("--launcher slurm needs an init_file for the rendezvous")

    def resolve(self, batch_size: Optional[int], cores: Optional[int] = None) -> "LaunchOptions":
        """These options with processes and threads fixed by the rule (module docstring)."""
        if self.ngpu > 0:
            return replace(self, num_procs=self.num_procs or 1, num_threads=self.num_threads or 1)
        procs, threads = cpu_split(cores or available_cores(), batch_size, self.num_procs, self.num_threads)
        return replace(self, num_procs=procs, num_threads=threads)

    def env(self) -> Dict[str, str]:
        """Environment of the launched command (threads per process, once resolved)."""
        return {} if self.num_threads is None else {"OMP_NUM_THREADS": str(self.num_threads)}


def _torchrun(opts: LaunchOptions, nproc: int, module: str, args: Sequence[str], multi_node: bool) -> List[str]:
    cmd = [opts.python, "-m", "torch.distributed.run"]
    if multi_node:
        cmd += [
            "--nnodes", str(opts.num_nodes), "--node_rank", str(opts.node_rank),
            "--master_addr", str(opts.master_addr), "--master_port", str(opts.master_port),
        ]
    else:
        cmd += ["--standalone", "--nnodes", "1"]
    per_proc_gpu = "1" if opts.ngpu > 0 else "0"
    cmd += ["--nproc_per_node", str(nproc), "-m", module, *args,
            "--ngpu", per_proc_gpu, "--multiprocessing_distributed", "false"]
    if opts.ngpu == 0:
        cmd += ["--dist_backend", "gloo"]
    return cmd


def launch_command(module: str, args: Sequence[str], opts: LaunchOptions) -> List[str]:
    """argv that runs ``python -m module args`` as ``opts`` says (see the module docstring)."""
    if opts.num_procs is None:
        raise ValueError("num_procs is not fixed yet: LaunchOptions.resolve() first")
    if opts.num_nodes == 1 and opts.launcher != "slurm":
        if opts.num_procs > 1:
            return _torchrun(opts, opts.num_procs, module, args, multi_node=False)
        cmd = [opts.python, "-m", module, *args, "--ngpu", str(opts.ngpu)]
        if opts.ngpu > 1:
            cmd += ["--multiprocessing_distributed", "true"]
        return cmd
    if opts.launcher == "torchrun":
        return _torchrun(opts, max(opts.num_procs, opts.ngpu, 1), module, args, multi_node=True)
    cmd = [
        "srun", "--export=ALL", "--nodes", str(opts.num_nodes), "--ntasks-per-node", "1",
        opts.python, "-m", module, *args,
        "--ngpu", str(opts.ngpu), "--multiprocessing_distributed", "true",
        "--dist_launcher", "slurm", "--dist_init_method", f"file://{Path(opts.init_file).absolute()}",
    ]
    if opts.ngpu == 0:
        cmd += ["--dist_backend", "gloo"]
    return cmd
