"""Benchmarks of the pathway masks (foundation issue).

1. ``train_step``: forward + backward + Adam step of a 20-layer Emformer stack (d=512, FFN 2048) with
   hard pathway masks (2 languages, in language runs of 1, 4 and 8 steps, as the task's
   ``--lang_run_length`` orders monolingual batches; and one language throughout), against the same
   dense model, ``torch.nn.utils.prune`` (forward pre-hook, one mask) and a mask-multiply
   parametrization (one mask), timed round-robin in one process. Each timed call is 8 optimizer
   steps (a whole number of runs of every length), reported per step. It runs
   twice: with ``Adam(fused=True)`` and with torch's default (``foreach``) Adam. The default Adam
   makes every masked variant pay for moments that are mostly exact zeros: PyTorch's vectorised CPU
   ``sqrt`` is several times slower on such tensors than on dense ones (a cost of masked training
   itself, not of the masking mechanism); the fused CPU kernel has no such penalty and is faster
   for dense training too.
2. ``ranking``: global and layerwise magnitude masks over >= 100M weights against
   ``torch.nn.utils.prune.global_unstructured`` on the same tensors; each method runs in a fresh
   subprocess so that its peak extra memory (max RSS above the baseline) can be read.
3. ``storage``: bits per weight per language of the mask file, and its size against the dense fp32
   checkpoint of the same stack.

Usage: ``python -m bench.bench_masks [--quick] [--parts train_step ranking storage]`` (``make bench``
runs every part; a part left out keeps its last result in ``bench/results/masks.json``).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import gc
import json
import os
import subprocess
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
import torchaudio
from torch import nn
from torch.nn.utils import parametrize, prune

from bench.common import RESULTS_DIR, interleaved_times, machine_info, paired_ratio_medians, time_repeats, write_result
from espnet_pathways.masks import MaskSet, attach, magnitude_masks, prunable_parameters

EMFORMER = dict(input_dim=512, num_heads=8, ffn_dim=2048, num_layers=20, segment_length=4, right_context_length=1)


class _Stack(nn.Module):
    """Emformer stack with a ``lang`` keyword (B: batch, T: frames, D: 512)."""

    def __init__(self) -> None:
        super().__init__()
        self.emformer = torchaudio.models.Emformer(**EMFORMER)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, lang=None) -> torch.Tensor:
        out, _ = self.emformer(x, lengths)
        return out


class _MaskMultiply(nn.Module):
    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.float())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


STEPS_PER_CALL = 8  # one timed call: a whole number of language runs of every benchmarked length
RUN_LENGTHS = (1, 4, 8)


def _steps_fn(model: nn.Module, batch, lang_schedule: List[Optional[torch.Tensor]], adam: Dict[str, bool]):
    """A call runs ``STEPS_PER_CALL`` training steps, step ``i`` on language ``lang_schedule[i % len]``."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, **adam)
    x, lengths = batch
    state = {"i": 0}

    def steps() -> None:
        for _ in range(STEPS_PER_CALL):
            lang = lang_schedule[state["i"] % len(lang_schedule)]
            state["i"] += 1
            model(x, lengths, lang=lang).pow(2).mean().backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

    return steps


def _masked_copy(dense: nn.Module, masks: MaskSet) -> nn.Module:
    model = _Stack()
    model.load_state_dict(dense.state_dict())
    attach(model, masks, mode="hard", lang_list=list(masks.languages))
    return model


