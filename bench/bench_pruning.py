"""Benchmarks of the pruning engine (pruning issue).

1. ``runs``: one full pruning run per method on the demo model (random batches of 3 s audio): steps
   to reach the target, wall time, median time per step against dense training of the same model.
2. ``events``: cost of each event type (re-rank at a pruning event, adaptation re-rank, LTH rewind,
   switching the pathway) on the demo and the paper-size model, as a fraction of a training step
   of that model, and what the events add to a whole run at given intervals T (pruning) and
   n (adaptation): ``(c_prune / T + c_adapt / n + c_rewind / T) / c_step``.

Usage: ``python -m bench.bench_pruning [--quick]`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional

import torch

from bench.bench_streaming import CONF, CONFIGS, build_model
from bench.common import write_result
from espnet_pathways.masks import MaskSet, magnitude_masks, prunable_parameters
from espnet_pathways.pruning import PruningConfig, attach_pruning

SCHEDULE = dict(target_sparsity=0.7, schedule="cubic", initial_sparsity=0.1, num_events=3, prune_interval=10)
INTERVALS = {"demo recipe (T=50, n=25)": (50, 25), "paper scale (T=2000, n=500; assumed)": (2000, 500)}


def _methods(workdir: Path, model: torch.nn.Module) -> Dict[str, Optional[dict]]:
    theta0 = workdir / "theta0.pth"
    torch.save(model.state_dict(), theta0)
    params = prunable_parameters(model)
    gen = torch.Generator().manual_seed(0)
    paths = []
    for lang in ("en", "fr"):
        scores = {n: torch.rand(p.shape, generator=gen) for n, p in params.items()}
        paths.append(str(MaskSet({lang: magnitude_masks(scores, 0.5)}).save(workdir / f"{lang}.pwm")))
    return {
        "dense": None,
        "imp": dict(method="imp", **SCHEDULE),
        "lth": dict(method="lth", rewind_to=str(theta0), **SCHEDULE),
        "lap": dict(method="lap", **SCHEDULE),
        "adaptive_imp": dict(method="adaptive_imp", adapt_interval=5, **SCHEDULE),
        "adaptive_lth": dict(method="adaptive_lth", adapt_interval=5, rewind_to=str(theta0), **SCHEDULE),
        "pathways": dict(method="pathways", init_masks=paths),
        "dynamic_pathways": dict(method="dynamic_pathways", init_masks=paths, adapt_interval=5,
                                 **{**SCHEDULE, "initial_sparsity": 0.5}),
    }


def _batch(step: int, batch_size: int, vocab: int, seconds: float = 3.0):
    gen = torch.Generator().manual_seed(step)
    samples = int(seconds * 16000)
    return dict(
        speech=0.1 * torch.randn(batch_size, samples, generator=gen),
        speech_lengths=torch.full((batch_size,), samples),
        text=torch.randint(2, vocab - 1, (batch_size, 20), generator=gen),
        text_lengths=torch.full((batch_size,), 20),
        lang=torch.full((batch_size, 1), step % 2),
    )


def _fresh(name: str, vocab: int, workdir: Path, state: dict, pruning: Optional[dict]):
    model = build_model(CONF / CONFIGS[name][0], vocab, workdir)
    model.load_state_dict(state)
    engine = None
    if pruning is not None:
        engine = attach_pruning(model, PruningConfig.from_dict(pruning), ["en", "fr"])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    if engine is not None:
        engine.bind(optimizer)
    model.train()
    return model, engine, optimizer


def _train_step(model, optimizer, batch) -> float:
    start = time.perf_counter()
    loss, _, _ = model(**batch)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def bench_runs(steps: int, batch_size: int) -> Dict[str, object]:
    vocab = CONFIGS["demo"][1]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        torch.manual_seed(0)
        base = build_model(CONF / CONFIGS["demo"][0], vocab, workdir)
        state = base.state_dict()
        results = {}
        for method, pruning in _methods(workdir, base).items():
            model, engine, optimizer = _fresh("demo", vocab, workdir, state, pruning)
            times = []
            start = time.perf_counter()
            for step in range(steps):
                times.append(_train_step(model, optimizer, _batch(step, batch_size, vocab)))
            total = time.perf_counter() - start
            entry = {"steps": steps, "wall_s": total, "median_step_s": statistics.median(times)}
            if engine is not None:
                entry["final_sparsity"] = {l: round(s, 4) for l, s in engine._sparsity.items()}
                entry["target_reached_at_step"] = engine.schedule.end if engine.schedule else 0
            results[method] = entry
        dense = results["dense"]["median_step_s"]
        for entry in results.values():
            entry["median_step_vs_dense"] = entry["median_step_s"] / dense
        return {"model": "demo", "batch": f"{batch_size} x 3 s", "methods": results}


def _timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_events(name: str, batch_size: int, repeats: int) -> Dict[str, object]:
    vocab = CONFIGS[name][1]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        torch.manual_seed(0)
        base = build_model(CONF / CONFIGS[name][0], vocab, workdir)
        state = base.state_dict()
        methods = _methods(workdir, base)
        del base
        model, engine, optimizer = _fresh(name, vocab, workdir, state, methods["adaptive_lth"])
        _train_step(model, optimizer, _batch(0, batch_size, vocab))  # fires the step-0 event
        step_s = _timed(lambda: _train_step(model, optimizer, _batch(1, batch_size, vocab)), repeats)
        costs = {
            "prune_event_s": _timed(lambda: engine._prune_event(1, int(engine.step)), repeats),
            "adapt_event_s": _timed(lambda: engine._adapt(int(engine.step), 0), repeats),
            "rewind_s": _timed(engine._rewind, repeats),
        }
        del model, engine, optimizer
        model, engine, optimizer = _fresh(name, vocab, workdir, state, methods["pathways"])
        _train_step(model, optimizer, _batch(0, batch_size, vocab))
        handle = model.pathway_masks
        languages = iter(["en", "fr"] * repeats)
        costs["switch_pathway_s"] = _timed(lambda: handle.activate(next(languages)), repeats)
        # the rewind cost is part of the prune event for LTH: report it separately, count it once
        costs["prune_event_s"] -= costs["rewind_s"]
        fractions = {k.replace("_s", "_vs_step"): v / step_s for k, v in costs.items()}
        added = {
            label: (costs["prune_event_s"] / T + costs["adapt_event_s"] / n + costs["rewind_s"] / T) / step_s
            for label, (T, n) in INTERVALS.items()
        }
        return {
            "model": name,
            "prunable_weights": sum(p.numel() for p in prunable_parameters(model).values()),
            "batch": f"{batch_size} x 3 s",
            "train_step_s": step_s,
            **costs,
            **fractions,
            "events_add_to_training_time": added,
            "goal": "events add <= 2% to total training time at the paper's intervals",
        }


def main(quick: bool = False) -> Dict[str, object]:
    result = {
        "runs": bench_runs(steps=20 if quick else 40, batch_size=4 if quick else 8),
        "events": [bench_events("demo", 8, 3 if quick else 5), bench_events("paper", 2, 2 if quick else 3)],
    }
    write_result("pruning", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(main(parser.parse_args().quick), indent=2))
