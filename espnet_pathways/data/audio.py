"""Full decode of an audio file, block by block.

``soundfile.info`` reads only the header, which still promises every sample of a truncated
FLAC; such a file fails only later, when training or decoding reads it. Data preparation
decodes each file once with :func:`decode_problem` to refuse it early, naming the file.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import soundfile as sf

__all__ = ["BLOCK_FRAMES", "error_text", "decode_problem"]

BLOCK_FRAMES = 1 << 16  # samples per read: the whole file is never held in memory


def error_text(exc: BaseException) -> str:
    """``str(exc)``, or the exception's type name when that is empty or fails (libsndfile errors can)."""
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide which file failed
        text = ""
    return text or type(exc).__name__


def _decoded_frames(path: str, block_frames: int) -> int:
    """Number of samples that ``path`` decodes to, read block by block (raises on corrupt data)."""
    decoded = 0
    with sf.SoundFile(path) as f:
        block = np.empty((block_frames, f.channels), dtype=np.float32)
        while True:
            n = len(f.read(out=block))
            if n == 0:
                return decoded
            decoded += n


def decode_problem(path: str, frames: int, block_frames: int = BLOCK_FRAMES) -> Optional[str]:
    """Decode ``path`` fully; ``None`` when it yields the ``frames`` samples its header promises, else why not."""
    try:
        decoded = _decoded_frames(path, block_frames)
    except Exception as exc:  # soundfile raises several types for corrupt data
        reason = error_text(exc)
    else:
        if decoded == frames:
            return None
        reason = f"decoded {decoded} samples, its header says {frames}"
    return f"cannot decode audio {path} (truncated or corrupt): {reason}"
