"""Streaming Emformer encoder for ESPnet (registered as ``encoder: emformer``).

Pipeline: [causal conv stack] -> frame stacking by ``time_reduction_stride`` + linear -> Emformer
(torchaudio). The right-context padding that Emformer's training forward expects is added here.

Dimension legend:
    B: batch, T: input frames (feature rate, e.g. 10 ms), T': encoder frames (T // stride),
    F: input features, D: model dimension (``output_size``), S: segment length, R: right context
    (both in encoder frames), s: time-reduction stride.

Streaming contract: ``forward`` is Emformer's full-utterance streaming-mode pass (every segment sees
only its own S frames, R look-ahead frames, left context and memory). ``infer`` consumes one chunk of
``chunk_length = (S + R) * s`` input frames, advances by ``chunk_shift = S * s`` frames and returns S
encoder frames; chunks produced by :func:`iter_chunks` reproduce ``forward`` to float tolerance.
Every utterance is processed as if padded with zero frames to a whole number of segments plus R
frames, in both passes.

Usage:
    >>> enc = EmformerEncoder(80, output_size=144, num_layers=2, num_heads=4, ffn_dim=576)
    >>> out, olens, _ = enc(feats, feats_lengths)                # training / full utterance
    >>> state = None
    >>> for chunk, lengths in iter_chunks(feats, feats_lengths, enc.chunk_length, enc.chunk_shift, enc.stride):
    ...     out, olens, state = enc.infer(chunk, lengths, state)  # streaming
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterator, List, Optional, Tuple

import torch
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from torchaudio.models import Emformer

from espnet_pathways.asr.encoder.subsampling import CausalConvStack, FrameStacking

__all__ = ["EmformerEncoder", "EmformerEncoderState", "iter_chunks"]


@dataclasses.dataclass
class EmformerEncoderState:
    """Streaming state of :class:`EmformerEncoder` after one ``infer`` call.

    Attributes:
        conv_cache: per convolution layer (B, K-1, C_in); empty without a convolution stack.
        emformer: torchaudio Emformer's per-layer state lists.
        frames: input frames consumed so far (multiples of ``chunk_shift``).
    """

    conv_cache: List[torch.Tensor]
    emformer: List[List[torch.Tensor]]
    frames: int


def _valid_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, max_len) True where the frame index is below ``lengths``."""
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class EmformerEncoder(AbsEncoder):
    """Emformer encoder with time reduction and streaming inference.

    Args:
        input_size: F, input feature dimension (given by ESPnet's task).
        output_size: D, model dimension of the Emformer layers and of the output.
        num_layers: Emformer layers.
        num_heads: attention heads (D must be divisible by it).
        ffn_dim: hidden size of each layer's feed-forward block.
        dropout: dropout inside the Emformer layers.
        activation: feed-forward activation, "relu", "gelu" or "silu".
        time_reduction_stride: s, input frames stacked into one encoder frame.
        segment_length: S, encoder frames per segment.
        right_context_length: R, look-ahead encoder frames per segment.
        left_context_length: encoder frames of left context each segment attends to.
        max_memory_size: Emformer memory bank size (0 = no memory).
        conv_layers: causal convolution layers before stacking (0 = none).
        conv_channels: C, channels of those layers.
        conv_kernel_size: K, their kernel size.
        weight_init_scale_strategy: torchaudio's per-layer init scaling ("depthwise", "constant", None).
        tanh_on_mem: apply tanh to memory elements.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int = 256,
        num_layers: int = 4,
        num_heads: int = 4,
        ffn_dim: int = 1024,
        dropout: float = 0.1,
        activation: str = "gelu",
        time_reduction_stride: int = 4,
        segment_length: int = 4,
        right_context_length: int = 1,
        left_context_length: int = 0,
        max_memory_size: int = 0,
        conv_layers: int = 0,
        conv_channels: int = 256,
        conv_kernel_size: int = 5,
        weight_init_scale_strategy: Optional[str] = "depthwise",
        tanh_on_mem: bool = False,
    ) -> None:
        super().__init__()
        if segment_length < 1:
            raise ValueError(f"encoder_conf.segment_length must be >= 1, got {segment_length}")
        if right_context_length < 0 or left_context_length < 0 or max_memory_size < 0:
            raise ValueError("encoder_conf: right/left context lengths and max_memory_size must be >= 0")
        if output_size % num_heads != 0:
            raise ValueError(f"encoder_conf.output_size ({output_size}) must be divisible by num_heads ({num_heads})")
        self._output_size = output_size
        self.stride = time_reduction_stride
        self.segment_length = segment_length
        self.right_context_length = right_context_length
        if conv_layers > 0:
            self.conv: Optional[CausalConvStack] = CausalConvStack(
                input_size, conv_channels, conv_layers, conv_kernel_size
            )
            stack_input = conv_channels
            if conv_kernel_size - 1 > segment_length * time_reduction_stride:
                raise ValueError(
                    f"encoder_conf.conv_kernel_size - 1 ({conv_kernel_size - 1}) must not exceed one segment "
                    f"of input frames ({segment_length * time_reduction_stride})"
                )
        else:
            self.conv = None
            stack_input = input_size
        self.stacking = FrameStacking(stack_input, output_size, time_reduction_stride)
        self.emformer = Emformer(
            input_dim=output_size,
            num_heads=num_heads,
            ffn_dim=ffn_dim,
            num_layers=num_layers,
            segment_length=segment_length,
            dropout=dropout,
            activation=activation,
            left_context_length=left_context_length,
            right_context_length=right_context_length,
            max_memory_size=max_memory_size,
            weight_init_scale_strategy=weight_init_scale_strategy,
            tanh_on_mem=tanh_on_mem,
        )

    def output_size(self) -> int:
        """D."""
        return self._output_size

    @property
    def chunk_length(self) -> int:
        """Input frames per ``infer`` call: (S + R) * s."""
        return (self.segment_length + self.right_context_length) * self.stride

    @property
    def chunk_shift(self) -> int:
        """Input frames between the starts of consecutive chunks: S * s."""
        return self.segment_length * self.stride

    def _embed(self, xs: torch.Tensor, ilens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Convolution stack + stacking + zeroing of frames past each length. (B, T, F) -> (B, T', D)."""
        h = self.conv(xs) if self.conv is not None else xs
        h, lengths = self.stacking(h, ilens)
        h = h.masked_fill(~_valid_mask(lengths, h.size(1)).unsqueeze(-1), 0.0)
        return h, lengths

    def forward(
        self,
        xs_pad: torch.Tensor,
        ilens: torch.Tensor,
        prev_states: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, None]:
        """Full-utterance streaming-mode pass (Emformer's training forward).

        Args:
            xs_pad (Tensor): (B, T, F) padded input features.
            ilens (Tensor): (B,) valid input frames; not modified.
            prev_states: must be None (state is carried by ``infer`` only).
        Returns:
            Tensor: (B, T', D) with T' = max(ilens) // s.
            Tensor: (B,) ilens // s.
            None
        """
        if prev_states is not None:
            raise ValueError("EmformerEncoder.forward does not take prev_states; use infer() for streaming")
        xs_pad = xs_pad[:, : int(ilens.max())]
        h, olens = self._embed(xs_pad, ilens)
        t_out = h.size(1)
        if t_out == 0:
            return h, olens, None
        seg = self.segment_length
        padded = math.ceil(t_out / seg) * seg
        h = torch.nn.functional.pad(h, (0, 0, 0, padded - t_out + self.right_context_length))
        # Each utterance is treated as complete segments of (zeroed) frames, as in chunked inference.
        seg_lengths = torch.div(olens + seg - 1, seg, rounding_mode="floor") * seg
        out, _ = self.emformer(h, seg_lengths)
        return out[:, :t_out], olens, None

    def infer(
        self,
        chunk: torch.Tensor,
        lengths: torch.Tensor,
        states: Optional[EmformerEncoderState] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, EmformerEncoderState]:
        """Encode one chunk with carried state.

        Args:
            chunk (Tensor): (B, (S + R) * s, F) input frames starting at ``states.frames``; zero-padded past
                the end of the utterance.
            lengths (Tensor): (B,) valid input frames in ``chunk`` (0..(S + R) * s).
            states: state returned by the previous call; None for a cold start.
        Returns:
            Tensor: (B, S, D) encoder frames of this segment.
            Tensor: (B,) valid encoder frames in the output (0..S).
            EmformerEncoderState: state for the next chunk.
        """
        if chunk.size(1) != self.chunk_length:
            raise ValueError(f"infer expects chunks of {self.chunk_length} input frames, got {chunk.size(1)}")
        if self.conv is not None:
            h, conv_cache = self.conv.infer(chunk, self.chunk_shift, None if states is None else states.conv_cache)
        else:
            h, conv_cache = chunk, []
        valid = torch.clamp(lengths, min=0, max=self.chunk_length)
        h, frames_valid = self.stacking(h, valid)
        h = h.masked_fill(~_valid_mask(frames_valid, h.size(1)).unsqueeze(-1), 0.0)
        full = torch.full_like(lengths, h.size(1))
        out, _, emformer_state = self.emformer.infer(h, full, None if states is None else states.emformer)
        out_lens = torch.clamp(frames_valid, max=self.segment_length)
        frames = (0 if states is None else states.frames) + self.chunk_shift
        return out, out_lens, EmformerEncoderState(conv_cache, emformer_state, frames)


