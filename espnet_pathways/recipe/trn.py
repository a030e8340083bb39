"""sclite ``trn`` files as ESPnet writes them.

One line per utterance: ``<tokens>\\t(<spk>-<uttid>)``. Word scoring uses the words of the text;
character scoring separates every character by a space and writes word boundaries as
``<space>`` (ESPnet's ``tokenize_text --token_type char``). The id keeps the utterance id whole,
so ids stay unique; sclite takes the part before the first ``-`` as the speaker.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Mapping, Sequence

from espnet_pathways.utils.fileio import atomic_write_text

__all__ = ["SPACE_SYMBOL", "char_tokens", "trn_lines", "write_trn"]

SPACE_SYMBOL = "<space>"
_MODES = ("word", "char")


def char_tokens(text: str) -> List[str]:
    """Characters of the words, with ``<space>`` between words."""
    out: List[str] = []
    for i, word in enumerate(text.split()):
        if i:
            out.append(SPACE_SYMBOL)
        out.extend(word)
    return out


def trn_lines(texts: Mapping[str, str], utt2spk: Mapping[str, str], keys: Sequence[str], mode: str) -> List[str]:
    """trn lines for ``keys`` in order; ``mode`` is ``word`` or ``char``."""
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    tokenize = str.split if mode == "word" else char_tokens
    lines = []
    for key in keys:
        spk = utt2spk[key]
        if "-" in spk or any(c in key for c in "()"):
            raise ValueError(f"speaker {spk!r} or utterance {key!r} cannot be written as a trn id")
        lines.append(f"{' '.join(tokenize(texts[key]))}\t({spk}-{key})\n")
    return lines


def write_trn(path: Path, texts: Mapping[str, str], utt2spk: Mapping[str, str], keys: Sequence[str], mode: str) -> None:
    """Write a trn file atomically (see :func:`trn_lines`)."""
    atomic_write_text(path, "".join(trn_lines(texts, utt2spk, keys, mode)))
