"""Which tensors of a model are prunable (the set P), chosen by parameter name.

The default set is every weight matrix of ``nn.Linear``, ``nn.Conv1d/2d/3d``, the input/hidden
matrices of recurrent layers and cells (``weight_ih_l*``, ``weight_hh_l*``) and the packed input projection of
``nn.MultiheadAttention``. Biases, normalisation layers and embeddings stay dense. ``include`` and
``exclude`` regular expressions (``re.search`` on the fully-qualified parameter name) refine it:
with ``include`` only matching names of the default set are kept, ``exclude`` removes names.
"""

from __future__ import annotations

import hashlib
import re
from typing import Dict, Iterable, Mapping, Optional, Sequence, Union

import torch
from torch import nn

__all__ = ["prunable_parameters", "model_fingerprint", "PrunableSetError"]

Patterns = Optional[Union[str, Sequence[str]]]

_RNN_WEIGHT = re.compile(r"^weight_(ih|hh)(_l\d+(_reverse)?)?$")


class PrunableSetError(ValueError):
    """The include/exclude patterns leave nothing to prune, or are not valid regexes."""


def _compile(patterns: Patterns, key: str) -> list:
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as e:
            raise PrunableSetError(f"{key}: invalid regular expression {pattern!r}: {e}") from e
    return compiled


def _default_prunable(module: nn.Module, local_name: str, param: nn.Parameter) -> bool:
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return local_name == "weight"
    if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        return bool(_RNN_WEIGHT.match(local_name))
    if isinstance(module, nn.MultiheadAttention):
        return local_name == "in_proj_weight"
    return False


def prunable_parameters(
    model: nn.Module, include: Patterns = None, exclude: Patterns = None
) -> Dict[str, nn.Parameter]:
    """Prunable parameters of ``model`` by fully-qualified name, in ``named_parameters`` order.

    Args:
        model: any module (an ESPnet model, torchaudio's Emformer or RNNT, ...).
        include: regex(es); if given, keep only default-prunable names matching one of them.
        exclude: regex(es); drop names matching one of them.

    Raises:
        PrunableSetError: if nothing is left, naming the patterns.
    """
    include_re = _compile(include, "include")
    exclude_re = _compile(exclude, "exclude")
    selected: Dict[str, nn.Parameter] = {}
    for module_name, module in model.named_modules():
        for local_name, param in module.named_parameters(recurse=False):
            name = f"{module_name}.{local_name}" if module_name else local_name
            if not _default_prunable(module, local_name, param):
                continue
            if include_re and not any(r.search(name) for r in include_re):
                continue
            if any(r.search(name) for r in exclude_re):
                continue
            selected[name] = param
    if not selected:
        raise PrunableSetError(
            f"no prunable tensor in {type(model).__name__} matches include={include!r} "
            f"exclude={exclude!r} (default set: Linear/Conv weights, RNN weight_ih/hh)"
        )
    order = {name: i for i, (name, _) in enumerate(model.named_parameters())}
    return dict(sorted(selected.items(), key=lambda kv: order.get(kv[0], len(order))))


def model_fingerprint(shapes: Union[Mapping[str, Sequence[int]], Iterable]) -> str:
    """A short hash of (name, shape) pairs: identifies an architecture's prunable set, not its weights.

    Args:
        shapes: ``{name: shape}`` or ``{name: tensor}``.
    """
    items = shapes.items() if isinstance(shapes, Mapping) else shapes
    digest = hashlib.sha256()
    for name, shape in items:
        if isinstance(shape, torch.Tensor):
            shape = shape.shape
        digest.update(f"{name}:{tuple(int(s) for s in shape)};".encode())
    return digest.hexdigest()[:16]
