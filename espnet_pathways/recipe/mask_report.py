"""Pathway sparsity of a decoded checkpoint, read from the masks it stores (for ``RESULTS.md``).

A checkpoint of a pruned model holds its masks as ``pathway_masks.masks.<lang>.*`` buffers
(:meth:`espnet_pathways.masks.MaskSet.from_state_dict`). Decoding language ``l`` uses ``l``'s mask,
or the shared mask ``"*"`` (LAP); the multilingual model is the union of its masks. Sparsity is
given over the prunable set P (the masks' tensors) and over all parameters (zeros of P counted
against every weight of the checkpoint, as :func:`espnet_pathways.recipe.stages.results.checkpoint_stats`
counts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Mapping, Optional

import torch

from espnet_pathways.masks import MaskSet
from espnet_pathways.masks.layout import mask_key

__all__ = ["PathwaySparsity", "load_model_state", "checkpoint_masks", "pathway_sparsity", "percent", "pathway_lines"]


@dataclass(frozen=True)
class PathwaySparsity:
    """Sparsity of one pathway (or of the union) of a checkpoint."""

    name: str  # the language, or "union"
    mask: str  # the mask key used ("fr", "*", or the languages of the union)
    kept: int
    prunable: int
    total_params: int

    @property
    def sparsity(self) -> float:
        """Over the prunable set."""
        return (self.prunable - self.kept) / self.prunable

    @property
    def sparsity_all(self) -> float:
        """Over all parameters."""
        return (self.prunable - self.kept) / self.total_params


def percent(value: float) -> str:
    """The one format of sparsities in the results files (``70.00%``)."""
    return f"{100.0 * value:.2f}%"


def load_model_state(model_file: Path) -> Mapping[str, torch.Tensor]:
    """The state dict of an ESPnet model file (``*.pth``), with clear errors."""
    model_file = Path(model_file)
    if not model_file.is_file():
        raise FileNotFoundError(f"missing model file: {model_file}")
    state = torch.load(model_file, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{model_file}: expected a state dict, got {type(state).__name__}")
    return state


def checkpoint_masks(model_file: Path) -> Optional[MaskSet]:
    """The masks stored in an ESPnet model file (None for a dense model)."""
    return MaskSet.from_state_dict(load_model_state(model_file))


def pathway_sparsity(masks: MaskSet, langs: Iterable[str], total_params: int) -> List[PathwaySparsity]:
    """One entry per language of ``langs`` that has a mask, then the union of all masks."""
    rows: List[PathwaySparsity] = []
    prunable = masks.num_prunable
    if total_params < prunable:
        raise ValueError(f"total parameters ({total_params}) fewer than prunable weights ({prunable})")
    for lang in dict.fromkeys(langs):
        key = mask_key(masks, lang)
        if key is not None:
            rows.append(PathwaySparsity(lang, key, masks.kept(key), prunable, total_params))
    union = sum(int(m.sum()) for m in masks.union().values())
    rows.append(PathwaySparsity("union", "+".join(masks.languages), union, prunable, total_params))
    return rows


def pathway_lines(model_file: Path, langs: Iterable[str], total_params: int) -> List[str]:
    """Markdown lines for a ``RESULTS.md`` section (none for a dense checkpoint)."""
    masks = checkpoint_masks(model_file)
    if masks is None:
        return []
    rows = pathway_sparsity(masks, langs, total_params)
    lines = [
        "",
        f"### Pathway sparsity (masks of the checkpoint: {', '.join(masks.languages)}; "
        f"{masks.num_prunable} prunable of {total_params} parameters)",
        "",
        "|pathway|mask|kept|sparsity (prunable)|sparsity (all params)|",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        name = "**union** (model)" if row.name == "union" else row.name
        lines.append(f"|{name}|{row.mask}|{row.kept}|{percent(row.sparsity)}|{percent(row.sparsity_all)}|")
    return lines

