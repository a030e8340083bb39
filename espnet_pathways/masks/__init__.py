"""Pathway masks: per-language weight masks that plug into any ``torch.nn.Module``.

Public API::

    from espnet_pathways.masks import MaskSet, attach, magnitude_masks, prunable_parameters

    params = prunable_parameters(model)                      # {name: Parameter}, the default prunable set P
    keep = magnitude_masks(params, 0.7, scope="global")      # {name: BoolTensor}
    masks = MaskSet({"en": keep, "fr": keep_fr})
    handle = attach(model, masks, mode="hard", lang_list=["en", "fr"])
    handle.activate("fr")                                    # or model(..., lang=ids)
    masks.save("exp/masks.pwm"); MaskSet.load("exp/masks.pwm")
"""

from espnet_pathways.masks.attach import MODES, PassThrough, PathwayHandle, attach
from espnet_pathways.masks.layout import ATTR, SHARED
from espnet_pathways.masks.maskset import MaskFileError, MaskMismatchError, MaskSet
from espnet_pathways.masks.prunable import PrunableSetError, model_fingerprint, prunable_parameters
from espnet_pathways.masks.ranking import check_sparsity, keep_count, magnitude_masks, rank_within
from espnet_pathways.masks.schedules import (
    SCHEDULES,
    SparsitySchedule,
    constant_sparsity,
    cubic_sparsity,
    geometric_sparsity,
)

__all__ = [
    "ATTR",
    "MODES",
    "SHARED",
    "SCHEDULES",
    "MaskFileError",
    "MaskMismatchError",
    "MaskSet",
    "PassThrough",
    "PathwayHandle",
    "PrunableSetError",
    "SparsitySchedule",
    "attach",
    "check_sparsity",
    "constant_sparsity",
    "cubic_sparsity",
    "geometric_sparsity",
    "keep_count",
    "magnitude_masks",
    "model_fingerprint",
    "prunable_parameters",
    "rank_within",
]
