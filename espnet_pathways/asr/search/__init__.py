"""Transducer search: batched greedy and single-utterance beam search, both resumable per chunk."""

from espnet_pathways.asr.search.beam import BeamHypothesis, beam_search, initial_hypotheses
from espnet_pathways.asr.search.greedy import GreedyState, greedy_search

__all__ = ["BeamHypothesis", "GreedyState", "beam_search", "greedy_search", "initial_hypotheses"]
