"""Stage 5: per-language SentencePiece models and the merged token list.

Usage::

    python -m espnet_pathways.recipe.stages.token_list --train_dir dump/raw/train \
        --out_dir data/token_list/bpe_unigram512 --token_type bpe --bpemode unigram --nbpe 512
    # per-language sizes:  --nbpe "en:512 fr:256 it:256 nl:256"
    # characters:          --token_type char

Each language's model is trained on the transcripts of ``--train_dir/text`` whose
``utt2lang`` is that language; languages and merge order come from ``lang_list.txt``.
Writes ``<out_dir>/<lang>.model`` and ``<out_dir>/tokens.txt`` (see :mod:`espnet_pathways.text`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet_pathways.utils.cli import run_cli, str2bool
from espnet_pathways.recipe.datadir import read_data_dir
from espnet_pathways.utils.lang_list import LANG_LIST, read_lang_list
from espnet_pathways.utils.stamp import fingerprint, is_done, write_stamp
from espnet_pathways.text import SpmOptions, build_token_list_dir

__all__ = ["parse_nbpe", "texts_by_lang", "make_token_list", "main"]

STAMP = "token_list.done"


def parse_nbpe(spec: str, langs: Sequence[str]) -> Dict[str, int]:
    """``"512"`` (every language) or ``"en:512 fr:256"`` (each language of ``langs``) -> sizes."""
    items = spec.replace(",", " ").split()
    if len(items) == 1 and ":" not in items[0]:
        return {lang: _positive_int(items[0], spec) for lang in langs}
    sizes: Dict[str, int] = {}
    for item in items:
        lang, sep, value = item.partition(":")
        if not sep or not lang:
            raise ValueError(f"--nbpe {spec!r}: expected N or LANG:N items, got {item!r}")
        if lang in sizes:
            raise ValueError(f"--nbpe {spec!r}: language {lang!r} given twice")
        sizes[lang] = _positive_int(value, spec)
    missing = [lang for lang in langs if lang not in sizes]
    unknown = [lang for lang in sizes if lang not in langs]
    if missing or unknown:
        raise ValueError(f"--nbpe {spec!r}: missing languages {missing}, unknown languages {unknown} (langs: {list(langs)})")
    return sizes


def _positive_int(value: str, spec: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"--nbpe {spec!r}: {value!r} is not an integer") from None
    if n < 2:
        raise ValueError(f"--nbpe {spec!r}: sizes must be >= 2, got {n}")
    return n


def texts_by_lang(train_dir: Path, langs: Sequence[str]) -> Dict[str, List[str]]:
    """Transcripts of ``train_dir`` grouped by ``utt2lang`` (every language must have one)."""
    tables = read_data_dir(train_dir, ("text", "utt2lang"))
    texts: Dict[str, List[str]] = {lang: [] for lang in langs}
    for lineno, (utt, lang) in enumerate(tables["utt2lang"].items(), 1):
        if lang not in texts:
            raise ValueError(f"{train_dir / 'utt2lang'}:{lineno}: utterance {utt!r} has language {lang!r}, not in {list(langs)}")
        texts[lang].append(tables["text"][utt])
    empty = [lang for lang, lines in texts.items() if not any(line.strip() for line in lines)]
    if empty:
        raise ValueError(f"{train_dir}: no training text for language(s) {empty}")
    return texts


def make_token_list(
    train_dir: Path,
    out_dir: Path,
    token_type: str,
    bpemode: str,
    nbpe: str,
    seed: int,
    character_coverage: float,
    hard_vocab_limit: bool,
) -> bool:
    """Build ``out_dir`` unless its stamp is current; returns whether work was done."""
    lang_list = train_dir / LANG_LIST
    if token_type not in ("bpe", "char"):
        raise ValueError(f"--token_type must be bpe or char, got {token_type!r}")
    params = {
        "step": "token_list",
        "train_dir": str(train_dir),
        "token_type": token_type,
        "bpemode": bpemode,
        "nbpe": nbpe,
        "seed": seed,
        "character_coverage": character_coverage,
        "hard_vocab_limit": hard_vocab_limit,
    }
    fp = fingerprint(params, [train_dir / "text", train_dir / "utt2lang", lang_list])
    if is_done(out_dir / STAMP, fp):
        logging.info("%s is up to date; skipping", out_dir)
        return False
    langs = read_lang_list(lang_list)
    texts = texts_by_lang(train_dir, langs)
    if token_type == "char":
        options = {lang: SpmOptions(model_type="char", seed=seed, character_coverage=character_coverage) for lang in langs}
    else:
        options = {
            lang: SpmOptions(
                model_type=bpemode,
                vocab_size=n,
                seed=seed,
                character_coverage=character_coverage,
                hard_vocab_limit=hard_vocab_limit,
            )
            for lang, n in parse_nbpe(nbpe, langs).items()
        }
    build_token_list_dir(texts, langs, options, out_dir)
    write_stamp(out_dir / STAMP, fp, params)
    return True


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train_dir", type=Path, required=True, help="data dir with text and utt2lang")
    parser.add_argument("--out_dir", type=Path, required=True, help="token-list directory to write")
    parser.add_argument("--token_type", default="bpe", choices=("bpe", "char"))
    parser.add_argument("--bpemode", default="unigram", choices=("unigram", "bpe"))
    parser.add_argument("--nbpe", default="512", help='"N" or "lang:N lang:N ..." (token_type bpe)')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--character_coverage", type=float, default=1.0)
    parser.add_argument("--hard_vocab_limit", type=str2bool, default=True,
                        help="fail when a language's text cannot give --nbpe pieces (false: use fewer)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    return run_cli(
        lambda: make_token_list(
            args.train_dir, args.out_dir, args.token_type, args.bpemode, args.nbpe, args.seed,
            args.character_coverage, args.hard_vocab_limit,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