def bench_train_step(batch_size: int, frames: int, repeats: int, adam: Dict[str, bool]) -> Dict[str, object]:
    """Median step time of each variant; ``adam``: keyword arguments of ``torch.optim.Adam``."""
    torch.manual_seed(0)
    dense = _Stack()
    params = prunable_parameters(dense)
    gen = torch.Generator().manual_seed(1)
    masks = MaskSet({l: {n: torch.rand(p.shape, generator=gen) > 0.7 for n, p in params.items()} for l in ("en", "fr")})

    pruned = _Stack()
    pruned.load_state_dict(dense.state_dict())
    modules = dict(pruned.named_modules())
    for name in params:
        owner, _, local = name.rpartition(".")
        prune.custom_from_mask(modules[owner], local, masks["en"][name])

    parametrized = _Stack()
    parametrized.load_state_dict(dense.state_dict())
    modules = dict(parametrized.named_modules())
    for name in params:
        owner, _, local = name.rpartition(".")
        parametrize.register_parametrization(modules[owner], local, _MaskMultiply(masks["en"][name]))

    x = torch.randn(batch_size, frames + EMFORMER["right_context_length"], EMFORMER["input_dim"])
    lengths = torch.full((batch_size,), frames)
    en, fr = torch.zeros(batch_size, dtype=torch.long), torch.ones(batch_size, dtype=torch.long)
    batch = (x, lengths)
    variants = {"dense": _steps_fn(dense, batch, [None], adam)}
    for run in RUN_LENGTHS:
        variants[f"pathways_hard_runs_of_{run}"] = _steps_fn(_masked_copy(dense, masks), batch, [en] * run + [fr] * run, adam)
    variants["pathways_hard_one_language"] = _steps_fn(_masked_copy(dense, masks), batch, [en], adam)
    variants["torch_prune_prehook"] = _steps_fn(pruned, batch, [None], adam)
    variants["parametrize_mask_multiply"] = _steps_fn(parametrized, batch, [None], adam)
    times = interleaved_times(variants, repeats=repeats)
    times = {name: [t / STEPS_PER_CALL for t in ts] for name, ts in times.items()}
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "model": f"torchaudio Emformer {EMFORMER}",
        "optimizer": f"torch.optim.Adam({', '.join(f'{k}={v}' for k, v in adam.items())})",
        "prunable_weights": masks.num_prunable,
        "batch": {"batch_size": batch_size, "frames": frames},
        "repeats": repeats,
        "steps_per_timed_call": STEPS_PER_CALL,
        "median_step_s": medians,
        "ratio_vs_dense": {k: v / medians["dense"] for k, v in medians.items()},
        "paired_ratio_vs_dense": paired_ratio_medians(times, "dense"),
        "goal": "pathways_hard_runs_of_4 / dense <= 1.04 (fused Adam)",
    }


def _ranking_tensors(num_weights: int) -> Dict[str, torch.Tensor]:
    torch.manual_seed(0)
    per = 2048 * 512
    return {f"layers.{i}.weight": torch.randn(2048, 512) for i in range((num_weights + per - 1) // per)}


def _rss_bytes(field: str) -> int:
    """``VmRSS`` (current) or ``VmHWM`` (peak) of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> int:
    """Return freed heap pages to the OS, reset the peak-RSS mark, and return the current RSS."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    return _rss_bytes("VmRSS")


def _run_ranking(method: str, tensors: Dict[str, torch.Tensor]) -> None:
    if method == "torch_global_unstructured":
        holders = []
        for value in tensors.values():
            holder = nn.Module()
            holder.weight = nn.Parameter(value, requires_grad=False)
            holders.append((holder, "weight"))
        prune.global_unstructured(holders, pruning_method=prune.L1Unstructured, amount=0.7)
    else:
        magnitude_masks(tensors, 0.7, scope=method)


def ranking_child(method: str, num_weights: int, repeats: int) -> Dict[str, float]:
    """Run one ranking method ``repeats`` times in this (fresh) process.

    Reports the median seconds (and all of them) and the peak extra memory of the first run (the
    allocator keeps freed memory, so later runs would measure its caching). A small warm-up run
    first pages in the library code, which would otherwise count as memory.
    """
    _run_ranking(method, {"warmup.weight": torch.randn(64, 64)})
    tensors = _ranking_tensors(num_weights)
    baseline = _reset_peak_rss()
    run = functools.partial(_run_ranking, method, tensors)
    times = time_repeats(run, 1, warmup=0)
    peak = _rss_bytes("VmHWM")
    times += time_repeats(run, repeats - 1, warmup=0)
    weights = sum(t.numel() for t in tensors.values())
    return {
        "seconds": statistics.median(times),
        "all_seconds": times,
        "extra_bytes_per_weight": (peak - baseline) / weights,
        "weights": weights,
    }


def bench_ranking(num_weights: int) -> Dict[str, object]:
    results = {}
    for method, repeats in (("global", 5), ("layerwise", 5), ("torch_global_unstructured", 3)):
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_masks", "--ranking-child", method, "--weights", str(num_weights),
             "--repeats", str(repeats)],
            check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
        )
        results[method] = json.loads(out.stdout.strip().splitlines()[-1])
    peer = results["torch_global_unstructured"]["seconds"]
    return {
        "weights": results["global"]["weights"],
        "sparsity": 0.7,
        "methods": results,
        "speedup_vs_torch_global_unstructured": {m: peer / r["seconds"] for m, r in results.items()},
        "goal": ">= 20x faster than torch global_unstructured, <= 1 byte/weight peak extra memory",
    }


