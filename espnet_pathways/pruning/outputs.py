"""What a pruning run leaves in its experiment dir.

``<exp>/pruning/{sparsity.md,stats.json}``, the plots
``<exp>/pruning/{layer_sparsity,mask_overlap,sparsity_schedule}.png``, the pathways over training
drawn from the mask history the engine recorded (``<exp>/pruning/mask_history.pwh`` ->
``pathway_history.json``, ``pathway_iou.png``, ``pathway_sharing.png``), every n-best averaged
checkpoint re-masked so that it satisfies the final masks exactly (ESPnet averages checkpoints from
different points of the schedule; the average of pruned weights is not zero), and ``<exp>/masks.pwm``
(final masks). ``masks.pwm`` is removed first and written last, so its presence marks finished
outputs: a run killed in between leaves none, never one next to an un-masked averaged model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, List, Tuple

import torch

from espnet_pathways.masks import MaskSet
from espnet_pathways.masks.history import HISTORY_FILE, MaskHistory
from espnet_pathways.masks.layout import count_params, state_key
from espnet_pathways.masks.report import (
    HISTORY_REPORT_FILES, mask_stats, overlap_table, plot_layer_sparsity, plot_overlap, pyplot, save_png,
    sparsity_table, write_history_report,
)
from espnet_pathways.utils.fileio import atomic_path, atomic_write_text, remove_stale_tmp

__all__ = [
    "MASKS_FILE", "REPORT_DIR", "HISTORY_FILE", "write_pruning_outputs", "remask_checkpoint", "schedule_trace",
    "plot_schedule",
]

MASKS_FILE = "masks.pwm"
REPORT_DIR = "pruning"
REPORT_FILES = {  # key of write_pruning_outputs' result -> file name in REPORT_DIR
    "sparsity": "sparsity.md",
    "stats": "stats.json",
    "layer_sparsity": "layer_sparsity.png",
    "overlap": "mask_overlap.png",
    "schedule": "sparsity_schedule.png",
}


@torch.no_grad()
def remask_checkpoint(path: Path, maskset: MaskSet) -> None:
    """Rewrite an ESPnet model file so that its masks are ``maskset`` and pruned weights are 0."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    union = maskset.union()
    for name, keep in union.items():
        if name not in state:
            raise KeyError(f"{path}: no parameter {name!r} to re-mask")
        state[name] = state[name] * keep.to(state[name].dtype)
    for lang in maskset.languages:
        for name in maskset.names:
            key = state_key(lang, name)
            if key in state:
                state[key] = maskset[lang][name].clone()
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def schedule_trace(engine) -> List[Tuple[int, float, str]]:
    """(step, sparsity, kind) of every event the run's configuration fires up to its last step.

    Dynamic ASR Pathways re-ranks each language after n steps on its own batches, at steps that
    depend on the batch order: its trace has no ``adapt`` entries.
    """
    conf, schedule = engine.config, engine.schedule
    last_step = int(engine.step)
    trace: List[Tuple[int, float, str]] = []
    if schedule is None:
        return trace
    for k, (step, sparsity) in enumerate(schedule.events()):
        if step <= last_step:
            trace.append((step, sparsity, "prune"))
    if conf.adaptive:
        events = {s for s, _, _ in trace}
        if not conf.spec.adapts_per_language:
            for step in range(conf.start_step + conf.adapt_interval, min(last_step + 1, conf.hard_from()), conf.adapt_interval):
                if step not in events:
                    trace.append((step, schedule.sparsity_at(step), "adapt"))
        if conf.hard_from() <= last_step:
            trace.append((conf.hard_from(), schedule.sparsity_at(conf.hard_from()), "freeze"))
    return sorted(trace)


def plot_schedule(engine, path: Path) -> Path:
    """Sparsity over optimizer steps, with pruning, adaptation and freeze events marked (PNG)."""
    plt = pyplot()
    trace = schedule_trace(engine)
    last = max(int(engine.step), 1)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    steps = [0] + [s for s, _, k in trace if k == "prune"] + [last]
    values = [0.0] + [v for _, v, k in trace if k == "prune"]
    values.append(values[-1])
    ax.step(steps, values, where="post", label="sparsity")
    for kind, marker in (("prune", "o"), ("adapt", "|"), ("freeze", "s")):
        points = [(s, v) for s, v, k in trace if k == kind]
        if points:
            ax.plot(*zip(*points), marker, linestyle="none", label=kind)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("sparsity")
    ax.set_ylim(0, 1)
    ax.set_title(f"{engine.config.method}: sparsity over training")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, plt, path)


def _averaged_checkpoints(exp_dir: Path) -> List[Path]:
    """ESPnet's n-best averaged model files in ``exp_dir`` (not the symlinks pointing at them)."""
    return [p for p in sorted(exp_dir.glob("*ave*.pth")) if p.is_file() and not p.is_symlink()]


def _write_report(maskset: MaskSet, engine, total: int, report_dir: Path) -> Dict[str, Path]:
    """The sparsity table, the stats and the plots (keys of :data:`REPORT_FILES`)."""
    files = {key: report_dir / name for key, name in REPORT_FILES.items()}
    table = sparsity_table(maskset, total)
    if len(maskset.languages) > 1:
        table += "\n\nOverlap |a∩b| / |a∪b|:\n\n" + overlap_table(maskset)
    atomic_write_text(files["sparsity"], f"# {engine.config.method}: final masks\n\n{table}\n")
    stats = mask_stats(maskset, total)
    stats["schedule"] = [{"step": s, "sparsity": v, "kind": k} for s, v, k in schedule_trace(engine)]
    stats["steps"] = int(engine.step)
    atomic_write_text(files["stats"], json.dumps(stats, indent=2) + "\n")
    written = {"layer_sparsity": plot_layer_sparsity(maskset, files["layer_sparsity"])}
    if len(maskset.languages) > 1:
        written["overlap"] = plot_overlap(maskset, files["overlap"])
    if engine.schedule is not None:
        written["schedule"] = plot_schedule(engine, files["schedule"])
    history = report_dir / HISTORY_FILE
    if history.is_file():  # recorded by the engine (PruningEngine.record_history)
        try:
            written.update(write_history_report(MaskHistory(history), report_dir))
        except ValueError as e:  # MaskFileError too: a report, not the run's result, so the run still finishes
            logging.warning("pathways over training not drawn: %s", e)
    return written


def write_pruning_outputs(model: torch.nn.Module, engine, exp_dir: Path) -> Dict[str, Path]:
    """Write report, plots and re-masked averaged checkpoints into ``exp_dir``, then ``masks.pwm``
    (its presence marks finished outputs); first remove what a killed run of this left."""
    exp_dir = Path(exp_dir)
    report_dir = exp_dir / REPORT_DIR
    masks_file = exp_dir / MASKS_FILE
    masks_file.unlink(missing_ok=True)  # not finished until it is written again
    averaged = _averaged_checkpoints(exp_dir)
    remove_stale_tmp(exp_dir, [MASKS_FILE, *(p.name for p in averaged)])
    remove_stale_tmp(report_dir, [*REPORT_FILES.values(), *HISTORY_REPORT_FILES.values()])
    maskset = model.pathway_masks.maskset()
    total = count_params(dict(model.named_parameters()))
    written = _write_report(maskset, engine, total, report_dir)
    for path in averaged:
        remask_checkpoint(path, maskset)
        logging.info("re-masked %s with the final masks", path)
    written["masks"] = maskset.save(masks_file, extra={"step": int(engine.step)})
    return written
