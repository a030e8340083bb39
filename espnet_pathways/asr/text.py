"""Language-independent detokenisation of model output pieces.

SentencePiece pieces carry "▁" for a word start and character token lists use ESPnet's
``<space>``; both become a space, so one rule serves every language's pieces in a merged list.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["detokenize", "SPM_SPACE"]

SPM_SPACE = "\u2581"


def detokenize(tokens: Sequence[str], space_symbol: str = "<space>") -> str:
    """Join pieces and turn word-boundary markers into single spaces.

    >>> detokenize(["▁he", "llo", "▁wor", "ld"])
    'hello world'
    >>> detokenize(["h", "i", "<space>", "y", "o"])
    'hi yo'
    """
    text = "".join(tokens).replace(space_symbol, " ").replace(SPM_SPACE, " ")
    return " ".join(text.split())