def bench_storage() -> Dict[str, object]:
    torch.manual_seed(0)
    model = _Stack()
    params = prunable_parameters(model)
    masks = MaskSet({l: magnitude_masks(params, s) for l, s in (("en", 0.7), ("fr", 0.6), ("it", 0.7), ("nl", 0.5))})
    with tempfile.TemporaryDirectory() as tmp:
        mask_path = masks.save(Path(tmp) / "masks.pwm")
        ckpt = Path(tmp) / "model.pth"
        torch.save(model.state_dict(), ckpt)
        mask_bytes, ckpt_bytes = os.path.getsize(mask_path), os.path.getsize(ckpt)
    return {
        "prunable_weights": masks.num_prunable,
        "languages": len(masks.languages),
        "mask_file_bytes": mask_bytes,
        "bits_per_weight_per_language": mask_bytes * 8 / (masks.num_prunable * len(masks.languages)),
        "dense_fp32_checkpoint_bytes": ckpt_bytes,
        "mask_file_vs_checkpoint": mask_bytes / ckpt_bytes,
        "goal": "<= 1.02 bits per weight per language",
    }


PARTS = ("train_step", "ranking", "storage")


def _run_part(part: str, quick: bool) -> object:
    if part == "train_step":
        return [
            bench_train_step(batch_size=4 if quick else 8, frames=32 if quick else 64, repeats=3 if quick else 7,
                             adam=adam)
            for adam in ({"fused": True}, {"foreach": True})
        ]
    if part == "ranking":
        return bench_ranking(10_000_000 if quick else 100_000_000)
    return bench_storage()


def main(quick: bool = False, parts: Sequence[str] = PARTS) -> Dict[str, object]:
    """Run ``parts``; the others keep their last results (``bench/results/masks.json``)."""
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    previous = RESULTS_DIR / "masks.json"
    result: Dict[str, object] = {"measured_on": {}}
    if set(parts) != set(PARTS) and previous.exists():
        last = json.loads(previous.read_text())
        kept = [part for part in PARTS if part in last and part not in parts]
        result = {part: last[part] for part in kept}
        result["measured_on"] = {part: last.get("measured_on", {}).get(part, last["machine"]) for part in kept}
    for part in parts:
        result[part] = _run_part(part, quick)
        result["measured_on"][part] = machine_info()
    write_result("masks", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS, help="parts to run")
    parser.add_argument("--ranking-child", help=argparse.SUPPRESS)
    parser.add_argument("--weights", type=int, default=100_000_000, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ranking_child:
        print(json.dumps(ranking_child(args.ranking_child, args.weights, args.repeats)))
    else:
        print(json.dumps(main(args.quick, args.parts), indent=2))
