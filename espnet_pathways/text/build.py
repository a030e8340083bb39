"""Build a token-list directory: one SentencePiece model per language plus the merged list.

Output (replaced atomically as a whole)::

    <out_dir>/<lang>.model   one per language, trained on that language's text only
    <out_dir>/tokens.txt     merged token list (see :mod:`espnet_pathways.text.token_list`)

:func:`extend_token_list_dir` adds one language to an existing directory (a new directory: the old
models copied, the new language's model trained, existing token ids kept).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, List, Mapping, Sequence, Union

from espnet_pathways.text.spm_train import SpmOptions, model_pieces, train_sentencepiece
from espnet_pathways.text.token_list import extend_pieces, merge_pieces, read_token_list, write_token_list
from espnet_pathways.text.tokenizer import TOKEN_LIST_NAME
from espnet_pathways.utils.fileio import atomic_dir

__all__ = ["build_token_list_dir", "extend_token_list_dir"]


def build_token_list_dir(
    texts: Mapping[str, Iterable[str]],
    langs: Sequence[str],
    options: Mapping[str, SpmOptions],
    out_dir: Union[str, Path],
) -> List[str]:
    """Train ``<lang>.model`` for each of ``langs`` and write the merged ``tokens.txt``.

    Args:
        texts: language -> its training sentences.
        langs: languages in merge order (``lang_list.txt`` order), no repeats.
        options: language -> its SentencePiece options.
        out_dir: the token-list directory; replaced only once everything is written.

    Returns:
        The merged token list.
    """
    if not langs:
        raise ValueError("no language given")
    if len(set(langs)) != len(langs):
        raise ValueError(f"repeated language in {list(langs)}")
    for lang in langs:
        if lang not in texts:
            raise KeyError(f"no training text for language {lang!r}")
        if lang not in options:
            raise KeyError(f"no SentencePiece options for language {lang!r}")
    out_dir = Path(out_dir)
    models = {lang: train_sentencepiece(texts[lang], options[lang], name=lang) for lang in langs}
    tokens = merge_pieces({lang: model_pieces(m) for lang, m in models.items()}, langs)
    with atomic_dir(out_dir) as tmp:
        for lang, model in models.items():
            (tmp / f"{lang}.model").write_bytes(model)
        write_token_list(tmp / TOKEN_LIST_NAME, tokens)
    logging.info("%s: %d tokens from %d language(s)", out_dir / TOKEN_LIST_NAME, len(tokens), len(langs))
    return tokens


def extend_token_list_dir(
    old_dir: Union[str, Path],
    lang: str,
    texts: Iterable[str],
    options: SpmOptions,
    out_dir: Union[str, Path],
) -> List[str]:
    """Write ``out_dir``: ``old_dir``'s models, ``<lang>.model`` trained on ``texts``, and the token
    list of ``old_dir`` extended by ``lang``'s pieces (:func:`~espnet_pathways.text.token_list.extend_pieces`).

    Raises:
        FileNotFoundError: ``old_dir`` or its ``tokens.txt`` missing.
        ValueError: ``lang`` already has ``<old_dir>/<lang>.model``, or ``out_dir`` is ``old_dir``.

    Returns:
        The extended token list.
    """
    old_dir, out_dir = Path(old_dir), Path(out_dir)
    if out_dir.resolve() == old_dir.resolve():
        raise ValueError(f"{out_dir}: the extended token list needs a directory of its own")
    old_tokens = read_token_list(old_dir / TOKEN_LIST_NAME)
    if (old_dir / f"{lang}.model").exists():
        raise ValueError(f"{old_dir / (lang + '.model')}: language {lang!r} is already in the token list")
    model = train_sentencepiece(texts, options, name=lang)
    tokens = extend_pieces(old_tokens, model_pieces(model), lang, str(old_dir / TOKEN_LIST_NAME))
    with atomic_dir(out_dir) as tmp:
        for old_model in sorted(old_dir.glob("*.model")):
            (tmp / old_model.name).write_bytes(old_model.read_bytes())
        (tmp / f"{lang}.model").write_bytes(model)
        write_token_list(tmp / TOKEN_LIST_NAME, tokens)
    logging.info("%s: %d tokens (%d new for %s)", out_dir / TOKEN_LIST_NAME, len(tokens), len(tokens) - len(old_tokens), lang)
    return tokens
