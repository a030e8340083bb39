"""The merged multilingual token list in ESPnet's convention.

Layout of ``tokens.txt`` (one token a line, the line number is the token id)::

    <blank>        id 0 (transducer / CTC blank)
    <unk>          id 1
    piece ...      every language's SentencePiece pieces, languages in ``lang_list`` order,
                   each language's pieces in its model's id order, first occurrence wins
    <sos/eos>      last id

The per-language models' own control pieces (``<unk>``, ``<s>``, ``</s>``, ``<pad>``) are not
copied as pieces: ``<unk>`` maps to id 1, the others are never emitted.

Adding a language to a trained model (:func:`extend_pieces`) keeps every existing token's id and
inserts the new language's new pieces just before ``<sos/eos>``, which stays last (ESPnet takes
``sos = eos = len(token_list) - 1``; the transducer never reads nor targets it, so only its
position moves, and the model's rows of it move with it)::

    old:  <blank> <unk> a b ... z <sos/eos>              ids 0 .. V-1
    new:  <blank> <unk> a b ... z ñ á ... <sos/eos>      ids 0 .. V-2 unchanged, V-1 .. V+k-2 new
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Mapping, Sequence, Union

from espnet_pathways.utils.fileio import atomic_write_text

__all__ = [
    "BLANK",
    "UNK",
    "SOS_EOS",
    "SPECIAL_TOKENS",
    "merge_pieces",
    "extend_pieces",
    "read_token_list",
    "write_token_list",
    "validate_token_list",
]

BLANK = "<blank>"
UNK = "<unk>"
SOS_EOS = "<sos/eos>"
SPECIAL_TOKENS = (BLANK, UNK, SOS_EOS)


def merge_pieces(pieces_by_lang: Mapping[str, Sequence[str]], langs: Sequence[str]) -> List[str]:
    """Merge per-language pieces into one de-duplicated token list with special tokens placed.

    Args:
        pieces_by_lang: language code -> that language's pieces in model id order (control
            pieces may be included; they are dropped).
        langs: the merge order (``lang_list.txt`` order); every entry must be a key.

    Returns:
        ``[<blank>, <unk>, *unique pieces, <sos/eos>]``.
    """
    missing = [lang for lang in langs if lang not in pieces_by_lang]
    if missing:
        raise KeyError(f"no pieces for language(s) {missing}; have {sorted(pieces_by_lang)}")
    seen = set(SPECIAL_TOKENS)
    merged: List[str] = [BLANK, UNK]
    for lang in langs:
        for piece in pieces_by_lang[lang]:
            if piece in seen or _is_control_piece(piece):
                continue
            if not piece or any(c.isspace() for c in piece):
                raise ValueError(f"language {lang!r}: piece {piece!r} is empty or has whitespace")
            seen.add(piece)
            merged.append(piece)
    merged.append(SOS_EOS)
    return merged


def extend_pieces(tokens: Sequence[str], pieces: Sequence[str], lang: str, source: str = "token list") -> List[str]:
    """A trained model's token list grown by a new language's pieces (module docstring).

    Args:
        tokens: the existing list (validated).
        pieces: the new language's pieces in model id order (control pieces are dropped, pieces
            already in ``tokens`` are shared).
        lang: the new language, for error messages.
        source: where ``tokens`` comes from, for error messages.

    Returns:
        ``tokens[:-1] + [new pieces] + [<sos/eos>]``: ids below ``len(tokens) - 1`` unchanged.
    """
    validate_token_list(tokens, source)
    merged = merge_pieces({"old": list(tokens[2:-1]), lang: list(pieces)}, ["old", lang])
    if merged[: len(tokens) - 1] != list(tokens[:-1]):  # cannot happen for a valid list; keeps the promise checked
        raise AssertionError(f"{source}: extending with {lang!r} moved an existing token")
    return merged


def _is_control_piece(piece: str) -> bool:
    return piece in ("<s>", "</s>", "<pad>")


def validate_token_list(tokens: Sequence[str], source: str = "token list") -> None:
    """Raise ``ValueError`` unless ``tokens`` follows the layout in the module docstring."""
    if len(tokens) < 3:
        raise ValueError(f"{source}: {len(tokens)} tokens; need at least {list(SPECIAL_TOKENS)}")
    if tokens[0] != BLANK or tokens[1] != UNK or tokens[-1] != SOS_EOS:
        raise ValueError(
            f"{source}: expected {BLANK!r} first, {UNK!r} second and {SOS_EOS!r} last; "
            f"got {tokens[0]!r}, {tokens[1]!r}, {tokens[-1]!r}"
        )
    seen = {}
    for i, tok in enumerate(tokens):
        if tok in seen:
            raise ValueError(f"{source}: line {i + 1}: token {tok!r} repeats line {seen[tok] + 1}")
        seen[tok] = i


def read_token_list(path: Union[str, Path]) -> List[str]:
    """Read and validate ``tokens.txt``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"token list not found: {path}")
    tokens = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        tok = line.strip()
        if not tok or tok != line.rstrip("\n"):
            raise ValueError(f"{path}:{lineno}: empty line or surrounding whitespace: {line!r}")
        tokens.append(tok)
    validate_token_list(tokens, str(path))
    return tokens


def write_token_list(path: Union[str, Path], tokens: Iterable[str]) -> None:
    """Validate ``tokens`` and write them atomically, one a line."""
    tokens = list(tokens)
    validate_token_list(tokens, str(path))
    atomic_write_text(path, "".join(f"{t}\n" for t in tokens))
