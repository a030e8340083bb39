"""Transducer joint network: project both sides, add, activate, classify.

Dimension legend: B: batch, T: encoder frames, U: predictor steps, J: joint size, V: vocabulary.
"""

from __future__ import annotations

from typing import Optional

import torch

__all__ = ["Joiner"]

_ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "gelu": torch.nn.GELU}


class Joiner(torch.nn.Module):
    """``out(act(W_e enc + W_p pred))``.

    The projections are exposed separately so that search projects each encoder frame and each
    predictor output once.

    :meth:`restrict_output` limits the symbols it can score (a language of a model that later
    languages were added to): the others get the lowest finite logit, so softmax, search and the
    loss see exactly the vocabulary the language was trained with.

    Args:
        vocab_size: V.
        encoder_size: encoder output size.
        predictor_size: predictor output size.
        joint_size: J.
        activation: "tanh", "relu" or "gelu".
        dropout: dropout after the activation.
    """

    def __init__(
        self,
        vocab_size: int,
        encoder_size: int,
        predictor_size: int,
        joint_size: int = 256,
        activation: str = "tanh",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"joiner_conf.activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.encoder_proj = torch.nn.Linear(encoder_size, joint_size)
        self.predictor_proj = torch.nn.Linear(predictor_size, joint_size, bias=False)
        self.activation = _ACTIVATIONS[activation]()
        self.dropout = torch.nn.Dropout(dropout)
        self.output = torch.nn.Linear(joint_size, vocab_size)
        self.output_limit: Optional[int] = None
        self._blocked: Optional[torch.Tensor] = None

    def restrict_output(self, limit: Optional[int]) -> None:
        """Score only symbols ``< limit`` and the last one (``<sos/eos>``); None: every symbol."""
        vocab = self.output.out_features
        if limit is not None and not 0 < limit < vocab:
            raise ValueError(f"output limit {limit} outside (0, {vocab})")
        if limit is None or limit == vocab - 1:
            limit = None
        if limit != self.output_limit:
            self.output_limit, self._blocked = limit, None

    def _restricted(self, logits: torch.Tensor) -> torch.Tensor:
        if self.output_limit is None:
            return logits
        blocked = self._blocked
        if blocked is None or blocked.device != logits.device:
            blocked = torch.zeros(logits.size(-1), dtype=torch.bool, device=logits.device)
            blocked[self.output_limit : -1] = True
            self._blocked = blocked
        return logits.masked_fill(blocked, torch.finfo(logits.dtype).min)

    def joint(self, enc_proj: torch.Tensor, pred_proj: torch.Tensor) -> torch.Tensor:
        """Combine already projected inputs (broadcasting).

        Args:
            enc_proj (Tensor): (..., J), e.g. (B, T, 1, J)
            pred_proj (Tensor): (..., J), e.g. (B, 1, U, J)
        Returns:
            Tensor: (..., V) unnormalised logits.
        """
        return self._restricted(self.output(self.dropout(self.activation(enc_proj + pred_proj))))

    def forward(self, enc_out: torch.Tensor, pred_out: torch.Tensor) -> torch.Tensor:
        """Full lattice of logits.

        Args:
            enc_out (Tensor): (B, T, D_enc)
            pred_out (Tensor): (B, U, D_pred)
        Returns:
            Tensor: (B, T, U, V)
        """
        return self.joint(self.encoder_proj(enc_out).unsqueeze(2), self.predictor_proj(pred_out).unsqueeze(1))
