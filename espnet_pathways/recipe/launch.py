"""The command line that launches training: one process, ESPnet's own multi-GPU spawn, torchrun, or srun.

| case | command |
|---|---|
| 1 node, ``num_procs`` <= 1, ``ngpu`` <= 1 | ``python -m <module> ... --ngpu G`` |
| 1 node, ``num_procs`` <= 1, ``ngpu`` > 1 | ESPnet spawns G processes: ``--ngpu G --multiprocessing_distributed true`` |
| 1 node, ``num_procs`` = P > 1 | ``python -m torch.distributed.run --standalone --nproc_per_node P -m <module> ... --multiprocessing_distributed false`` with ``--ngpu 1`` per process (GPU) or ``--ngpu 0 --dist_backend gloo`` (CPU) |
| N nodes, ``launcher=torchrun`` | ``torch.distributed.run --nnodes N --node_rank R --master_addr A --master_port M --nproc_per_node P``; run the same command on every node with its own ``--node_rank`` |
| N nodes, ``launcher=slurm`` | ``srun --export=ALL --nodes N --ntasks-per-node 1 python -m <module> ... --dist_launcher slurm --multiprocessing_distributed true`` (ESPnet spawns G per node), shared-file rendezvous |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

__all__ = ["LaunchOptions", "launch_command"]

LAUNCHERS = ("local", "torchrun", "slurm")


@dataclass(frozen=True)
class LaunchOptions:
    """How many processes where.

    Attributes:
        python: the Python interpreter.
        ngpu: GPUs per node (0: CPU).
        num_procs: processes per node started by torchrun (>1 forces torchrun on one node).
        num_nodes: nodes.
        launcher: ``local`` (one node), ``torchrun`` or ``slurm`` (several nodes).
        node_rank, master_addr, master_port: torchrun's rendezvous for several nodes.
        init_file: shared file for the slurm rendezvous (``file://``); must not exist yet.
    """

    python: str = "python3"
    ngpu: int = 0
    num_procs: int = 1
    num_nodes: int = 1
    launcher: str = "local"
    node_rank: int = 0
    master_addr: Optional[str] = None
    master_port: int = 29500
    init_file: Optional[Path] = None

    def __post_init__(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise ValueError(f"launcher must be one of {LAUNCHERS}, got {self.launcher!r}")
        if self.ngpu < 0 or self.num_procs < 1 or self.num_nodes < 1:
            raise ValueError(f"need ngpu >= 0, num_procs >= 1, num_nodes >= 1: {self}")
        if self.num_nodes > 1 and self.launcher == "local":
            raise ValueError("--num_nodes > 1 needs --launcher torchrun (run on every node) or slurm")
        if self.num_nodes > 1 and self.launcher == "torchrun" and not self.master_addr:
            raise ValueError("--launcher torchrun with several nodes needs --master_addr")
        if self.launcher == "slurm" and self.init_file is None:
            raise ValueError("--launcher slurm needs an init_file for the rendezvous")


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
