"""Full decode of audio files: truncated files whose header still reads are caught, naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from espnet_pathways.data.audio import decode_problem, error_text
from fake_mls_release import truncate_file


def _flac(path: Path, frames: int = 40000) -> Path:
    sf.write(str(path), (0.1 * np.random.default_rng(0).standard_normal(frames)).astype(np.float32), 16000, format="FLAC")
    return path


def test_good_file_decodes_in_blocks(tmp_path: Path) -> None:
    assert decode_problem(str(_flac(tmp_path / "a.flac")), 40000, block_frames=1000) is None


def test_truncated_or_short_file_is_named(tmp_path: Path) -> None:
    path = _flac(tmp_path / "a.flac")
    assert decode_problem(str(path), 40001) == f"cannot decode audio {path} (truncated or corrupt): decoded 40000 samples, its header says 40001"
    truncate_file(path)
    assert sf.info(str(path)).frames == 40000
    assert decode_problem(str(path), 40000).startswith(f"cannot decode audio {path} (truncated or corrupt): ")


def test_error_text_survives_a_broken_str() -> None:
    class Broken(RuntimeError):
        def __str__(self) -> str:
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")

    assert error_text(Broken()) == "Broken"
    assert error_text(RuntimeError("lost sync")) == "lost sync"
