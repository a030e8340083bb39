"""Binary files framed as a checked JSON header followed by a payload (mask files, sparse checkpoints).

Layout::

    magic (the last byte is the format version) | uint64 header length | uint32 header CRC32 | header (UTF-8 JSON) | payload

The header declares ``payload_bytes`` and ``payload_crc32``. A reader checks the magic, caps the header
length, checks the header's CRC32, and checks that the sizes the header declares add up to the
payload *before* it allocates anything, so that truncated, corrupted, foreign or older files are
rejected with an error naming the file. The caller says how big its payload must be
(``parse(header) -> (declared bytes, parsed layout)``) and which exception to raise.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Tuple, Type, TypeVar

from espnet_pathways.utils.fileio import atomic_path

__all__ = ["MAX_HEADER_BYTES", "write_framed", "read_framed_header", "read_framed_payload"]

MAX_HEADER_BYTES = 16 << 20
_PREFIX = "<QI"  # header length, header CRC32

T = TypeVar("T")


def write_framed(path: Path, magic: bytes, header_bytes: bytes, payload: Iterable[bytes], what: str) -> Path:
    """Write ``magic | prefix | header_bytes | payload`` atomically (``what`` names the file kind in errors)."""
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise ValueError(f"{what} header of {len(header_bytes)} bytes exceeds {MAX_HEADER_BYTES}")
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(magic)
            f.write(struct.pack(_PREFIX, len(header_bytes), zlib.crc32(header_bytes)))
            f.write(header_bytes)
            for chunk in payload:
                f.write(chunk)
    return path


def read_framed_header(
    f: BinaryIO,
    path: Path,
    magic: bytes,
    what: str,
    loads: Callable[[str], dict],
    parse: Callable[[dict], Tuple[int, T]],
    error: Type[Exception],
) -> Tuple[dict, T]:
    """Header and ``parse(header)``'s layout, leaving ``f`` at the payload, whose size has been checked.

    Args:
        magic: expected magic; its last byte is the format version.
        what: the file kind in messages ("mask file").
        loads: JSON decoder of the header.
        parse: header -> (payload bytes the header's layout declares, layout); may raise KeyError,
            TypeError or ValueError for a malformed header.
        error: exception class raised, with the file's path in the message.
    """
    size = os.fstat(f.fileno()).st_size
    found = f.read(len(magic))
    if found != magic:
        if len(found) == len(magic) and found[:-1] == magic[:-1]:
            raise error(
                f"{path}: {what} format version {found[-1]} is not supported (this version reads "
                f"{magic[-1]}); re-create the file"
            )
        raise error(f"{path}: not an espnet_pathways {what} (bad magic {found[:8]!r})")
    raw = f.read(struct.calcsize(_PREFIX))
    if len(raw) != struct.calcsize(_PREFIX):
        raise error(f"{path}: truncated header")
    length, crc = struct.unpack(_PREFIX, raw)
    if length > MAX_HEADER_BYTES:
        raise error(f"{path}: corrupted header length {length} (at most {MAX_HEADER_BYTES} bytes)")
    if length > size - f.tell():
        raise error(f"{path}: truncated header ({size - f.tell()} of {length} bytes)")
    header_bytes = f.read(length)
    if zlib.crc32(header_bytes) != crc:
        raise error(f"{path}: header checksum mismatch (corrupted file)")
    try:
        header = loads(header_bytes.decode("utf-8"))
        declared, layout = parse(header)
        expected = header["payload_bytes"]
    except (UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
        raise error(f"{path}: corrupted header: {e!r}") from None
    actual = size - f.tell()
    if declared != expected or actual > expected:
        raise error(f"{path}: payload size mismatch (tensor shapes: {declared} bytes, header: {expected}, file: {actual})")
    if actual < expected:
        raise error(f"{path}: truncated payload ({actual} of {expected} bytes)")
    return header, layout


def read_framed_payload(f: BinaryIO, path: Path, header: dict, error: Type[Exception]) -> bytes:
    """The payload after :func:`read_framed_header`, its CRC32 checked against the header's."""
    payload = f.read()
    if zlib.crc32(payload) != header.get("payload_crc32"):
        raise error(f"{path}: payload checksum mismatch (corrupted file)")
    return payload
