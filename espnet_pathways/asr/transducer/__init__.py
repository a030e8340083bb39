"""Transducer (RNN-T) model parts: LSTM predictor, joiner and the ESPnet model."""

from espnet_pathways.asr.transducer.joiner import Joiner
from espnet_pathways.asr.transducer.model import PathwaysTransducerModel
from espnet_pathways.asr.transducer.predictor import LSTMPredictor

__all__ = ["Joiner", "LSTMPredictor", "PathwaysTransducerModel"]
