"""Speech from espeak-ng, turned into corpus audio: 16 kHz, light seeded noise, peak-normalised.

espeak-ng is deterministic for a given voice, rate, pitch and text, and the noise comes from a
caller-supplied generator, so the audio is a pure function of its inputs.
"""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import soundfile as sf

__all__ = ["EspeakError", "espeak_synthesize", "to_corpus_audio"]

PEAK = 0.9


class EspeakError(RuntimeError):
    """espeak-ng is missing or failed."""


def espeak_synthesize(text: str, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, int]:
    """Run ``espeak-ng -v <voice> -s <rate> -p <pitch> --stdout <text>``.

    Returns:
        (samples, sample_rate): float32 mono samples in [-1, 1] (espeak-ng writes 22.05 kHz).
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakError("espeak-ng not found on PATH (Debian package 'espeak-ng')")
    cmd = [exe, "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise EspeakError(f"espeak-ng failed (exit {proc.returncode}) for voice {voice!r}, text {text!r}: {err}")
    samples, sample_rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    if samples.ndim != 1:
        samples = samples.mean(axis=1)
    return samples, int(sample_rate)


def to_corpus_audio(
    samples: np.ndarray,
    sample_rate: int,
    target_rate: int,
    snr_db: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Resample to ``target_rate``, add white noise at ``snr_db`` and peak-normalise to 0.9.

    Args:
        samples: (T,) float32 mono.
        rng: source of the noise (one generator per utterance keeps results order-independent).
    Returns:
        (T',) float32 in [-0.9, 0.9].
    """
    import torch
    import torchaudio.functional as F

    wave = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    if sample_rate != target_rate:
        wave = F.resample(wave, sample_rate, target_rate)
    out = wave.numpy().astype(np.float64)
    power = float(np.mean(out**2)) if out.size else 0.0
    if power > 0.0:
        noise_power = power / (10.0 ** (snr_db / 10.0))
        out = out + rng.standard_normal(out.shape[0]) * np.sqrt(noise_power)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > 0.0:
        out = out * (PEAK / peak)
    return out.astype(np.float32)
