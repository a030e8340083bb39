"""Streaming-safe input blocks of the Emformer encoder: a causal convolution stack and frame stacking.

Both blocks look only backwards in time (the convolution) or inside one stacking window (the
stacking), so a chunk-by-chunk pass with carried state reproduces the full-utterance pass exactly.

Dimension legend:
    B: batch, T: input frames (feature rate), T': stacked frames (T // stride),
    F: input features, C: convolution channels, D: model dimension, K: convolution kernel size.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch

__all__ = ["CausalConvStack", "FrameStacking"]


class CausalConvStack(torch.nn.Module):
    """Stack of causal 1-D convolutions over time (each followed by GELU).

    A layer's output at frame t depends on its input at frames t-K+1..t. The streaming state of a
    layer is its last K-1 input frames; a cold start uses zeros, which is what the full-utterance
    pass pads with.

    Args:
        input_size: F, features per input frame.
        channels: C, output channels of every layer.
        num_layers: number of convolution layers (>= 1).
        kernel_size: K, temporal kernel size (>= 1).
    """

    def __init__(self, input_size: int, channels: int, num_layers: int, kernel_size: int = 5) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"CausalConvStack needs num_layers >= 1, got {num_layers}")
        if kernel_size < 1:
            raise ValueError(f"CausalConvStack needs kernel_size >= 1, got {kernel_size}")
        self.kernel_size = kernel_size
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv1d(input_size if i == 0 else channels, channels, kernel_size) for i in range(num_layers)
        )
        self.activation = torch.nn.GELU()
        self._output_size = channels

    def output_size(self) -> int:
        """C, channels per output frame."""
        return self._output_size

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        """Full-sequence pass with causal zero padding.

        Args:
            xs (Tensor): (B, T, F)
        Returns:
            Tensor: (B, T, C)
        """
        h = xs.transpose(1, 2)
        for conv in self.convs:
            h = self.activation(conv(torch.nn.functional.pad(h, (self.kernel_size - 1, 0))))
        return h.transpose(1, 2)

    def infer(
        self, xs: torch.Tensor, shift: int, cache: Optional[List[torch.Tensor]]
    ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Chunk pass with explicit state.

        Args:
            xs (Tensor): (B, N, F), N frames of this chunk; frames from ``shift`` on are look-ahead that
                the next chunk sees again.
            shift: frames by which the next chunk starts later than this one (<= N).
            cache (list of Tensor or None): per layer (B, K-1, C_in), the layer's input frames just before
                this chunk; None is a cold start.
        Returns:
            Tensor: (B, N, C)
            list of Tensor: per layer (B, K-1, C_in), the cache for the next chunk.
        """
        context = self.kernel_size - 1
        if shift < context:
            raise ValueError(f"chunk shift ({shift} frames) must be >= kernel_size - 1 ({context})")
        new_cache: List[torch.Tensor] = []
        h = xs
        for i, conv in enumerate(self.convs):
            if cache is None:
                past = h.new_zeros(h.size(0), context, h.size(2))
            else:
                past = cache[i]
            new_cache.append(h[:, shift - context : shift])
            full = torch.cat([past, h], dim=1).transpose(1, 2)
            h = self.activation(conv(full)).transpose(1, 2)
        return h, new_cache


class FrameStacking(torch.nn.Module):
    """Time reduction: concatenate ``stride`` consecutive frames, then project linearly to D.

    A remainder of fewer than ``stride`` frames at the end is dropped (T' = T // stride).

    Args:
        input_size: F, features per input frame.
        output_size: D.
        stride: frames stacked into one.
    """

    def __init__(self, input_size: int, output_size: int, stride: int) -> None:
        super().__init__()
        if stride < 1:
            raise ValueError(f"time_reduction_stride must be >= 1, got {stride}")
        self.stride = stride
        self.proj = torch.nn.Linear(input_size * stride, output_size)

    def forward(self, xs: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Stack and project.

        Args:
            xs (Tensor): (B, T, F)
            lengths (Tensor): (B,) valid input frames.
        Returns:
            Tensor: (B, T', D)
            Tensor: (B,) valid stacked frames, lengths // stride.
        """
        b, t, f = xs.shape
        t_out = t // self.stride
        stacked = xs[:, : t_out * self.stride].reshape(b, t_out, f * self.stride)
        return self.proj(stacked), torch.div(lengths, self.stride, rounding_mode="floor")
