"""Batched greedy transducer search, resumable across encoder chunks.

Dimension legend: B: batch, T: encoder frames, D: encoder size, H: predictor size, J: joint size.

At each frame the most likely symbol is taken; a non-blank symbol advances the predictor and the
same frame is read again, up to ``max_symbols_per_frame`` symbols. Feeding the encoder output in
chunks with the returned :class:`GreedyState` gives the same result as one call over all frames.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional

import torch

from espnet_pathways.asr.transducer.joiner import Joiner
from espnet_pathways.asr.transducer.predictor import LSTMPredictor, PredictorState

__all__ = ["GreedyState", "greedy_search"]


@dataclasses.dataclass
class GreedyState:
    """Search state of a batch after some frames.

    Attributes:
        tokens: per utterance, the emitted label ids.
        scores: (B,) summed log-probabilities of the chosen symbols (blanks included).
        pred_proj: (B, 1, J) projected predictor output for the last label.
        pred_state: predictor (h, c) after the last label.
    """

    tokens: List[List[int]]
    scores: torch.Tensor
    pred_proj: torch.Tensor
    pred_state: PredictorState


def _start(predictor: LSTMPredictor, joiner: Joiner, batch: int, device: torch.device) -> GreedyState:
    """Cold-start state: the predictor has read the start symbol (blank)."""
    start = torch.full((batch, 1), predictor.blank_id, dtype=torch.long, device=device)
    out, state = predictor.infer(start, None)
    return GreedyState([[] for _ in range(batch)], torch.zeros(batch, device=device), joiner.predictor_proj(out), state)


@torch.no_grad()
def greedy_search(
    predictor: LSTMPredictor,
    joiner: Joiner,
    enc_out: torch.Tensor,
    enc_lens: torch.Tensor,
    state: Optional[GreedyState] = None,
    max_symbols_per_frame: int = 3,
) -> GreedyState:
    """Greedy search over ``enc_out``, continuing from ``state``.

    Args:
        predictor: prediction network (its ``blank_id`` is the blank symbol).
        joiner: joint network.
        enc_out (Tensor): (B, T, D) encoder frames.
        enc_lens (Tensor): (B,) valid frames.
        state: state after the previous chunk; None starts fresh.
        max_symbols_per_frame: cap on non-blank symbols emitted at one frame.
    Returns:
        GreedyState: updated state; ``tokens`` holds the hypotheses so far.
    """
    batch = enc_out.size(0)
    if state is None:
        state = _start(predictor, joiner, batch, enc_out.device)
    blank = predictor.blank_id
    tokens = [list(t) for t in state.tokens]
    scores = state.scores.clone()
    pred_proj = state.pred_proj
    h, c = state.pred_state
    enc_proj = joiner.encoder_proj(enc_out)
    for t in range(enc_out.size(1)):
        active = t < enc_lens
        if not bool(active.any()):
            break
        frame = enc_proj[:, t : t + 1]
        # After max_symbols_per_frame symbols the search moves on without scoring a closing blank.
        for _ in range(max_symbols_per_frame):
            logp = torch.log_softmax(joiner.joint(frame, pred_proj)[:, 0], dim=-1)
            best_logp, best = logp.max(dim=-1)
            scores = scores + torch.where(active, best_logp, torch.zeros_like(best_logp))
            emit = active & (best != blank)
            if not bool(emit.any()):
                break
            for b in torch.nonzero(emit).flatten().tolist():
                tokens[b].append(int(best[b]))
            out, (h_new, c_new) = predictor.infer(best.unsqueeze(1), (h, c))
            sel = emit.view(1, -1, 1)
            h = torch.where(sel, h_new, h)
            c = torch.where(sel, c_new, c)
            pred_proj = torch.where(emit.view(-1, 1, 1), joiner.predictor_proj(out), pred_proj)
            active = emit
    return GreedyState(tokens, scores, pred_proj, (h, c))
