"""Deterministic training of one language's SentencePiece model.

The model is trained from an iterator of sentences in memory (no temporary input file), on one
thread, with a fixed random seed, so the same text and options give the same model bytes.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Iterable, List

import sentencepiece as spm

__all__ = ["SpmOptions", "MODEL_TYPES", "train_sentencepiece", "model_pieces"]

MODEL_TYPES = ("unigram", "bpe", "char")

# Large enough for any alphabet: a char model keeps every character of the training text.
_CHAR_VOCAB_SIZE = 100_000


@dataclass(frozen=True)
class SpmOptions:
    """Options of one SentencePiece model.

    Attributes:
        model_type: ``unigram``, ``bpe`` or ``char``.
        vocab_size: pieces including ``<unk>``; ignored for ``char`` (every character is kept).
        seed: SentencePiece's random generator seed.
        character_coverage: fraction of characters covered (1.0 keeps every character).
        hard_vocab_limit: fail when the text cannot yield ``vocab_size`` pieces (else fewer).
        normalization_rule_name: SentencePiece normaliser; ``identity`` keeps the text as is so
            that decoding gives back the transcript exactly (normalisation is data prep's job).
    """

    model_type: str = "unigram"
    vocab_size: int = 512
    seed: int = 0
    character_coverage: float = 1.0
    hard_vocab_limit: bool = True
    normalization_rule_name: str = "identity"

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {self.model_type!r}")
        if self.model_type != "char" and self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {self.vocab_size}")
        if not 0.0 < self.character_coverage <= 1.0:
            raise ValueError(f"character_coverage must be in (0, 1], got {self.character_coverage}")


def train_sentencepiece(sentences: Iterable[str], options: SpmOptions, name: str = "") -> bytes:
    """Train a SentencePiece model on ``sentences`` and return the serialized model.

    Args:
        sentences: training sentences; blank ones are skipped.
        options: see :class:`SpmOptions`.
        name: used in error messages and logs (e.g. the language code).

    Raises:
        ValueError: no non-blank sentence, or SentencePiece rejects the options
            (e.g. ``vocab_size`` too high for the text with ``hard_vocab_limit``).
    """
    lines: List[str] = [s.strip() for s in sentences if s.strip()]
    if not lines:
        raise ValueError(f"{name or 'sentencepiece'}: no non-empty training sentence")
    char = options.model_type == "char"
    writer = io.BytesIO()
    spm.set_random_generator_seed(options.seed)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=writer,
            model_type=options.model_type,
            vocab_size=_CHAR_VOCAB_SIZE if char else options.vocab_size,
            hard_vocab_limit=False if char else options.hard_vocab_limit,
            character_coverage=options.character_coverage,
            normalization_rule_name=options.normalization_rule_name,
            num_threads=1,
            unk_id=0,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            minloglevel=2,
        )
    except RuntimeError as exc:
        raise ValueError(f"{name or 'sentencepiece'}: training failed: {exc}") from exc
    model = writer.getvalue()
    size = spm.SentencePieceProcessor(model_proto=model).get_piece_size()
    if not char and size < options.vocab_size:
        logging.warning("%s: asked for %d pieces, the text gave %d", name, options.vocab_size, size)
    logging.info("%s: %s model with %d pieces from %d sentences", name, options.model_type, size, len(lines))
    return model


def model_pieces(model: bytes) -> List[str]:
    """All pieces of a serialized model, in id order."""
    sp = spm.SentencePieceProcessor(model_proto=model)
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
