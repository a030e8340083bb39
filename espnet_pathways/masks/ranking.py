"""Magnitude ranking in linear time: keep the largest |w| of a candidate set.

The k-th largest magnitude is found by a two-level radix selection on the IEEE-754 bit patterns
of |w| (for non-negative floats the int32 view is ordered like the value): a histogram of the top
16 bits over all candidates, then of the low 15 bits over the candidates sharing the chosen top
bits. Each level is one streaming pass; a last pass writes the masks. Tensors are streamed in chunks, so no concatenated copy of the weights is made
and the extra memory beyond the returned boolean masks is a few chunk-sized buffers.

Ties at the threshold are broken deterministically: among equal magnitudes, the earlier tensor (in
the mapping's order) and the lower flat index are kept first.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Mapping, Optional, Tuple

import torch

__all__ = ["magnitude_masks", "rank_within", "keep_count", "check_sparsity"]

_CHUNK = 1 << 18
# Radix levels over the 31 value bits of |w|: (shift, bins) from the most significant bits down.
_LEVELS = ((15, 1 << 16), (0, 1 << 15))
_INF_BITS = 0x7F800000  # bit pattern of +inf; anything above is NaN


def check_sparsity(sparsity: float, key: str = "sparsity") -> float:
    """Return ``sparsity`` as float if it lies in [0, 1), else raise ``ValueError`` naming ``key``."""
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number in [0, 1), got {sparsity!r}") from None
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{key} must lie in [0, 1), got {value}")
    return value


def keep_count(num_candidates: int, sparsity: float) -> int:
    """Number of weights kept out of ``num_candidates``: ``round((1 - s) * |C|)``."""
    return int(round((1.0 - sparsity) * num_candidates))


def _chunks(
    tensor: torch.Tensor, candidates: Optional[torch.Tensor]
) -> Iterator[Tuple[slice, torch.Tensor]]:
    """Yield (flat slice, int32 bit patterns of |w|) per chunk; non-candidates are -1."""
    flat = tensor.detach().reshape(-1)
    cand = None if candidates is None else candidates.reshape(-1)
    for start in range(0, flat.numel(), _CHUNK):
        sl = slice(start, min(start + _CHUNK, flat.numel()))
        part = flat[sl]
        if part.dtype != torch.float32:
            part = part.float()
        bits = part.abs().view(torch.int32)
        if cand is not None:
            bits = bits.masked_fill(~cand[sl], -1)
        yield sl, bits


def _find_bin(hist: torch.Tensor, need: int) -> Tuple[int, int]:
    """Highest bin b such that the count at or above b reaches ``need``; returns (b, count above b)."""
    above = torch.cumsum(hist.flip(0), 0).flip(0)  # above[b] = count in bins >= b
    b = int(torch.nonzero(above >= need).max())
    above_b = int(above[b + 1]) if b + 1 < hist.numel() else 0
    return b, above_b


def _select_threshold(
    tensors: List[torch.Tensor], candidates: List[Optional[torch.Tensor]], keep: int
) -> Tuple[int, int]:
    """Bit pattern T of the keep-th largest magnitude and how many entries equal to T to keep.

    Each level histograms the next group of bits of the candidates whose higher bits equal the
    prefix chosen so far (level 0 histograms all candidates; non-candidates are -1 and never match).
    """
    prefix, need = 0, keep
    for level, (shift, bins) in enumerate(_LEVELS):
        hist = torch.zeros(bins, dtype=torch.int64)
        higher = shift + bins.bit_length() - 1  # bits above this level
        for tensor, cand in zip(tensors, candidates):
            for _, bits in _chunks(tensor, cand):
                if level == 0:  # shift non-candidates (-1) into an extra bin 0, dropped below
                    hist += torch.bincount((bits >> shift).add_(1), minlength=bins + 1)[1:bins + 1]
                    continue
                digits = bits[(bits >> higher) == prefix]
                if digits.numel():
                    hist += torch.bincount((digits >> shift) & (bins - 1), minlength=bins)
        if level == 0 and int(hist[(_INF_BITS >> shift) + 1 :].sum()) > 0:
            raise ValueError("magnitude ranking: weights contain NaN")
        digit, above = _find_bin(hist, need)
        prefix = (prefix << (bins.bit_length() - 1)) | digit
        need -= above
    return prefix, need


def _masks_above(
    tensors: List[torch.Tensor],
    candidates: List[Optional[torch.Tensor]],
    threshold: int,
    ties_to_keep: int,
    outputs: List[torch.Tensor],
) -> List[torch.Tensor]:
    """Fill ``outputs``: |w| > threshold, plus the first ``ties_to_keep`` entries equal to it."""
    for tensor, cand, out in zip(tensors, candidates, outputs):
        out = out.view(-1)
        for sl, bits in _chunks(tensor, cand):
            torch.gt(bits, threshold, out=out[sl])
            if ties_to_keep > 0:
                ties = torch.nonzero(bits == threshold).squeeze(1)
                take = ties[:ties_to_keep] + sl.start
                out[take] = True
                ties_to_keep -= take.numel()
    return outputs


def _rank(
    tensors: List[torch.Tensor],
    candidates: List[Optional[torch.Tensor]],
    sparsity: float,
    outputs: List[torch.Tensor],
) -> List[torch.Tensor]:
    """Fill the boolean ``outputs`` (allocated up front, so that chunk buffers reuse one spot)."""
    num = sum(t.numel() if c is None else int(c.sum()) for t, c in zip(tensors, candidates))
    keep = keep_count(num, sparsity)
    if keep == 0 or keep == num:  # nothing or every candidate
        for out, cand in zip(outputs, candidates):
            if cand is None or keep == 0:
                out.fill_(keep > 0)
            else:
                out.copy_(cand)
        return outputs
    threshold, ties = _select_threshold(tensors, candidates, keep)
    return _masks_above(tensors, candidates, threshold, ties, outputs)


def magnitude_masks(
    tensors: Mapping[str, torch.Tensor],
    sparsity: float,
    scope: str = "global",
    candidates: Optional[Mapping[str, torch.Tensor]] = None,
) -> Dict[str, torch.Tensor]:
    """Keep the largest-magnitude weights: exactly ``round((1 - sparsity) * |C|)`` of them.

    Args:
        tensors: name → weight tensor (any float dtype, any shape; on CPU).
        sparsity: fraction to remove, in [0, 1).
        scope: ``"global"`` (one threshold over all tensors) or ``"layerwise"`` (the fraction is
            kept in each tensor separately).
        candidates: optional name → bool tensor of the same shape; only candidates are ranked and
            kept (|C| counts candidates only). Missing names mean "all candidates".

    Returns:
        name → bool mask (True = keep), same shapes as ``tensors``, in the same order.
    """
    sparsity = check_sparsity(sparsity)
    if scope not in ("global", "layerwise"):
        raise ValueError(f"scope must be 'global' or 'layerwise', got {scope!r}")
    if not tensors:
        raise ValueError("magnitude_masks: no tensors given")
    names = list(tensors)
    values = [tensors[n] for n in names]
    cands: List[Optional[torch.Tensor]] = []
    for name, value in zip(names, values):
        cand = None if candidates is None else candidates.get(name)
        if cand is not None:
            if tuple(cand.shape) != tuple(value.shape):
                raise ValueError(
                    f"candidates[{name!r}] has shape {tuple(cand.shape)}, "
                    f"the tensor has {tuple(value.shape)}"
                )
            cand = cand.bool()
        cands.append(cand)
    masks = [torch.empty(v.shape, dtype=torch.bool) for v in values]
    if scope == "global":
        _rank(values, cands, sparsity, masks)
    else:
        for value, cand, out in zip(values, cands, masks):
            _rank([value], [cand], sparsity, [out])
    return dict(zip(names, masks))


def rank_within(
    tensors: Mapping[str, torch.Tensor],
    sparsity: float,
    scope: str,
    candidates: Optional[Mapping[str, torch.Tensor]] = None,
) -> Dict[str, torch.Tensor]:
    """Keep the largest ``(1 - sparsity) * |P|`` weights, chosen among ``candidates`` only.

    Unlike :func:`magnitude_masks`, whose sparsity is relative to the candidates, the sparsity here
    is over all weights P (per tensor for ``layerwise``): this is how a pathway is re-ranked inside
    its region at the schedule's sparsity.
    """
    if candidates is None:
        return magnitude_masks(tensors, sparsity, scope)
    groups = [list(tensors)] if scope == "global" else [[n] for n in tensors]
    out: Dict[str, torch.Tensor] = {}
    for names in groups:
        total = sum(tensors[n].numel() for n in names)
        available = sum(int(candidates[n].sum()) for n in names)
        keep = min(keep_count(total, sparsity), available)
        if keep == 0:
            out.update({n: torch.zeros_like(candidates[n], dtype=torch.bool) for n in names})
            continue
        relative = 1.0 - keep / available
        out.update(
            magnitude_masks({n: tensors[n] for n in names}, relative, "global", {n: candidates[n] for n in names})
        )
    return {n: out[n] for n in tensors}
