"""The masks of a run at every pruning and adaptation event: a compact, append-only record.

A pruning run (:class:`espnet_pathways.pruning.PruningEngine`) appends one record per event to
``<exp>/pruning/mask_history.pwh``; :class:`MaskHistory` reads it back and rebuilds the
:class:`MaskSet` after any recorded event. L: languages, P: prunable weights.

Each record holds only what the event changed: for each language whose mask changed, the XOR of its
packed masks (1 bit per weight, the bytes of :meth:`MaskSet.save`'s payload) against its masks of the
previous record, or against the new masks of the language before it when that differs in fewer bits
(pathways overlap: the first record, a full snapshot against all-False masks, shrinks this way),
zlib-compressed. A record also carries the :meth:`MaskSet.digest` of the masks it leads to (the
digest the engine logs), so a rebuilt mask set is checked against what the engine held::

    file   := b"PWMHIST\\x01" | uint32 header length | uint32 header CRC32 | header (UTF-8 JSON) | record*
    record := b"PWHR" | uint32 body length | uint32 body CRC32 | body
    body   := int64 step | uint8 kind | uint64 event languages | uint64 changed languages
              | uint64 languages XORed against the one before | uint32 digest
              | zlib(XOR of the changed languages' packed masks, in the header's language order)

(language sets as bit masks over the header's languages; kind: init, prune, adapt, freeze).

Crash safety: the header is written atomically, each record with one ``write`` and an ``fsync``. A
record cut short by a crash, or one recorded after the checkpoint a run resumes from, is dropped
when the run resumes (:meth:`MaskHistoryWriter.resume`), so the history matches the checkpoint's
masks. The reader refuses any truncated or corrupt record, naming the file, the record and its byte
offset. Masks are rebuilt by replaying the records, so reading holds one mask set at a time.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from espnet_pathways.masks.maskset import MaskFileError, MaskSet
from espnet_pathways.utils.fileio import atomic_path

__all__ = ["HISTORY_FILE", "KINDS", "HistoryRecord", "MaskHistory", "MaskHistoryWriter"]

HISTORY_FILE = "mask_history.pwh"
KINDS = ("init", "prune", "adapt", "freeze")
"""Record kinds: initial masks (``init_masks``), pruning event, re-ranking, masks fixed (hard)."""

_VERSION = 1
_MAGIC = b"PWMHIST" + bytes([_VERSION])
_HEADER_PREFIX = struct.Struct("<II")  # header length, header CRC32
_MAX_HEADER_BYTES = 16 << 20
_RECORD_MARK = b"PWHR"
_RECORD_PREFIX = struct.Struct("<4sII")  # mark, body length, body CRC32
_RECORD_META = struct.Struct("<qBQQQI")  # step, kind, event/changed/cross-referenced languages, digest
_MAX_LANGUAGES = 64  # language sets are uint64 bit masks

Packed = Dict[str, np.ndarray]  # language -> packed masks of every tensor (uint8, the mask file's payload bytes)


@dataclass(frozen=True)
class HistoryRecord:
    """One event: ``step`` (optimizer steps taken), ``kind`` (:data:`KINDS`), the ``languages`` it
    re-ranked, the ``changed`` languages, the ``digest`` of the masks after it, and where it lies."""

    index: int
    step: int
    kind: str
    languages: Tuple[str, ...]
    changed: Tuple[str, ...]
    digest: str
    offset: int
    size: int


def _lang_bytes(shapes: Dict[str, torch.Size]) -> int:
    """Bytes of one language's packed masks (each tensor padded to a whole byte)."""
    return sum((int(np.prod(s)) + 7) // 8 for s in shapes.values())


def _pack(maskset: MaskSet, lang: str) -> np.ndarray:
    """``lang``'s masks packed as in a mask file: tensor after tensor, little bit order, byte-padded."""
    return np.concatenate([
        np.packbits(maskset[lang][name].reshape(-1).cpu().numpy(), bitorder="little") for name in maskset.names
    ])


def _digest(packed: Packed, languages: Sequence[str]) -> int:
    """CRC32 over the languages' packed masks: :meth:`MaskSet.digest` of the same masks."""
    crc = 0
    for lang in languages:
        crc = zlib.crc32(packed[lang].tobytes(), crc)
    return crc


def _bits(languages: Sequence[str], subset: Sequence[str]) -> int:
    return sum(1 << languages.index(lang) for lang in subset)


def _subset(languages: Sequence[str], bits: int) -> Tuple[str, ...]:
    if bits >> len(languages):
        raise ValueError(f"language bits {bits:#x} name more than the {len(languages)} languages")
    return tuple(lang for i, lang in enumerate(languages) if bits >> i & 1)


def _header(maskset: MaskSet) -> dict:
    return {
        "format": "espnet_pathways.mask_history",
        "version": _VERSION,
        "languages": list(maskset.languages),
        "tensors": [{"name": n, "shape": list(s)} for n, s in maskset.shapes.items()],
        "method": maskset.method,
        "fingerprint": maskset.fingerprint,
    }


def _header_bytes(header: dict) -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return _MAGIC + _HEADER_PREFIX.pack(len(text), zlib.crc32(text)) + text


def _popcount(bits: np.ndarray) -> int:
    return int(np.bitwise_count(bits).sum(dtype=np.int64))


def _encode_record(step: int, kind: str, languages: Sequence[str], state: Packed, previous: Packed) -> bytes:
    """One record: the masks ``state`` after an event, against ``previous`` (module docstring)."""
    order = list(state)
    changed, cross, chunks = [], [], []
    for i, lang in enumerate(order):
        if np.array_equal(state[lang], previous[lang]):
            continue
        xor = state[lang] ^ previous[lang]
        if i and _popcount(state[lang] ^ state[order[i - 1]]) < _popcount(xor):
            xor = state[lang] ^ state[order[i - 1]]
            cross.append(lang)
        changed.append(lang)
        chunks.append(xor.tobytes())
    meta = _RECORD_META.pack(step, KINDS.index(kind), _bits(order, languages), _bits(order, changed),
                             _bits(order, cross), _digest(state, order))
    body = meta + zlib.compress(b"".join(chunks), 6)  # level 9: 3% smaller, 10x slower on a first record
    return _RECORD_PREFIX.pack(_RECORD_MARK, len(body), zlib.crc32(body)) + body


class _Scan:
    """A history file read record by record; ``error`` says where it stopped early (None: at its end)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = path.read_bytes()
        self.header, self.body_start = self._read_header()
        self.languages: Tuple[str, ...] = tuple(self.header["languages"])
        self.shapes = {t["name"]: torch.Size(t["shape"]) for t in self.header["tensors"]}
        self.lang_bytes = _lang_bytes(self.shapes)
        self.records: List[HistoryRecord] = []
        self.error: Optional[str] = None
        self.error_offset = len(self.data)
        self._read_records()

    def _fail(self, what: str) -> MaskFileError:
        return MaskFileError(f"{self.path}: {what}")

    def _read_header(self) -> Tuple[dict, int]:
        data, start = self.data, len(_MAGIC) + _HEADER_PREFIX.size
        if data[: len(_MAGIC)] != _MAGIC:
            raise self._fail(f"not an espnet_pathways mask history of version {_VERSION} (magic {data[:8]!r})")
        if len(data) < start:
            raise self._fail("truncated header")
        length, crc = _HEADER_PREFIX.unpack_from(data, len(_MAGIC))
        if length > _MAX_HEADER_BYTES or start + length > len(data):
            raise self._fail(f"truncated or corrupt header (length {length}, file {len(data)} bytes)")
        text = data[start : start + length]
        if zlib.crc32(text) != crc:
            raise self._fail("header checksum mismatch (corrupted file)")
        try:
            header = json.loads(text.decode("utf-8"))
            languages, tensors = header["languages"], header["tensors"]
            if not 0 < len(languages) <= _MAX_LANGUAGES or not tensors:
                raise ValueError(f"{len(languages)} languages, {len(tensors)} tensors")
            for tensor in tensors:
                if not all(type(d) is int and d >= 0 for d in tensor["shape"]):
                    raise ValueError(f"tensor {tensor['name']!r} has shape {tensor['shape']!r}")
        except (UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
            raise self._fail(f"corrupted header: {e!r}") from None
        return header, start + length

    def _empty(self) -> Packed:
        return {lang: np.zeros(self.lang_bytes, dtype=np.uint8) for lang in self.languages}

    def _read_records(self) -> None:
        data, offset, previous = self.data, self.body_start, self._empty()
        while offset < len(data) and self.error is None:
            try:
                record, previous, size = self._record(offset, previous)
            except ValueError as e:
                self.error, self.error_offset = f"record {len(self.records)} at byte {offset}: {e}", offset
                return
            self.records.append(record)
            offset += size

    def states(self, count: Optional[int] = None) -> Iterator[Tuple[HistoryRecord, Packed]]:
        """Replay the first ``count`` (default: all) valid records: (record, packed masks after it)."""
        state = self._empty()
        for record in self.records[:count]:
            _, state, _ = self._record(record.offset, state)
            yield record, state

    def state_after(self, count: int) -> Packed:
        """The packed masks after the first ``count`` records (all-False before the first)."""
        state = self._empty()
        for _, state in self.states(count):
            pass
        return state

    def _record(self, offset: int, previous: Packed) -> Tuple[HistoryRecord, Packed, int]:
        data = self.data
        if offset + _RECORD_PREFIX.size > len(data):
            raise ValueError(f"truncated ({len(data) - offset} bytes)")
        mark, length, crc = _RECORD_PREFIX.unpack_from(data, offset)
        if mark != _RECORD_MARK:
            raise ValueError(f"bad record mark {mark!r} (corrupted file)")
        start = offset + _RECORD_PREFIX.size
        if start + length > len(data):
            raise ValueError(f"truncated ({len(data) - start} of {length} bytes)")
        body = data[start : start + length]
        if zlib.crc32(body) != crc or length < _RECORD_META.size:
            raise ValueError("checksum mismatch (corrupted file)")
        step, kind, event_bits, changed_bits, cross_bits, digest = _RECORD_META.unpack_from(body)
        if kind >= len(KINDS):
            raise ValueError(f"unknown kind {kind}")
        changed, cross = _subset(self.languages, changed_bits), _subset(self.languages, cross_bits)
        if cross_bits & 1 or not set(cross) <= set(changed):
            raise ValueError(f"bad cross-language references {cross_bits:#x}")
        try:
            xor = np.frombuffer(zlib.decompress(body[_RECORD_META.size :]), dtype=np.uint8)
        except zlib.error as e:
            raise ValueError(f"undecodable payload ({e})") from None
        if xor.size != len(changed) * self.lang_bytes:
            raise ValueError(f"payload of {xor.size} bytes, {len(changed)} language(s) need "
                             f"{len(changed) * self.lang_bytes}")
        state = dict(previous)
        for i, lang in enumerate(changed):  # in header order: the language before is final when used
            before = self.languages[self.languages.index(lang) - 1]
            reference = state[before] if lang in cross else previous[lang]
            state[lang] = reference ^ xor[i * self.lang_bytes : (i + 1) * self.lang_bytes]
        if _digest(state, self.languages) != digest:
            raise ValueError(f"the masks it rebuilds do not have its digest {digest:08x}")
        record = HistoryRecord(len(self.records), step, KINDS[kind], _subset(self.languages, event_bits), changed,
                               f"{digest:08x}", offset, _RECORD_PREFIX.size + length)
        return record, state, _RECORD_PREFIX.size + length


class MaskHistory:
    """A mask history file, read and checked whole: every record's checksum and digest.

    Raises:
        MaskFileError: a truncated or corrupt header or record (the file, record and byte offset named).
    """

    def __init__(self, path: Union[str, Path]) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"mask history not found: {path}")
        scan = _Scan(path)
        if scan.error is not None:
            raise MaskFileError(f"{path}: {scan.error}")
        self.path = path
        self.languages = scan.languages
        self.shapes = scan.shapes
        self.method: Optional[str] = scan.header.get("method")
        self.fingerprint: Optional[str] = scan.header.get("fingerprint")
        self.records: Tuple[HistoryRecord, ...] = tuple(scan.records)
        self._scan = scan

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(self.shapes)

    def packed_states(self) -> Iterator[Tuple[HistoryRecord, Packed]]:
        """(record, the packed masks after it: language -> uint8 array, the mask file's bytes), in order."""
        return self._scan.states()

    def maskset(self, index: int) -> MaskSet:
        """The masks after record ``index`` (negative: from the end)."""
        state = self._scan.state_after(range(len(self.records))[index] + 1)
        masks: Dict[str, Dict[str, torch.Tensor]] = {}
        for lang in self.languages:
            masks[lang], offset = {}, 0
            for name, shape in self.shapes.items():
                count = int(np.prod(shape))
                bits = np.unpackbits(state[lang][offset : offset + (count + 7) // 8], count=count, bitorder="little")
                masks[lang][name] = torch.from_numpy(bits.astype(np.bool_)).reshape(shape)
                offset += (count + 7) // 8
        return MaskSet(masks, method=self.method, fingerprint=self.fingerprint)

    def __len__(self) -> int:
        return len(self.records)


class MaskHistoryWriter:
    """Appends one record per event to ``path`` (only the rank that writes outputs makes one).

    The file is started afresh at the first record, unless :meth:`resume` was called first: a run
    resumed from a checkpoint keeps the records the checkpoint's masks had seen and drops the rest.
    """

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        self._keep: Optional[Tuple[int, bool]] = None  # (checkpoint step, checkpoint frozen) after resume()
        self._layout: Optional[Tuple[Tuple[str, ...], Dict[str, torch.Size]]] = None  # of the open file
        self._previous: Optional[Packed] = None

    def resume(self, step: int, started: bool, frozen: bool) -> None:
        """The run continues from a checkpoint at optimizer ``step`` (``started``: past its first training
        forward; ``frozen``: masks fixed): keep the records of steps before it, and those of ``step``
        itself except a ``freeze`` the checkpoint has not seen (fixing the masks at the end of training
        comes after the last checkpoint). A fresh run (not ``started``) drops every record."""
        self._keep = (step, frozen) if started else None
        self._layout = self._previous = None
        if started and self.path.is_file():
            self._open_existing()

    def append(self, step: int, kind: str, languages: Sequence[str], maskset: MaskSet) -> None:
        """Record the masks after an event of ``kind`` at ``step`` that re-ranked ``languages``."""
        if kind not in KINDS:
            raise ValueError(f"unknown history record kind {kind!r} (one of {', '.join(KINDS)})")
        if self._layout != (maskset.languages, maskset.shapes):
            self._start(maskset)
        order = maskset.languages
        state = {lang: _pack(maskset, lang) for lang in order}
        record = _encode_record(step, kind, languages, state, self._previous)
        with open(self.path, "ab") as f:
            f.write(record)
            f.flush()
            os.fsync(f.fileno())
        self._previous = state

    def _start(self, maskset: MaskSet) -> None:
        """Begin a new file holding only the header (for ``maskset``'s languages and tensors)."""
        if len(maskset.languages) > _MAX_LANGUAGES:
            raise ValueError(f"a mask history holds at most {_MAX_LANGUAGES} languages, not {len(maskset.languages)}")
        if self._keep is not None and self.path.is_file():
            logging.warning("%s: the masks' languages or tensors differ from the history's: started afresh", self.path)
        with atomic_path(self.path) as tmp:
            tmp.write_bytes(_header_bytes(_header(maskset)))
        self._layout = (maskset.languages, maskset.shapes)
        self._previous = {lang: np.zeros(_lang_bytes(maskset.shapes), dtype=np.uint8) for lang in maskset.languages}

    def _open_existing(self) -> None:
        """Cut the file after the last record a resumed run keeps; a damaged file is set aside."""
        try:
            scan = _Scan(self.path)
        except MaskFileError as e:
            aside = self.path.with_name(self.path.name + ".damaged")
            os.replace(self.path, aside)
            logging.warning("%s; moved to %s, the history starts again at the next event", e, aside)
            return
        step, frozen = self._keep
        kept = 0
        for record in scan.records:
            if record.step > step or (record.step == step and record.kind == "freeze" and not frozen):
                break
            kept += 1
        if scan.error is not None and kept == len(scan.records):
            logging.warning("%s: %s; dropped with what follows it", self.path, scan.error)
        end = scan.records[kept].offset if kept < len(scan.records) else scan.error_offset
        os.truncate(self.path, end)
        self._layout = (scan.languages, scan.shapes)
        self._previous = scan.state_after(kept)
        logging.info("%s: resumed at step %d with %d of %d records", self.path, step, kept, len(scan.records))
