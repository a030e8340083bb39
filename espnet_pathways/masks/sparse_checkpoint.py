"""Packed sparse checkpoints: a pruned model's state dict stored as kept values plus 1-bit masks.

Each *sparse* tensor (one named by the pathway masks) is stored as its support S, one bit per
weight, and the values of S, once; every other tensor is stored dense. S is the union of the masks
plus any non-zero weight, so a checkpoint with weights outside the masks (soft masks) loads back
exactly; ``-0.0`` outside S (``θ * mask`` of a negative θ) costs one more bit per weight outside S,
stored only for a tensor that has one, so that the round trip is bit for bit. Two uses:

- **one language** (``support=`` the language's mask, a state dict without mask buffers, e.g. an
  exported model): kept values + a 1-bit mask per masked tensor;
- **the whole multilingual model** (a state dict holding ``pathway_masks.*`` buffers): the values of
  the union of the pathways once, the union as one bit per weight, then each language's mask as one
  bit per *union* weight; the mask buffers are restored on load.

fp16 (``fp16=True``) stores every float32/float64 tensor's values as float16 (lossy; the masks and
the zeros stay exact); the file records each tensor's dtype and :func:`load_sparse` casts back.
Tensors are stored in the machine's byte order (little-endian on x86 and ARM).

File (the framing of mask files, :mod:`espnet_pathways.utils.framed_file`)::

    b"PWSPARS\\x01" | uint64 header length | uint32 header CRC32 | header (UTF-8 JSON) | payload

    payload: per tensor in header order: dense bytes | support bits + kept values [+ one bit per
             weight outside S: -0.0] | nothing (a mask buffer); then per language, per sparse
             tensor: one bit per kept weight

The header declares every tensor's shape, dtype and number of kept weights, so the payload size is
checked before anything is allocated.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch

from espnet_pathways.masks.layout import parse_state_key, state_key
from espnet_pathways.masks.maskset import MaskMismatchError, MaskSet
from espnet_pathways.utils.framed_file import read_framed_header, read_framed_payload, write_framed

__all__ = ["SparseCheckpoint", "SparseCheckpointError", "save_sparse", "load_sparse"]

_FORMAT_VERSION = 1
_MAGIC = b"PWSPARS" + bytes([_FORMAT_VERSION])
_WHAT = "sparse checkpoint"
_DENSE, _SPARSE, _MASK = "dense", "sparse", "mask"
_HALVED = (torch.float32, torch.float64)  # dtypes stored as float16 with fp16=True


class SparseCheckpointError(ValueError):
    """A sparse checkpoint file is truncated, corrupted or not one."""


class SparseCheckpoint(NamedTuple):
    """What :func:`load_sparse` returns: the state dict, the pathway masks it held (or None), the header."""

    state: Dict[str, torch.Tensor]
    masks: Optional[MaskSet]
    header: dict


def _raw(tensor: torch.Tensor) -> bytes:
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _bits(mask: torch.Tensor) -> bytes:
    return np.packbits(mask.reshape(-1).cpu().numpy(), bitorder="little").tobytes()


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}")
    return dtype


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _supports(
    state: Mapping[str, torch.Tensor], support: Optional[Mapping[str, torch.Tensor]], masks: Optional[MaskSet]
) -> Dict[str, torch.Tensor]:
    """S per sparse tensor: ``support`` ∪ the masks' union ∪ the non-zero weights."""
    if support is None and masks is None:
        raise ValueError("the state dict holds no pathway masks: give the support of the sparse tensors")
    out: Dict[str, torch.Tensor] = {}
    for source in (support or {}, masks.union() if masks is not None else {}):
        for name, keep in source.items():
            if name not in state:
                raise MaskMismatchError(f"the state dict has no tensor {name!r} for its mask")
            value = state[name]
            if tuple(value.shape) != tuple(keep.shape):
                raise MaskMismatchError(
                    f"tensor {name!r} has shape {tuple(value.shape)} in the state dict, {tuple(keep.shape)} in its mask"
                )
            if not value.is_floating_point():
                raise ValueError(f"tensor {name!r} is {value.dtype}: only floating-point tensors are stored sparse")
            keep = keep.to(torch.bool).cpu()
            out[name] = out[name] | keep if name in out else keep | (value.detach().cpu() != 0)
    return out


