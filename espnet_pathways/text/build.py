"""Build a token-list directory: one SentencePiece model per language plus the merged list.

Output (replaced atomically as a whole)::

    <out_dir>/<lang>.model   one per language, trained on that language's text only
    <out_dir>/tokens.txt     merged token list (see :mod:`espnet_pathways.text.token_list`)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, List, Mapping, Sequence, Union

from espnet_pathways.text.spm_train import SpmOptions, model_pieces, train_sentencepiece
from espnet_pathways.text.token_list import merge_pieces, write_token_list
from espnet_pathways.text.tokenizer import TOKEN_LIST_NAME
from espnet_pathways.utils.fileio import atomic_dir

__all__ = ["build_token_list_dir"]


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
