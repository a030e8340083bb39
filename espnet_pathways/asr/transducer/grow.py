"""Growing a trained transducer's vocabulary: new token rows, existing rows kept exactly.

Dimension legend: V: old vocabulary, V': grown vocabulary, J: joint size, E: embedding size.

A grown token list keeps every token but ``<sos/eos>`` at its id and inserts the new tokens before
``<sos/eos>`` (:func:`espnet_pathways.text.token_list.extend_pieces`). :func:`row_map` says where each
old row goes; :func:`grow_rows` moves the rows of one tensor there and fills the new rows;
:func:`grow_vocab_state` does it for every :data:`VOCAB_TENSORS` entry of a checkpoint, the new rows
initialised as the modules initialise themselves (``nn.Linear``: uniform ±1/sqrt(J) for weight and
bias; ``nn.Embedding``: N(0, 1)), from a seeded generator.
"""

from __future__ import annotations

import math
from typing import Dict, List, Mapping, Sequence

import torch

from espnet_pathways.asr.transducer.model import VOCAB_TENSORS

__all__ = ["row_map", "grow_rows", "grow_vocab_state", "VOCAB_TENSORS"]


def row_map(old_tokens: Sequence[str], new_tokens: Sequence[str], source: str = "token list") -> List[int]:
    """New id of each old token: ``old_tokens`` must all be in ``new_tokens``, at the same id but
    the last one (``<sos/eos>``), which stays last.

    Raises:
        ValueError: naming ``source`` and the first token that is missing or moved.
    """
    index = {tok: i for i, tok in enumerate(new_tokens)}
    out = []
    for i, tok in enumerate(old_tokens):
        if tok not in index:
            raise ValueError(f"{source}: token {tok!r} (id {i}) of the trained model is missing")
        expected = len(new_tokens) - 1 if i == len(old_tokens) - 1 else i
        if index[tok] != expected:
            raise ValueError(f"{source}: token {tok!r} has id {index[tok]}, the trained model's {i} (must stay {expected})")
        out.append(index[tok])
    return out


def grow_rows(old: torch.Tensor, rows: Sequence[int], size: int, fill: torch.Tensor) -> torch.Tensor:
    """A (size, ...) tensor with ``old[i]`` at row ``rows[i]`` and ``fill``'s rows, in order, at the others.

    Args:
        old (Tensor): (V, ...)
        rows: the new row of each old row (:func:`row_map`).
        size: V'.
        fill (Tensor): (V' - V, ...) values of the new rows.
    """
    if len(rows) != old.size(0) or fill.size(0) != size - old.size(0) or fill.shape[1:] != old.shape[1:]:
        raise ValueError(
            f"cannot grow a tensor of shape {tuple(old.shape)} to {size} rows with {len(rows)} row positions "
            f"and new rows of shape {tuple(fill.shape)}"
        )
    out = torch.empty((size, *old.shape[1:]), dtype=old.dtype, device=old.device)
    placed = torch.zeros(size, dtype=torch.bool)
    index = torch.tensor(list(rows), dtype=torch.long)
    placed[index] = True
    out[index.to(old.device)] = old
    out[~placed.to(old.device)] = fill.to(old.dtype)
    return out


def _new_rows(name: str, state: Mapping[str, torch.Tensor], count: int, gen: torch.Generator) -> torch.Tensor:
    """Fresh rows for tensor ``name`` of ``state`` as its module initialises them."""
    old = state[name]
    if name == "predictor.embed.weight":
        return torch.randn((count, *old.shape[1:]), generator=gen)
    weight = state[name.rpartition(".")[0] + ".weight"]  # a linear layer: bound 1/sqrt(fan-in) for both
    return (torch.rand((count, *old.shape[1:]), generator=gen) * 2 - 1) / math.sqrt(weight.size(1))


def grow_vocab_state(
    state: Mapping[str, torch.Tensor], old_tokens: Sequence[str], new_tokens: Sequence[str], seed: int = 0,
    source: str = "token list",
) -> Dict[str, torch.Tensor]:
    """A copy of the model ``state`` with every :data:`VOCAB_TENSORS` entry grown to ``new_tokens``.

    Raises:
        ValueError: the token lists do not fit (:func:`row_map`), or a tensor's rows are not the old
            vocabulary (naming the tensor).
    """
    rows = row_map(old_tokens, new_tokens, source)
    size, count = len(new_tokens), len(new_tokens) - len(old_tokens)
    gen = torch.Generator().manual_seed(seed)
    out = dict(state)
    for name in VOCAB_TENSORS:
        if name not in state:
            continue
        old = state[name]
        if old.size(0) != len(old_tokens):
            raise ValueError(f"checkpoint tensor {name!r} has {old.size(0)} rows, the token list {len(old_tokens)} tokens")
        out[name] = grow_rows(old, rows, size, _new_rows(name, state, count, gen))
    return out