def save_sparse(
    path: Union[str, Path],
    state: Mapping[str, torch.Tensor],
    support: Optional[Mapping[str, torch.Tensor]] = None,
    *,
    fp16: bool = False,
    extra: Optional[Mapping[str, object]] = None,
) -> Path:
    """Write ``state`` (a model's state dict) as a packed sparse checkpoint, atomically.

    Args:
        state: the tensors to store, in order; its ``pathway_masks.*`` buffers, if any, are coded
            against the union of the masks and restored by :func:`load_sparse` (in their dtype; the
            fractions of n-best averaged masks come back as 0/1, the masks they stand for).
        support: ``{name: BoolTensor}`` weights to keep of each tensor to store sparse (e.g. one
            language's mask); default: the union of the state's pathway masks.
        fp16: store float32/float64 values as float16 (lossy).
        extra: JSON-serialisable notes kept in the header (``header["extra"]``).

    Raises:
        MaskMismatchError: a mask names a tensor the state dict lacks or holds in another shape.
        ValueError: no support and no pathway masks, or a masked tensor is not floating-point.
    """
    masks = MaskSet.from_state_dict(state)
    supports = _supports(state, support, masks)
    languages = list(masks.languages) if masks is not None else []
    coded = [name for name in supports if masks is not None and name in masks.names]
    entries: List[dict] = []
    chunks: List[bytes] = []
    for name, value in state.items():
        value = value.detach().cpu()
        stored = torch.float16 if fp16 and value.dtype in _HALVED else value.dtype
        entry = {"name": name, "shape": list(value.shape), "dtype": _dtype_name(value.dtype)}
        parsed = parse_state_key(name)
        if parsed is not None:
            entry.update(storage=_MASK, lang=parsed[0], tensor=parsed[1])
        elif name in supports:
            keep = supports[name]
            kept = value[keep].to(stored)
            negative_zeros = torch.signbit(value[~keep])
            entry.update(storage=_SPARSE, stored=_dtype_name(stored), kept=int(kept.numel()),
                         negative_zeros=bool(negative_zeros.any()))
            chunks += [_bits(keep), _raw(kept)] + ([_bits(negative_zeros)] if entry["negative_zeros"] else [])
        else:
            entry.update(storage=_DENSE, stored=_dtype_name(stored))
            chunks.append(_raw(value.to(stored)))
        entries.append(entry)
    for lang in languages:
        chunks += [_bits(masks[lang][name][supports[name]]) for name in coded]
    payload = b"".join(chunks)
    header = {
        "format": "espnet_pathways.sparse_checkpoint",
        "version": _FORMAT_VERSION,
        "languages": languages,
        "coded": coded,
        "tensors": entries,
        "payload_bytes": len(payload),
        "payload_crc32": zlib.crc32(payload),
        "extra": dict(extra or {}),
    }
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return write_framed(Path(path), _MAGIC, header_bytes, [payload], _WHAT)


def _entry_bytes(entry: dict) -> int:
    """Payload bytes of one tensor entry (ValueError if the entry is malformed)."""
    shape = entry["shape"]
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ValueError(f"tensor {entry['name']!r} has shape {shape!r}")
    _dtype(entry["dtype"])
    storage = entry["storage"]
    if storage == _MASK:
        return 0
    itemsize = _dtype(entry["stored"]).itemsize
    numel = math.prod(shape)
    if storage == _DENSE:
        return numel * itemsize
    kept = entry["kept"]
    if storage != _SPARSE or type(kept) is not int or not 0 <= kept <= numel:
        raise ValueError(f"tensor {entry['name']!r}: storage {storage!r}, kept {kept!r}")
    signs = (numel - kept + 7) // 8 if entry["negative_zeros"] is True else 0
    return (numel + 7) // 8 + kept * itemsize + signs


