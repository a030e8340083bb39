"""Reports on a mask set: per-layer sparsity tables, JSON statistics and PNG plots; the pathways
over training from a mask history (:mod:`espnet_pathways.masks.history`)."""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np

from espnet_pathways.masks.history import MaskHistory
from espnet_pathways.masks.maskset import MaskSet
from espnet_pathways.utils.fileio import atomic_path, atomic_write_text

__all__ = [
    "HISTORY_REPORT_FILES", "mask_stats", "sparsity_table", "overlap_table", "plot_layer_sparsity", "plot_overlap",
    "history_trajectory", "plot_pathway_iou", "plot_pathway_sharing", "write_history_report", "pyplot", "save_png",
]

HISTORY_REPORT_FILES = {  # key of write_history_report's result -> file name
    "trajectory": "pathway_history.json",
    "iou": "pathway_iou.png",
    "sharing": "pathway_sharing.png",
}


def mask_stats(maskset: MaskSet, total_params: Optional[int] = None) -> Dict[str, object]:
    """Everything the reports show, as plain data (JSON-serialisable)."""
    langs, overlap = maskset.overlap()
    return {
        "languages": list(langs),
        "method": maskset.method,
        "fingerprint": maskset.fingerprint,
        "num_prunable": maskset.num_prunable,
        "total_params": total_params,
        "sparsity": {l: maskset.sparsity(l) for l in langs},
        "sparsity_all_params": (
            {l: maskset.sparsity(l, total_params) for l in langs} if total_params else None
        ),
        "union_sparsity": 1.0 - sum(int(m.sum()) for m in maskset.union().values()) / maskset.num_prunable,
        "tensors": {
            name: {
                "shape": list(shape),
                "sparsity": {l: maskset.tensor_sparsity(l)[name] for l in langs},
            }
            for name, shape in maskset.shapes.items()
        },
        "overlap": overlap.tolist(),
    }


def sparsity_table(maskset: MaskSet, total_params: Optional[int] = None) -> str:
    """Markdown table: one row per tensor, one sparsity column per language, totals last."""
    langs = maskset.languages
    per_lang = {l: maskset.tensor_sparsity(l) for l in langs}
    lines = [
        "| tensor | shape | " + " | ".join(langs) + " |",
        "|---|---|" + "---:|" * len(langs),
    ]
    for name, shape in maskset.shapes.items():
        cells = " | ".join(f"{per_lang[l][name]:.3f}" for l in langs)
        lines.append(f"| {name} | {'x'.join(map(str, shape))} | {cells} |")
    total = " | ".join(f"**{maskset.sparsity(l):.3f}**" for l in langs)
    lines.append(f"| **prunable ({maskset.num_prunable} weights)** | | {total} |")
    if total_params:
        over_all = " | ".join(f"{maskset.sparsity(l, total_params):.3f}" for l in langs)
        lines.append(f"| all parameters ({total_params}) | | {over_all} |")
    return "\n".join(lines)


def overlap_table(maskset: MaskSet) -> str:
    """Markdown matrix of |m_a ∩ m_b| / |m_a ∪ m_b|."""
    langs, matrix = maskset.overlap()
    lines = ["| | " + " | ".join(langs) + " |", "|---|" + "---:|" * len(langs)]
    for i, a in enumerate(langs):
        lines.append(f"| {a} | " + " | ".join(f"{float(v):.3f}" for v in matrix[i]) + " |")
    return "\n".join(lines)


def pyplot():
    """matplotlib.pyplot with the headless Agg backend (imported on first use)."""
    os.environ.setdefault("MPLCONFIGDIR", tempfile.gettempdir())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_layer_sparsity(maskset: MaskSet, path: Union[str, Path]) -> Path:
    """Grouped bars: sparsity of every prunable tensor, one colour per language (PNG)."""
    plt = pyplot()
    names = list(maskset.names)
    langs = maskset.languages
    width = 0.8 / len(langs)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(names) + 2), 4.5))
    for j, lang in enumerate(langs):
        sparsity = maskset.tensor_sparsity(lang)
        ax.bar([i + j * width for i in range(len(names))], [sparsity[n] for n in names], width, label=lang)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))])
    ax.set_xticklabels([n.rsplit(".", 1)[0] for n in names], rotation=90, fontsize=6)
    ax.set_ylim(0, 1)
    ax.set_ylabel("sparsity")
    ax.set_title("per-layer sparsity by language")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, plt, path)


def plot_overlap(maskset: MaskSet, path: Union[str, Path]) -> Path:
    """Heat map of the language-overlap matrix (PNG)."""
    plt = pyplot()
    langs, matrix = maskset.overlap()
    fig, ax = plt.subplots(figsize=(1.2 * len(langs) + 2, 1.2 * len(langs) + 1.5))
    image = ax.imshow(matrix.numpy(), vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(langs)))
    ax.set_xticklabels(langs)
    ax.set_yticks(range(len(langs)))
    ax.set_yticklabels(langs)
    for i in range(len(langs)):
        for j in range(len(langs)):
            ax.text(j, i, f"{float(matrix[i, j]):.2f}", ha="center", va="center", color="w", fontsize=8)
    ax.set_title("mask overlap |a∩b| / |a∪b|")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return save_png(fig, plt, path)


