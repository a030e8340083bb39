"""Reports on a mask set: per-layer sparsity tables, JSON statistics and PNG plots."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Dict, Optional, Union

from espnet_pathways.masks.maskset import MaskSet
from espnet_pathways.utils.fileio import atomic_path

__all__ = ["mask_stats", "sparsity_table", "overlap_table", "plot_layer_sparsity", "plot_overlap", "pyplot", "save_png"]


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
