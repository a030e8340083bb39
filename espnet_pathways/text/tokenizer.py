"""Tokenize with one SentencePiece model per language, through one merged token list.

A token-list directory (built by :func:`espnet_pathways.text.build.build_token_list_dir`) holds
``tokens.txt`` and ``<lang>.model`` for each language. Encoding needs the language; decoding does
not (pieces are joined and ``▁`` becomes a space), so hypotheses of any pathway decode alike.

Usage::

    tok = MultilingualTokenizer("data/token_list/bpe_unigram512")
    ids = tok.encode_ids("bonjour tout le monde", "fr")
    text = tok.decode(ids)                       # "bonjour tout le monde"
    fr = tok.for_lang("fr")                      # an ESPnet AbsTokenizer
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Union

import sentencepiece as spm
from espnet2.text.abs_tokenizer import AbsTokenizer

from espnet_pathways.text.token_list import BLANK, SOS_EOS, UNK, read_token_list

__all__ = [
    "MultilingualTokenizer",
    "LanguageTokenizer",
    "pieces_to_text",
    "SPACE_PIECE",
    "TOKEN_LIST_NAME",
]

SPACE_PIECE = "\u2581"
TOKEN_LIST_NAME = "tokens.txt"
_SKIP_ON_DECODE = frozenset((BLANK, SOS_EOS))
_WS = re.compile(r"\s+")


class MultilingualTokenizer:
    """Per-language SentencePiece encoding into one merged token list.

    Args:
        model_dir: directory with ``tokens.txt`` and ``<lang>.model`` files.

    Raises:
        FileNotFoundError: ``model_dir``, ``tokens.txt`` or every ``*.model`` missing.
        ValueError: ``tokens.txt`` malformed.
    """

    def __init__(self, model_dir: Union[str, Path]) -> None:
        self.model_dir = Path(model_dir)
        if not self.model_dir.is_dir():
            raise FileNotFoundError(f"token list directory not found: {self.model_dir}")
        self.token_list: List[str] = read_token_list(self.model_dir / TOKEN_LIST_NAME)
        self.token2id: Dict[str, int] = {t: i for i, t in enumerate(self.token_list)}
        self.unk_id = self.token2id[UNK]
        self.langs: List[str] = sorted(p.stem for p in self.model_dir.glob("*.model"))
        if not self.langs:
            raise FileNotFoundError(f"no <lang>.model file in {self.model_dir}")
        self._sp: Dict[str, spm.SentencePieceProcessor] = {}

    def __getstate__(self) -> dict:
        # SentencePiece processors are rebuilt lazily (e.g. in DataLoader workers).
        state = self.__dict__.copy()
        state["_sp"] = {}
        return state

    def _processor(self, lang: str) -> spm.SentencePieceProcessor:
        sp = self._sp.get(lang)
        if sp is None:
            if lang not in self.langs:
                raise KeyError(f"no model for language {lang!r} in {self.model_dir}; have {self.langs}")
            sp = spm.SentencePieceProcessor(model_file=str(self.model_dir / f"{lang}.model"))
            missing = [
                sp.id_to_piece(i)
                for i in range(sp.get_piece_size())
                if i != sp.unk_id() and not sp.is_control(i) and sp.id_to_piece(i) not in self.token2id
            ]
            if missing:
                raise ValueError(
                    f"{self.model_dir}/{lang}.model has {len(missing)} piece(s) missing from "
                    f"{TOKEN_LIST_NAME} (e.g. {missing[:3]}); rebuild the token list"
                )
            self._sp[lang] = sp
        return sp

    def encode(self, text: str, lang: str) -> List[str]:
        """Pieces of ``text`` with ``lang``'s model; unknown surfaces become ``<unk>``."""
        sp = self._processor(lang)
        unk = sp.unk_id()
        return [UNK if i == unk else sp.id_to_piece(i) for i in sp.encode(text)]

    def encode_ids(self, text: str, lang: str) -> List[int]:
        """Ids of ``text``'s pieces in the merged token list."""
        return self.pieces_to_ids(self.encode(text, lang))

    def pieces_to_ids(self, pieces: Iterable[str]) -> List[int]:
        """Merged-list ids; a piece not in the list maps to ``<unk>``."""
        return [self.token2id.get(p, self.unk_id) for p in pieces]

    def ids_to_pieces(self, ids: Iterable[int]) -> List[str]:
        """Pieces of merged-list ids."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.token_list):
                raise IndexError(f"token id {i} outside [0, {len(self.token_list)})")
            out.append(self.token_list[i])
        return out

    def decode(self, tokens: Sequence[Union[str, int]]) -> str:
        """Text of pieces or ids (language independent); ``<blank>``/``<sos/eos>`` are dropped."""
        pieces = self.ids_to_pieces(tokens) if tokens and not isinstance(tokens[0], str) else tokens
        return pieces_to_text(pieces)

    def for_lang(self, lang: str) -> "LanguageTokenizer":
        """An ESPnet ``AbsTokenizer`` bound to ``lang`` (validates the language now)."""
        self._processor(lang)
        return LanguageTokenizer(self, lang)


def pieces_to_text(pieces: Iterable[str]) -> str:
    """Join pieces, ``▁`` → space, whitespace collapsed; ``<blank>``/``<sos/eos>`` dropped."""
    joined = "".join(p for p in pieces if p not in _SKIP_ON_DECODE)
    return _WS.sub(" ", joined.replace(SPACE_PIECE, " ")).strip()


class LanguageTokenizer(AbsTokenizer):
    """ESPnet tokenizer view of :class:`MultilingualTokenizer` for one language."""

    def __init__(self, tokenizer: MultilingualTokenizer, lang: str) -> None:
        self.tokenizer = tokenizer
        self.lang = lang

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_dir={str(self.tokenizer.model_dir)!r}, lang={self.lang!r})"

    def text2tokens(self, line: str) -> List[str]:
        return self.tokenizer.encode(line, self.lang)

    def tokens2text(self, tokens: Iterable[str]) -> str:
        return pieces_to_text(tokens)
