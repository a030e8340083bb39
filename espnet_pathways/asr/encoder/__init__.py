"""Streaming encoders registered in ESPnet's ``encoder_choices``."""

from espnet_pathways.asr.encoder.emformer import EmformerEncoder, EmformerEncoderState, iter_chunks

__all__ = ["EmformerEncoder", "EmformerEncoderState", "iter_chunks"]
