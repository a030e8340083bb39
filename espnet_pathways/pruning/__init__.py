"""Pruning methods driven from ESPnet's training loop: IMP, LTH, LAP, adaptive masking,
ASR Pathways and Dynamic ASR Pathways. Configure with ``pruning_conf`` (see
:mod:`espnet_pathways.pruning.config`). The method records (:mod:`espnet_pathways.pruning.methods`)
import without torch; the names needing it are imported on first use."""

from importlib import import_module
from typing import Any

from espnet_pathways.pruning.methods import METHODS, PruningConfigError

_LAZY = {"PruningConfig": ".config", "ENGINE_ATTR": ".engine", "PruningEngine": ".engine", "attach_pruning": ".engine",
         "rank_within": "espnet_pathways.masks"}

__all__ = ["METHODS", "ENGINE_ATTR", "PruningConfig", "PruningConfigError", "PruningEngine", "attach_pruning", "rank_within"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_LAZY[name], __name__), name)
