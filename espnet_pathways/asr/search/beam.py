"""Transducer beam search for one utterance (Graves 2012, with a per-frame symbol cap), resumable.

Dimension legend: T: encoder frames, D: encoder size, H: predictor size, J: joint size, V: vocabulary,
N: hypotheses being expanded.

At each frame, hypotheses in set A are expanded: ending the frame with blank moves a hypothesis to
set B (merging equal label sequences with log-add), a non-blank label keeps it in A for the same
frame if it can still beat the beam-th best of B; after ``max_symbols_per_frame`` labels a
hypothesis moves on without a closing blank, exactly as greedy search does (so ``beam_size=1``
reproduces greedy search). After the frame, B is pruned to ``beam_size``.
Feeding the encoder output chunk by chunk with the returned hypotheses gives the same result as
one call over all frames.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Tuple

import torch

from espnet_pathways.asr.transducer.joiner import Joiner
from espnet_pathways.asr.transducer.predictor import LSTMPredictor, PredictorState

__all__ = ["BeamHypothesis", "beam_search", "initial_hypotheses"]


@dataclasses.dataclass
class BeamHypothesis:
    """One hypothesis.

    Attributes:
        tokens: emitted label ids (no start symbol).
        score: log-probability of the path(s).
        pred_proj: (J,) projected predictor output after the last label.
        pred_state: predictor (h, c) each (L, 1, H).
    """

    tokens: Tuple[int, ...]
    score: float
    pred_proj: torch.Tensor
    pred_state: PredictorState


def initial_hypotheses(predictor: LSTMPredictor, joiner: Joiner, device: torch.device) -> List[BeamHypothesis]:
    """The single empty hypothesis: the predictor has read the start symbol."""
    start = torch.full((1, 1), predictor.blank_id, dtype=torch.long, device=device)
    out, state = predictor.infer(start, None)
    return [BeamHypothesis((), 0.0, joiner.predictor_proj(out)[0, 0], state)]


def _extend(
    predictor: LSTMPredictor,
    joiner: Joiner,
    bases: List[BeamHypothesis],
    labels: List[int],
    scores: List[float],
) -> List[BeamHypothesis]:
    """Advance the predictor of each base hypothesis by its new label, in one batch."""
    device = bases[0].pred_proj.device
    h = torch.cat([b.pred_state[0] for b in bases], dim=1)
    c = torch.cat([b.pred_state[1] for b in bases], dim=1)
    tokens = torch.tensor(labels, dtype=torch.long, device=device).unsqueeze(1)
    out, (h_new, c_new) = predictor.infer(tokens, (h, c))
    proj = joiner.predictor_proj(out)[:, 0]
    return [
        BeamHypothesis(
            base.tokens + (label,),
            score,
            proj[i],
            (h_new[:, i : i + 1], c_new[:, i : i + 1]),
        )
        for i, (base, label, score) in enumerate(zip(bases, labels, scores))
    ]


def _logaddexp(a: float, b: float) -> float:
    hi, lo = max(a, b), min(a, b)
    return hi + math.log1p(math.exp(lo - hi)) if lo > -math.inf else hi


def _merge(ended: Dict[Tuple[int, ...], BeamHypothesis], hyp: BeamHypothesis, score: float) -> None:
    """Add ``hyp`` with ``score`` to the frame's ended set, log-adding into an equal label sequence."""
    old = ended.get(hyp.tokens)
    if old is None:
        ended[hyp.tokens] = dataclasses.replace(hyp, score=score)
    else:
        ended[hyp.tokens] = dataclasses.replace(old, score=_logaddexp(old.score, score))


@torch.no_grad()
def beam_search(
    predictor: LSTMPredictor,
    joiner: Joiner,
    enc_out: torch.Tensor,
    beam_size: int,
    hyps: Optional[List[BeamHypothesis]] = None,
    max_symbols_per_frame: int = 3,
) -> List[BeamHypothesis]:
    """Beam search over the frames of one utterance, continuing from ``hyps``.

    Args:
        predictor: prediction network (its ``blank_id`` is the blank symbol).
        joiner: joint network.
        enc_out (Tensor): (T, D) valid encoder frames of one utterance.
        beam_size: hypotheses kept after each frame (>= 1).
        hyps: hypotheses after the previous chunk; None starts fresh.
        max_symbols_per_frame: cap on labels one hypothesis may add at one frame.
    Returns:
        list of BeamHypothesis: at most ``beam_size``, best first by score.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if enc_out.dim() != 2:
        raise ValueError(f"beam_search expects (T, D) encoder frames, got shape {tuple(enc_out.shape)}")
    blank = predictor.blank_id
    beam = hyps if hyps is not None else initial_hypotheses(predictor, joiner, enc_out.device)
    enc_proj = joiner.encoder_proj(enc_out)
    for t in range(enc_out.size(0)):
        frame = enc_proj[t]
        expand = beam
        ended: Dict[Tuple[int, ...], BeamHypothesis] = {}
        for step in range(max_symbols_per_frame + 1):
            if step == max_symbols_per_frame:
                # at the cap, hypotheses move to the next frame without a closing blank (as in greedy search)
                for h in expand:
                    _merge(ended, h, h.score)
                break
            pred = torch.stack([h.pred_proj for h in expand])
            logp = torch.log_softmax(joiner.joint(frame.unsqueeze(0), pred), dim=-1)
            for h, lp_blank in zip(expand, logp[:, blank].tolist()):
                _merge(ended, h, h.score + lp_blank)
            cand = torch.tensor([h.score for h in expand], device=logp.device).unsqueeze(1) + logp
            cand[:, blank] = -math.inf
            k = min(beam_size, cand.numel())
            top_scores, top_idx = cand.flatten().topk(k)
            ranked = sorted((h.score for h in ended.values()), reverse=True)
            threshold = ranked[beam_size - 1] if len(ranked) >= beam_size else -math.inf
            vocab = logp.size(1)
            bases, labels, scores = [], [], []
            for s, i in zip(top_scores.tolist(), top_idx.tolist()):
                if s > threshold and s > -math.inf:
                    bases.append(expand[i // vocab])
                    labels.append(i % vocab)
                    scores.append(s)
            if not bases:
                break
            expand = _extend(predictor, joiner, bases, labels, scores)
        beam = sorted(ended.values(), key=lambda h: h.score, reverse=True)[:beam_size]
    return sorted(beam, key=lambda h: h.score, reverse=True)
