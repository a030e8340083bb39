"""Pruning methods driven from ESPnet's training loop: IMP, LTH, LAP, adaptive masking,
ASR Pathways and Dynamic ASR Pathways (SPEC §4). Configure with ``pruning_conf`` (see
:mod:`espnet_pathways.pruning.config`)."""

from espnet_pathways.pruning.config import METHODS, PruningConfig, PruningConfigError
from espnet_pathways.pruning.engine import ENGINE_ATTR, PruningEngine, attach_pruning, rank_within

__all__ = ["METHODS", "ENGINE_ATTR", "PruningConfig", "PruningConfigError", "PruningEngine", "attach_pruning", "rank_within"]