def iter_chunks(
    xs_pad: torch.Tensor, ilens: torch.Tensor, chunk_length: int, chunk_shift: int, stride: int = 1
) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """Cut padded features into the overlapping chunks that ``EmformerEncoder.infer`` consumes.

    A chunk is yielded while it starts inside the whole encoder frames (``stride`` input frames
    each) of the longest utterance, so the chunk count equals the number of (possibly partial)
    segments of the full-utterance pass; input shorter than one encoder frame yields no chunk.

    Args:
        xs_pad (Tensor): (B, T, F)
        ilens (Tensor): (B,)
        chunk_length: input frames per chunk ((S + R) * s).
        chunk_shift: input frames between chunk starts (S * s).
        stride: s, input frames per encoder frame.
    Yields:
        Tensor: (B, chunk_length, F) chunk, zero-padded past T.
        Tensor: (B,) valid frames of each utterance in the chunk.
    """
    max_len = int(ilens.max()) if ilens.numel() > 0 else 0
    usable = (max_len // stride) * stride
    start = 0
    while start < usable:
        piece = xs_pad[:, start : start + chunk_length]
        if piece.size(1) < chunk_length:
            piece = torch.nn.functional.pad(piece, (0, 0, 0, chunk_length - piece.size(1)))
        lengths = torch.clamp(ilens - start, min=0, max=chunk_length)
        yield piece, lengths
        start += chunk_shift