def save_png(fig, plt, path: Union[str, Path]) -> Path:
    """Write ``fig`` to ``path`` (PNG) atomically and close it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path


def _fraction(part: int, whole: int) -> Optional[float]:
    return part / whole if whole else None


def history_trajectory(history: MaskHistory) -> Dict[str, object]:
    """The pathways after every recorded event, as plain data (JSON-serialisable, what the plots show).

    Per event: each language's sparsity, the IoU |a∩b| / |a∪b| of every language pair (key ``"a/b"``),
    and per prunable tensor (layer) the fraction of its kept weights (kept by any language) that every
    language keeps (``shared``) and that exactly one language keeps (``exclusive``); None for a layer
    that no language keeps any weight of.
    """
    langs, names = history.languages, history.names
    sizes = [(int(np.prod(s)) + 7) // 8 for s in history.shapes.values()]
    starts = np.cumsum([0] + sizes[:-1])
    total = sum(int(np.prod(s)) for s in history.shapes.values())
    pairs = list(itertools.combinations(langs, 2))

    def per_layer(bits: np.ndarray) -> np.ndarray:  # kept weights per tensor
        return np.add.reduceat(np.bitwise_count(bits), starts, dtype=np.int64)

    out: Dict[str, object] = {
        "history": str(history.path), "method": history.method, "languages": list(langs), "layers": list(names),
        "events": [], "steps": [], "sparsity": {l: [] for l in langs}, "iou": {f"{a}/{b}": [] for a, b in pairs},
        "shared": {n: [] for n in names}, "exclusive": {n: [] for n in names},
    }
    for record, packed in history.packed_states():
        out["events"].append({"step": record.step, "kind": record.kind, "languages": list(record.languages),
                              "changed": list(record.changed), "digest": record.digest})
        out["steps"].append(record.step)
        for lang in langs:
            out["sparsity"][lang].append(1.0 - int(np.bitwise_count(packed[lang]).sum(dtype=np.int64)) / total)
        for a, b in pairs:
            inter = int(np.bitwise_count(packed[a] & packed[b]).sum(dtype=np.int64))
            union = int(np.bitwise_count(packed[a] | packed[b]).sum(dtype=np.int64))
            out["iou"][f"{a}/{b}"].append(inter / union if union else 1.0)
        ones, twos, every = np.zeros_like(packed[langs[0]]), np.zeros_like(packed[langs[0]]), packed[langs[0]]
        for lang in langs:
            twos |= ones & packed[lang]
            ones |= packed[lang]
            every = every & packed[lang]
        union, shared, single = per_layer(ones), per_layer(every), per_layer(ones & ~twos)
        for i, name in enumerate(names):
            out["shared"][name].append(_fraction(int(shared[i]), int(union[i])))
            out["exclusive"][name].append(_fraction(int(single[i]), int(union[i])))
    return out


def plot_pathway_iou(trajectory: Dict[str, object], path: Union[str, Path]) -> Path:
    """IoU of every language pair (when there are several) and each language's sparsity over
    optimizer steps, one point per recorded event (PNG)."""
    plt = pyplot()
    panels = [("iou", "IoU |a∩b| / |a∪b|")] if trajectory["iou"] else []
    panels.append(("sparsity", "sparsity"))
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 3 * len(panels)), sharex=True, squeeze=False)
    steps = trajectory["steps"]
    for ax, (key, label) in zip(axes[:, 0], panels):
        for name, values in trajectory[key].items():
            ax.step(steps, values, where="post", marker=".", markersize=3, label=name)
        ax.set_ylabel(label)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, ncol=3)
    axes[0, 0].set_title(f"{trajectory['method']}: pathways over training ({len(steps)} events)")
    axes[-1, 0].set_xlabel("optimizer step")
    fig.tight_layout()
    return save_png(fig, plt, path)


def plot_pathway_sharing(trajectory: Dict[str, object], path: Union[str, Path]) -> Path:
    """Heat maps over optimizer steps (x) and layers (y): the fraction of a layer's kept weights that
    every language keeps, and that exactly one language keeps (PNG). Each event's column lasts until
    the next event."""
    plt = pyplot()
    steps, layers = trajectory["steps"], trajectory["layers"]
    last = steps[-1] + max(1.0, (steps[-1] - steps[0]) / len(steps))
    edges = np.array(steps + [last], dtype=np.float64)
    fig, axes = plt.subplots(1, 2, figsize=(12, max(3.5, 0.18 * len(layers) + 1.5)), sharey=True)
    for ax, key in zip(axes, ("shared", "exclusive")):
        values = np.array([[np.nan if v is None else v for v in trajectory[key][n]] for n in layers])
        image = ax.pcolormesh(edges, np.arange(len(layers) + 1), values, vmin=0, vmax=1, cmap="viridis")
        ax.set_title(f"{key}: kept by {'every language' if key == 'shared' else 'exactly one language'}")
        ax.set_xlabel("optimizer step")
        fig.colorbar(image, ax=ax)
    axes[0].set_yticks(np.arange(len(layers)) + 0.5)
    axes[0].set_yticklabels([n[: -len(".weight")] if n.endswith(".weight") else n for n in layers], fontsize=6)
    axes[0].invert_yaxis()
    fig.tight_layout()
    return save_png(fig, plt, path)


def write_history_report(history: MaskHistory, out_dir: Union[str, Path]) -> Dict[str, Path]:
    """The pathways over training into ``out_dir`` (keys and names: :data:`HISTORY_REPORT_FILES`); the
    sharing heat maps need several languages. Returns the paths written."""
    if not history.records:
        raise ValueError(f"{history.path}: the mask history holds no record")
    files = {key: Path(out_dir) / name for key, name in HISTORY_REPORT_FILES.items()}
    trajectory = history_trajectory(history)
    atomic_write_text(files["trajectory"], json.dumps(trajectory, indent=1) + "\n")
    written: Dict[str, Path] = {"trajectory": files["trajectory"], "iou": plot_pathway_iou(trajectory, files["iou"])}
    if len(history.languages) > 1:
        written["sharing"] = plot_pathway_sharing(trajectory, files["sharing"])
    return written
