"""LSTM prediction network (the transducer's label-side "decoder").

Dimension legend: B: batch, U: label steps, E: embedding size, H: hidden size, L: LSTM layers.

The predictor reads the previous label (blank = start symbol) and returns one output per step.
``forward`` runs a whole label sequence (training); ``infer`` runs one step per hypothesis with an
explicit (h, c) state (search), None meaning a cold start.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

__all__ = ["LSTMPredictor", "PredictorState"]

PredictorState = Tuple[torch.Tensor, torch.Tensor]
"""(h, c), each (L, B, H)."""


class LSTMPredictor(torch.nn.Module):
    """Embedding -> dropout -> LSTM -> [LayerNorm] -> dropout.

    Args:
        vocab_size: V, including blank (0).
        embed_dim: E.
        hidden_size: H, LSTM units and output size.
        num_layers: L.
        dropout: dropout on embeddings, between LSTM layers and on the output.
        layer_norm: apply LayerNorm to the LSTM output.
        blank_id: index of blank, used as the start symbol and as padding.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 256,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.1,
        layer_norm: bool = True,
        blank_id: int = 0,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"predictor_conf.num_layers must be >= 1, got {num_layers}")
        self.blank_id = blank_id
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.embed = torch.nn.Embedding(vocab_size, embed_dim, padding_idx=blank_id)
        self.lstm = torch.nn.LSTM(
            embed_dim, hidden_size, num_layers=num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
        )
        self.norm = torch.nn.LayerNorm(hidden_size) if layer_norm else torch.nn.Identity()
        self.dropout = torch.nn.Dropout(dropout)

    def output_size(self) -> int:
        """H."""
        return self.hidden_size

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        """Run the predictor over label sequences preceded by the start symbol.

        Args:
            labels (Tensor): (B, U) label ids; padding (negative ids) is read as blank.
        Returns:
            Tensor: (B, U + 1, H), output t conditioned on labels[:, :t].
        """
        start = labels.new_full((labels.size(0), 1), self.blank_id)
        tokens = torch.cat([start, labels.masked_fill(labels < 0, self.blank_id)], dim=1)
        out, _ = self.lstm(self.dropout(self.embed(tokens)))
        return self.dropout(self.norm(out))

    def infer(
        self, tokens: torch.Tensor, state: Optional[PredictorState] = None
    ) -> Tuple[torch.Tensor, PredictorState]:
        """One or more steps with explicit state.

        Args:
            tokens (Tensor): (B, U') previous labels (blank for the first step).
            state: (h, c) each (L, B, H), or None for a cold start.
        Returns:
            Tensor: (B, U', H)
            PredictorState: updated (h, c).
        """
        out, new_state = self.lstm(self.dropout(self.embed(tokens)), state)
        return self.dropout(self.norm(out)), new_state
