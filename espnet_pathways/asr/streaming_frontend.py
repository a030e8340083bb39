"""Incremental feature extraction: audio chunks in, final feature frames out.

Dimension legend: N: samples, T: frames, F: features.

ESPnet's ``DefaultFrontend`` computes frame i from the samples within ``n_fft // 2`` of sample
``i * hop`` (centred STFT, reflect padding at both ends of the utterance). A frame is emitted
once all of its samples have arrived, so the frames equal those of the whole-utterance frontend:
each call re-runs the frontend on a short window that starts enough whole hops before the first
pending frame for the window's own left padding not to reach it. ``finish`` emits the remaining
frames with the utterance-end padding. Normalisation must be frame-wise (global MVN or none).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.layers.utterance_mvn import UtteranceMVN

__all__ = ["StreamingFeatureExtractor"]


class StreamingFeatureExtractor:
    """Feed audio with :meth:`accept`, collect final frames; :meth:`finish` flushes the end.

    Args:
        frontend: an ESPnet frontend with a centred STFT (``frontend.stft.n_fft``,
            ``frontend.stft.hop_length``, ``frontend.stft.center``), e.g. ``DefaultFrontend``.
        normalize: frame-wise normalisation (e.g. ``GlobalMVN``) or None.
    """

    def __init__(self, frontend: torch.nn.Module, normalize: Optional[AbsNormalize] = None) -> None:
        stft = getattr(frontend, "stft", None)
        if stft is None or not getattr(stft, "center", False):
            raise ValueError(
                f"streaming needs a frontend with a centred STFT (e.g. 'default'), got {type(frontend).__name__}"
            )
        if isinstance(normalize, UtteranceMVN):
            raise ValueError("streaming needs frame-wise normalisation (normalize: global_mvn or null), not utterance_mvn")
        self.frontend = frontend
        self.normalize = normalize
        tensors = [*frontend.parameters(), *frontend.buffers()]
        self.device = tensors[0].device if tensors else torch.device("cpu")
        self.hop = int(stft.hop_length)
        self.half = int(stft.n_fft) // 2
        # frames of context before the first pending one: enough for the window's own left padding
        # not to reach it, plus one so that the window is always longer than that padding
        self.lead_frames = math.ceil(self.half / self.hop) + 1
        self.reset()

    def reset(self) -> None:
        """Forget all audio: the next call starts a new utterance."""
        self.audio = torch.zeros(0)
        self.offset = 0  # global index of self.audio[0]
        self.next_frame = 0  # global index of the next frame to emit
        self.total = 0  # samples received

    def _frames(self, first: int, end_sample: int, count: Optional[int]) -> torch.Tensor:
        """Frames ``first``..``first + count - 1`` (all remaining if None) from samples up to ``end_sample``."""
        start_frame = max(first - self.lead_frames, 0)
        start_sample = start_frame * self.hop
        window = self.audio[start_sample - self.offset : end_sample - self.offset]
        if window.numel() <= self.half:
            return torch.zeros(0, self.frontend.output_size(), device=self.device)
        with torch.no_grad():
            lengths = torch.tensor([window.numel()], device=self.device)
            feats, lens = self.frontend(window.to(self.device).unsqueeze(0), lengths)
            if self.normalize is not None:
                feats, lens = self.normalize(feats, lens)
        skip = first - start_frame
        feats = feats[0, skip:]
        return feats if count is None else feats[:count]

    def _trim(self) -> None:
        """Drop samples that no pending frame needs."""
        keep_from = max(self.next_frame - self.lead_frames, 0) * self.hop
        if keep_from > self.offset:
            self.audio = self.audio[keep_from - self.offset :]
            self.offset = keep_from

    def accept(self, samples: torch.Tensor) -> torch.Tensor:
        """Add samples; return the frames that became final.

        Args:
            samples (Tensor): (N,) waveform.
        Returns:
            Tensor: (T, F) new frames (T may be 0), on the frontend's device.
        """
        samples = torch.as_tensor(samples, dtype=torch.float32).reshape(-1).cpu()
        self.audio = torch.cat([self.audio, samples])
        self.total += samples.numel()
        # frame i is final once sample i * hop + half - 1 has arrived
        ready = (self.total - self.half) // self.hop + 1 if self.total >= self.half else 0
        count = ready - self.next_frame
        if count <= 0:
            return torch.zeros(0, self.frontend.output_size(), device=self.device)
        end_sample = (ready - 1) * self.hop + self.half
        feats = self._frames(self.next_frame, end_sample, count)
        self.next_frame += feats.size(0)
        self._trim()
        return feats

    def finish(self) -> torch.Tensor:
        """Return the remaining frames (end of utterance, reflect padding as the full frontend does).

        Returns:
            Tensor: (T, F) the last frames (T may be 0).
        """
        n_frames = self.total // self.hop + 1 if self.total > self.half else 0
        if n_frames <= self.next_frame:
            return torch.zeros(0, self.frontend.output_size(), device=self.device)
        feats = self._frames(self.next_frame, self.total, n_frames - self.next_frame)
        self.next_frame += feats.size(0)
        return feats
