"""Shared helpers for the benchmarks: repeated timing, result files and the summary table.

Each benchmark module exposes ``main() -> dict`` and writes ``bench/results/<name>.json`` through
:func:`write_result`; ``python -m bench.summarize`` (run by ``make bench``) turns every JSON file into
``bench/results/README.md``. Ratios are measured side by side in one process and medians are quoted:
the machines are shared and noisy.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch

from espnet_pathways.utils.fileio import atomic_write_text

RESULTS_DIR = Path(__file__).resolve().parent / "results"

__all__ = ["RESULTS_DIR", "time_repeats", "interleaved_times", "paired_ratio_medians", "machine_info", "write_result"]


def time_repeats(fn: Callable[[], object], repeats: int, warmup: int = 1) -> List[float]:
    """Wall-clock seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def interleaved_times(fns: Dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> Dict[str, List[float]]:
    """Seconds of each call of each function, timed round-robin so that they share the noise.

    Entry ``i`` of every list comes from round ``i``: ratios of same-round entries are paired.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def paired_ratio_medians(times: Dict[str, List[float]], reference: str) -> Dict[str, float]:
    """Median over rounds of ``time[name] / time[reference]`` in the same round."""
    ref = times[reference]
    return {name: statistics.median(t / r for t, r in zip(ts, ref)) for name, ts in times.items()}


def machine_info() -> Dict[str, object]:
    """What the numbers were measured on."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }


def write_result(name: str, result: Dict[str, object]) -> Path:
    """Write ``result`` (plus machine info) to ``bench/results/<name>.json`` atomically."""
    payload = {"benchmark": name, "machine": machine_info(), **result}
    path = RESULTS_DIR / f"{name}.json"
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path
