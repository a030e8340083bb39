"""Worker that turns one planned utterance into a FLAC file (runs in a pool process)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from espnet_pathways.data.espeak import espeak_synthesize, to_corpus_audio
from espnet_pathways.data.mini_mls_plan import MAX_SECONDS, MIN_SECONDS, UttPlan
from espnet_pathways.data.mls_format import SAMPLE_RATE

__all__ = ["SynthJob", "SynthResult", "synthesize_utterance", "init_worker"]

MAX_TRIES = 8


@dataclass(frozen=True)
class SynthJob:
    """A planned utterance, the espeak-ng base voice and the FLAC path to write."""

    plan: UttPlan
    voice: str
    path: str


@dataclass(frozen=True)
class SynthResult:
    """What was written: id, final text and number of 16 kHz samples."""

    utt: str
    text: str
    num_samples: int


def init_worker() -> None:
    """Pool initializer: one torch thread per process (the pool already uses the cores)."""
    import torch

    torch.set_num_threads(1)


def synthesize_utterance(job: SynthJob) -> SynthResult:
    """Speak the draft sentence, adjusting its word count until it lasts 1.5–4 s, and write FLAC.

    The result depends only on ``job`` (espeak-ng is deterministic; noise has its own seed).
    """
    plan = job.plan
    speaker = plan.speaker
    voice = f"{job.voice}+{speaker.variant}"
    n = plan.n_words
    step = 0
    for _ in range(MAX_TRIES):
        text = " ".join(plan.words[:n])
        samples, rate = espeak_synthesize(text, voice, speaker.rate, speaker.pitch)
        seconds = len(samples) / rate
        if seconds > MAX_SECONDS and n > 1 and step <= 0:
            n, step = n - 1, -1
        elif seconds < MIN_SECONDS and n < len(plan.words) and step >= 0:
            n, step = n + 1, 1
        else:
            break
    audio = to_corpus_audio(samples, rate, SAMPLE_RATE, plan.snr_db, np.random.default_rng(plan.noise_seed))
    path = Path(job.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return SynthResult(str(plan.utt), text, int(audio.shape[0]))
