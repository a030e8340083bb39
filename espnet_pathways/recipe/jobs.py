"""Run a few commands in parallel, each with its own log file; fail naming the failed logs."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

__all__ = ["run_parallel", "log_tail"]


def log_tail(path: Path, n: int = 15) -> str:
    """The last ``n`` lines of a log (empty if missing)."""
    if not path.is_file():
        return ""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(lines[-n:])


def _wait(proc: subprocess.Popen, watch: Optional[Callable[[], None]], interval_s: float) -> int:
    """Wait for ``proc``; call ``watch`` every ``interval_s`` seconds meanwhile and once at the end."""
    if watch is None:
        return proc.wait()
    while True:
        try:
            rc = proc.wait(timeout=interval_s)
        except subprocess.TimeoutExpired:
            watch()
            continue
        watch()
        return rc


def run_parallel(
    commands: Sequence[Sequence[str]],
    logs: Sequence[Path],
    env: Optional[Mapping[str, str]] = None,
    watch: Optional[Callable[[], None]] = None,
    interval_s: float = 1.0,
) -> None:
    """Start every command at once (stdout and stderr to its log) and wait for all.

    Each log starts with the command line (``# <cmd>``), like Kaldi's ``run.pl``. ``watch`` (e.g.
    :func:`espnet_pathways.recipe.progress.follow_log`) is called every ``interval_s`` seconds while
    waiting.

    Raises:
        RuntimeError: one or more commands exited non-zero; names each log and shows the last
            lines of the first.
    """
    if len(commands) != len(logs):
        raise ValueError(f"{len(commands)} commands but {len(logs)} logs")
    full_env = {**os.environ, **(env or {})}
    procs = []
    try:
        for cmd, log in zip(commands, logs):
            log.parent.mkdir(parents=True, exist_ok=True)
            fh = log.open("w", encoding="utf-8")
            fh.write(f"# {shlex.join(cmd)}\n")
            fh.flush()
            logging.info("running %s (log: %s)", shlex.join(cmd[:6]) + (" ..." if len(cmd) > 6 else ""), log)
            procs.append((subprocess.Popen(list(cmd), stdout=fh, stderr=subprocess.STDOUT, env=full_env), fh, log))
        failed = []
        for proc, fh, log in procs:
            rc = _wait(proc, watch, interval_s)
            fh.close()
            if rc != 0:
                failed.append((log, rc))
    except BaseException:
        for proc, fh, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            fh.close()
        raise
    if failed:
        first_log = failed[0][0]
        listing = ", ".join(f"{log} (exit {rc})" for log, rc in failed)
        raise RuntimeError(f"{len(failed)} of {len(procs)} job(s) failed: {listing}\n--- tail of {first_log} ---\n{log_tail(first_log)}")
