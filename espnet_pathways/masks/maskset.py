"""Mask sets: one boolean mask per prunable tensor per language (a "pathway"), plus file I/O.

A :class:`MaskSet` maps language → {parameter name → BoolTensor} (True = weight kept). The key
``"*"`` (:data:`SHARED`) holds a language-agnostic mask. Every language covers the same tensors with
the same shapes. Notation: P = prunable tensors, m_l = mask of language l.

The mask file is packed, one bit per prunable weight per language, after a small JSON header
(parameter names, shapes, languages, sparsity, method, model fingerprint). Header and payload each
have a CRC32, the header length is capped, and the tensor sizes the header declares must add up to
the payload, so that truncated, corrupted, foreign or older files are rejected before anything is
allocated::

    b"PWMASKS\\x02" | uint64 header length | uint32 header CRC32 | header (UTF-8 JSON) | payload (packed bits)
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from espnet_pathways.masks.layout import parse_state_key
from espnet_pathways.masks.prunable import model_fingerprint
from espnet_pathways.utils.framed_file import read_framed_header, read_framed_payload, write_framed

__all__ = ["MaskSet", "MaskFileError", "MaskMismatchError"]

_FORMAT_VERSION = 2
_MAGIC = b"PWMASKS" + bytes([_FORMAT_VERSION])

Masks = Dict[str, torch.Tensor]


class MaskFileError(ValueError):
    """A mask file is truncated, corrupted or not a mask file."""


class MaskMismatchError(ValueError):
    """Masks do not fit a model or another mask set (names or shapes differ)."""


def _check_same_layout(reference: Mapping[str, torch.Size], masks: Mapping[str, torch.Tensor], where: str) -> None:
    for name, shape in reference.items():
        if name not in masks:
            raise MaskMismatchError(f"{where}: no mask for tensor {name!r}")
        if tuple(masks[name].shape) != tuple(shape):
            raise MaskMismatchError(
                f"{where}: tensor {name!r} has shape {tuple(masks[name].shape)}, expected {tuple(shape)}"
            )
    extra = [n for n in masks if n not in reference]
    if extra:
        raise MaskMismatchError(f"{where}: unexpected tensor {extra[0]!r}")


def _packed_bytes(shape: Sequence[int]) -> int:
    """Bytes of one packed mask of ``shape`` in the file."""
    return (math.prod(shape) + 7) // 8


def _tensor_layout(header: dict) -> List[Tuple[str, Tuple[int, ...]]]:
    """(name, shape) of each tensor a file header declares; ValueError if a shape is not one."""
    layout = []
    for tensor in header["tensors"]:
        shape = tensor["shape"]
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise ValueError(f"tensor {tensor['name']!r} has shape {shape!r}")
        layout.append((tensor["name"], tuple(shape)))
    return layout


class MaskSet:
    """Per-language boolean masks over the same prunable tensors.

    Args:
        masks: ``{language: {name: BoolTensor}}``; language ``"*"`` is the shared mask.
        method: how the masks were made (a pruning method, e.g. ``lth``), stored in the file header.
        fingerprint: :func:`model_fingerprint` of the architecture the masks belong to; computed
            from the names and shapes when not given.
    """

    def __init__(
        self,
        masks: Mapping[str, Mapping[str, torch.Tensor]],
        *,
        method: Optional[str] = None,
        fingerprint: Optional[str] = None,
    ) -> None:
        if not masks:
            raise ValueError("MaskSet needs at least one language")
        languages = list(masks)
        for lang in languages:
            if not isinstance(lang, str) or not lang or "." in lang:
                raise ValueError(f"invalid language key {lang!r} (non-empty string without '.')")
        first = masks[languages[0]]
        if not first:
            raise ValueError(f"MaskSet: language {languages[0]!r} has no tensors")
        self._shapes: Dict[str, torch.Size] = {n: m.shape for n, m in first.items()}
        self._masks: Dict[str, Masks] = {}
        for lang in languages:
            _check_same_layout(self._shapes, masks[lang], f"language {lang!r}")
            self._masks[lang] = {n: self._as_bool(masks[lang][n], lang, n) for n in self._shapes}
        self.method = method
        self.fingerprint = fingerprint or model_fingerprint(self._shapes)

    @staticmethod
    def _as_bool(mask: torch.Tensor, lang: str, name: str) -> torch.Tensor:
        if mask.dtype == torch.bool:
            return mask.detach()
        if mask.is_floating_point() or mask.dtype in (torch.uint8, torch.int8, torch.int32, torch.int64):
            values = mask.detach()
            if not bool(((values == 0) | (values == 1)).all()):
                raise ValueError(f"mask {lang!r}/{name!r} holds values other than 0 and 1")
            return values.bool()
        raise TypeError(f"mask {lang!r}/{name!r} has unsupported dtype {mask.dtype}")

    # ----------------------------------------------------------------- access
    @property
    def languages(self) -> Tuple[str, ...]:
        return tuple(self._masks)

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(self._shapes)

    @property
    def shapes(self) -> Dict[str, torch.Size]:
        return dict(self._shapes)

    @property
    def num_prunable(self) -> int:
        """|P|: number of prunable weights."""
        return sum(int(np.prod(s)) for s in self._shapes.values())

    def __getitem__(self, lang: str) -> Masks:
        if lang not in self._masks:
            raise KeyError(f"language {lang!r} not in mask set (languages: {', '.join(self.languages)})")
        return self._masks[lang]

    def __contains__(self, lang: object) -> bool:
        return lang in self._masks

    def __iter__(self):
        return iter(self._masks)

    def __len__(self) -> int:
        return len(self._masks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MaskSet):
            return NotImplemented
        return self.languages == other.languages and self.names == other.names and all(
            torch.equal(self._masks[l][n].cpu(), other._masks[l][n].cpu())
            for l in self.languages
            for n in self.names
        )

    def __repr__(self) -> str:
        sparsity = ", ".join(f"{l}: {self.sparsity(l):.3f}" for l in self.languages)
        return f"MaskSet({len(self.names)} tensors, {self.num_prunable} weights, sparsity {{{sparsity}}})"

    @classmethod
    def full(
        cls, shapes: Mapping[str, Union[torch.Tensor, Sequence[int]]], languages: Iterable[str], **kwargs
    ) -> "MaskSet":
        """All-True masks (sparsity 0) for ``languages`` over ``{name: tensor or shape}``."""
        dims = {n: (s.shape if isinstance(s, torch.Tensor) else torch.Size(s)) for n, s in shapes.items()}
        return cls({l: {n: torch.ones(d, dtype=torch.bool) for n, d in dims.items()} for l in languages}, **kwargs)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> Optional["MaskSet"]:
        """The masks stored in a model checkpoint by an attached handle (None if it has none).

        Averaged checkpoints hold fractions instead of booleans: any non-zero value counts as kept.
        """
        masks: Dict[str, Masks] = {}
        for key, value in state.items():
            parsed = parse_state_key(key)
            if parsed is not None:
                masks.setdefault(parsed[0], {})[parsed[1]] = value != 0
        return cls(masks) if masks else None

    def replace(self, lang: str, masks: Mapping[str, torch.Tensor]) -> "MaskSet":
        """A new set with ``lang``'s masks replaced (or ``lang`` added)."""
        new = dict(self._masks)
        new[lang] = dict(masks)
        return MaskSet(new, method=self.method, fingerprint=self.fingerprint)

    def select(self, languages: Iterable[str]) -> "MaskSet":
        """A new set with only ``languages`` (in the given order)."""
        return MaskSet({l: self[l] for l in languages}, method=self.method, fingerprint=self.fingerprint)

    def check_model(self, params: Mapping[str, torch.Tensor]) -> None:
        """Check that ``params`` (a model's state dict) is of the architecture of :attr:`fingerprint`.

        Raises:
            MaskMismatchError: naming the first tensor that the model lacks or has in another shape.
        """
        fingerprint = model_fingerprint((n, params[n]) for n in self.names if n in params)
        if fingerprint == self.fingerprint:
            return
        problem = self.first_mismatch(params)
        raise MaskMismatchError(problem or f"model fingerprint {fingerprint} differs from the masks' {self.fingerprint}")

    def first_mismatch(self, params: Mapping[str, torch.Tensor]) -> Optional[str]:
        """The first mask tensor that ``params`` lacks or holds in another shape, said in words (None: all fit)."""
        for name, shape in self._shapes.items():
            if name not in params:
                return f"the model has no tensor {name!r}"
            if tuple(params[name].shape) != tuple(shape):
                return f"tensor {name!r} has shape {tuple(params[name].shape)} in the model, {tuple(shape)} in the masks"
        return None

    # ------------------------------------------------------------- statistics
    def kept(self, lang: str) -> int:
        """Number of weights kept by ``lang``'s mask."""
        return sum(int(m.sum()) for m in self[lang].values())

    def sparsity(self, lang: str, total_params: Optional[int] = None) -> float:
        """Fraction of weights pruned by ``lang``'s mask.

        Over P by default; with ``total_params`` (all parameters of the model), the zeros of P are
        counted against every parameter (the "over all parameters" figure).
        """
        zeros = self.num_prunable - self.kept(lang)
        return zeros / (total_params if total_params is not None else self.num_prunable)

    def tensor_sparsity(self, lang: str) -> Dict[str, float]:
        """Per-tensor sparsity of ``lang``."""
        return {n: 1.0 - float(m.float().mean()) for n, m in self[lang].items()}

    def module_sparsity(self, lang: str, depth: Optional[int] = None) -> Dict[str, float]:
        """Sparsity per module (the name without the parameter; ``depth`` keeps that many parts)."""
        totals: Dict[str, List[int]] = {}
        for name, mask in self[lang].items():
            module = name.rsplit(".", 1)[0] if "." in name else name
            if depth is not None:
                module = ".".join(module.split(".")[:depth])
            kept_total = totals.setdefault(module, [0, 0])
            kept_total[0] += int(mask.sum())
            kept_total[1] += mask.numel()
        return {m: 1.0 - kept / total for m, (kept, total) in totals.items()}

    def union(self, languages: Optional[Iterable[str]] = None) -> Masks:
        """m_1 ∪ m_2 ∪ … over ``languages`` (default: all)."""
        return self._reduce(torch.logical_or, languages)

    def intersection(self, languages: Optional[Iterable[str]] = None) -> Masks:
        """m_1 ∩ m_2 ∩ … over ``languages`` (default: all)."""
        return self._reduce(torch.logical_and, languages)

    def _reduce(self, op, languages: Optional[Iterable[str]]) -> Masks:
        langs = list(self.languages if languages is None else languages)
        if not langs:
            raise ValueError("union/intersection of no languages")
        out = {n: self[langs[0]][n].clone() for n in self.names}
        for lang in langs[1:]:
            for n in self.names:
                op(out[n], self[lang][n], out=out[n])
        return out

    def overlap(self) -> Tuple[Tuple[str, ...], torch.Tensor]:
        """Language-overlap matrix: ``O[a, b] = |m_a ∩ m_b| / |m_a ∪ m_b|`` (1 on the diagonal).

        Returns:
            (languages, O) with O of shape (L, L), float64.
        """
        langs = self.languages
        matrix = torch.eye(len(langs), dtype=torch.float64)
        for i, a in enumerate(langs):
            for j in range(i + 1, len(langs)):
                b = langs[j]
                inter = sum(int((self[a][n] & self[b][n]).sum()) for n in self.names)
                union = sum(int((self[a][n] | self[b][n]).sum()) for n in self.names)
                matrix[i, j] = matrix[j, i] = inter / union if union else 1.0
        return langs, matrix

    def digest(self) -> str:
        """CRC32 of the packed masks (hex): equal digests mean equal masks, e.g. across DDP ranks."""
        crc = 0
        for lang in self.languages:
            for name in self.names:
                bits = self._masks[lang][name].reshape(-1).cpu().numpy()
                crc = zlib.crc32(np.packbits(bits, bitorder="little").tobytes(), crc)
        return f"{crc:08x}"

    # -------------------------------------------------------------------- I/O
    def save(self, path: Union[str, Path], extra: Optional[Mapping[str, object]] = None) -> Path:
        """Write the packed mask file atomically (see the module docstring for the format)."""
        chunks = []
        for lang in self.languages:
            for name in self.names:
                bits = self._masks[lang][name].reshape(-1).cpu().numpy()
                chunks.append(np.packbits(bits, bitorder="little").tobytes())
        payload = b"".join(chunks)
        header = {
            "format": "espnet_pathways.masks",
            "version": _FORMAT_VERSION,
            "languages": list(self.languages),
            "tensors": [{"name": n, "shape": list(s)} for n, s in self._shapes.items()],
            "sparsity": {l: self.sparsity(l) for l in self.languages},
            "method": self.method,
            "fingerprint": self.fingerprint,
            "payload_bytes": len(payload),
            "payload_crc32": zlib.crc32(payload),
            "extra": dict(extra or {}),
        }
        header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
        return write_framed(Path(path), _MAGIC, header_bytes, [payload], "mask file")

    @staticmethod
    def read_header(path: Union[str, Path]) -> dict:
        """The JSON header of a mask file (validated magic, checksum and payload size)."""
        with open(path, "rb") as f:
            return MaskSet._read_header(f, Path(path))[0]

    @staticmethod
    def _read_header(f, path: Path) -> Tuple[dict, List[Tuple[str, Tuple[int, ...]]]]:
        """Header and tensor layout, leaving ``f`` at the payload, whose size has been checked."""

        def parse(header: dict) -> Tuple[int, List[Tuple[str, Tuple[int, ...]]]]:
            layout = _tensor_layout(header)
            return len(header["languages"]) * sum(_packed_bytes(shape) for _, shape in layout), layout

        return read_framed_header(f, path, _MAGIC, "mask file", json.loads, parse, MaskFileError)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "MaskSet":
        """Read a mask file written by :meth:`save`; truncated or corrupted files raise MaskFileError."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"mask file not found: {path}")
        with open(path, "rb") as f:
            header, layout = cls._read_header(f, path)
            payload = read_framed_payload(f, path, header, MaskFileError)
        data = np.frombuffer(payload, dtype=np.uint8)
        masks: Dict[str, Masks] = {}
        offset = 0
        for lang in header["languages"]:
            masks[lang] = {}
            for name, shape in layout:
                nbytes = _packed_bytes(shape)
                bits = np.unpackbits(data[offset : offset + nbytes], count=math.prod(shape), bitorder="little")
                masks[lang][name] = torch.from_numpy(bits.astype(np.bool_)).reshape(shape)
                offset += nbytes
        return cls(masks, method=header.get("method"), fingerprint=header.get("fingerprint"))