def _parse(header: dict) -> Tuple[int, List[dict]]:
    entries = header["tensors"]
    by_name = {e["name"]: e for e in entries}
    coded = [by_name[name] for name in header["coded"]]
    if any(e["storage"] != _SPARSE for e in coded) or (header["languages"] and not coded):
        raise ValueError("coded masks without a sparse tensor")
    declared = sum(_entry_bytes(e) for e in entries)
    declared += len(header["languages"]) * sum((e["kept"] + 7) // 8 for e in coded)
    return declared, entries


class _Reader:
    """Walks the payload: each read checks the bytes left (the header's sizes were checked already)."""

    def __init__(self, payload: bytes, path: Path) -> None:
        self.data = np.frombuffer(payload, dtype=np.uint8)
        self.offset = 0
        self.path = path

    def take(self, nbytes: int) -> np.ndarray:
        piece = self.data[self.offset : self.offset + nbytes]
        self.offset += nbytes
        return piece

    def tensor(self, dtype: torch.dtype, numel: int) -> torch.Tensor:
        return torch.from_numpy(self.take(numel * dtype.itemsize).copy()).view(dtype)

    def bits(self, count: int) -> torch.Tensor:
        packed = self.take((count + 7) // 8)
        return torch.from_numpy(np.unpackbits(packed, count=count, bitorder="little").astype(np.bool_))


def _tensors(reader: _Reader, entries: List[dict]) -> Iterator[Tuple[dict, Optional[torch.Tensor], Optional[torch.Tensor]]]:
    """(entry, tensor, support) per entry; masks come later (tensor None)."""
    for entry in entries:
        if entry["storage"] == _MASK:
            yield entry, None, None
            continue
        dtype, stored, shape = _dtype(entry["dtype"]), _dtype(entry["stored"]), tuple(entry["shape"])
        numel = math.prod(shape)
        if entry["storage"] == _DENSE:
            yield entry, reader.tensor(stored, numel).to(dtype).reshape(shape), None
            continue
        keep = reader.bits(numel)
        if int(keep.sum()) != entry["kept"]:
            raise SparseCheckpointError(f"{reader.path}: tensor {entry['name']!r}: mask and values disagree")
        value = torch.zeros(numel, dtype=dtype)
        value[keep] = reader.tensor(stored, entry["kept"]).to(dtype)
        if entry["negative_zeros"]:
            value[~keep] = torch.where(reader.bits(numel - entry["kept"]), -0.0, 0.0).to(dtype)
        yield entry, value.reshape(shape), keep.reshape(shape)


def load_sparse(path: Union[str, Path]) -> SparseCheckpoint:
    """Read a file written by :func:`save_sparse`; bad files raise :class:`SparseCheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sparse checkpoint not found: {path}")
    with open(path, "rb") as f:
        header, entries = read_framed_header(f, path, _MAGIC, _WHAT, json.loads, _parse, SparseCheckpointError)
        payload = read_framed_payload(f, path, header, SparseCheckpointError)
    reader = _Reader(payload, path)
    state: Dict[str, Optional[torch.Tensor]] = {}
    supports: Dict[str, torch.Tensor] = {}
    for entry, value, keep in _tensors(reader, entries):
        state[entry["name"]] = value
        if keep is not None:
            supports[entry["name"]] = keep
    masks: Dict[str, Dict[str, torch.Tensor]] = {}
    for lang in header["languages"]:
        masks[lang] = {}
        for name in header["coded"]:
            keep = supports[name]
            mask = torch.zeros_like(keep)
            mask[keep] = reader.bits(int(keep.sum()))
            masks[lang][name] = mask
    maskset = MaskSet(masks) if masks else None
    for entry in entries:
        if entry["storage"] == _MASK:
            mask = (maskset[entry["lang"]] if maskset and entry["lang"] in maskset.languages else {}).get(entry["tensor"])
            if mask is None or state_key(entry["lang"], entry["tensor"]) != entry["name"]:
                raise SparseCheckpointError(f"{path}: mask buffer {entry['name']!r} has no coded mask")
            state[entry["name"]] = mask.to(_dtype(entry["dtype"]))
    return SparseCheckpoint(state, maskset, header)
