"""Where pathway masks live in a model's checkpoint, and which mask a language uses.

The handle is the submodule ``model.pathway_masks`` (:data:`ATTR`); language ``l``'s mask of
parameter ``a.b.weight`` is the boolean buffer ``pathway_masks.masks.l.a__b__weight``. A language
without a mask of its own uses the shared mask ``"*"`` (:data:`SHARED`) when the set has one.
"""

from __future__ import annotations

from typing import Container, Mapping, Optional, Tuple

import torch

__all__ = ["ATTR", "SHARED", "buffer_name", "state_key", "parse_state_key", "mask_key", "count_params"]

ATTR = "pathway_masks"
SHARED = "*"
_MASKS = f"{ATTR}.masks."


def buffer_name(name: str) -> str:
    """Buffer name for a parameter name (buffer names cannot hold dots)."""
    return name.replace(".", "__")


def state_key(lang: str, name: str) -> str:
    """State-dict key of ``lang``'s mask of parameter ``name``."""
    return f"{_MASKS}{lang}.{buffer_name(name)}"


def parse_state_key(key: str) -> Optional[Tuple[str, str]]:
    """(language, parameter name) of a mask's state-dict key; None for any other key."""
    if not key.startswith(_MASKS):
        return None
    lang, _, buffer = key[len(_MASKS) :].partition(".")
    return lang, buffer.replace("__", ".")


def mask_key(languages: Container[str], lang: Optional[str]) -> Optional[str]:
    """The mask ``lang`` uses among the keys ``languages``: its own, else :data:`SHARED`, else None
    (``lang=None``: the shared one)."""
    if lang in languages:
        return lang
    return SHARED if SHARED in languages else None


def count_params(state: Mapping[str, torch.Tensor]) -> int:
    """Parameters in a state dict or ``dict(model.named_parameters())``: floating-point tensors but
    the pathway-mask buffers."""
    return sum(v.numel() for k, v in state.items() if v.is_floating_point() and not k.startswith(f"{ATTR}."))
