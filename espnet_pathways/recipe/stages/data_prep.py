"""Stage 1: Kaldi data dirs from MLS, generating the embedded MLS-shaped corpus first if no MLS is given.

Usage::

    # embedded corpus (espeak-ng), generated into --corpus_dir, then prepared into data/
    python -m espnet_pathways.recipe.stages.data_prep --corpus_size ci --corpus_dir downloads/mini_mls_ci \
        --langs "en fr it nl" --out_dir data
    # imbalanced: 4x English, a quarter of Dutch (train only; dev/test as at scale 1)
    python -m espnet_pathways.recipe.stages.data_prep --corpus_size repro --corpus_dir downloads/mini_mls_repro \
        --langs "en fr it nl" --lang_scale "en:4 nl:0.25" --out_dir data
    # real MLS
    python -m espnet_pathways.recipe.stages.data_prep --mls_root /corpora/mls --langs "en fr it nl" \
        --train_subset 10h --out_dir data

Both steps are the data package's (:func:`espnet_pathways.data.mini_mls.generate_mini_mls`,
:func:`espnet_pathways.data.mls.prepare_mls`); each reuses its outputs when they are complete.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from espnet_pathways.data.mini_mls import generate_mini_mls
from espnet_pathways.data.mls import TRAIN_SUBSETS, prepare_mls
from espnet_pathways.utils.cli import run_cli, str2bool

__all__ = ["data_prep", "main"]


def data_prep(
    out_dir: Path,
    langs: List[str],
    mls_root: Optional[Path],
    corpus_dir: Path,
    corpus_size: str,
    seed: int,
    train_subset: str,
    skip_bad_utts: bool,
    nj: int,
    lang_scale: str = "",
) -> Path:
    """Prepare ``out_dir`` from ``mls_root``, or from a corpus generated into ``corpus_dir``.

    ``lang_scale`` (``"en:4 nl:0.25"``) sets per-language train sizes of the generated corpus;
    it is an error with ``mls_root``, whose sizes are the release's.

    Returns:
        The MLS root that was read.
    """
    if not langs:
        raise ValueError("no language given (--langs)")
    if mls_root is not None and lang_scale.strip():
        raise ValueError("--lang_scale applies to the generated corpus only; drop it or --mls_root")
    if mls_root is None:
        generate_mini_mls(corpus_dir, size=corpus_size, langs=langs, seed=seed, nj=nj, lang_scale=lang_scale)
        mls_root = corpus_dir
    prepare_mls(mls_root, out_dir, langs, train_subset=train_subset, skip_bad_utts=skip_bad_utts, nj=nj)
    return mls_root


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out_dir", type=Path, default=Path("data"))
    parser.add_argument("--langs", required=True, help='space-separated codes, e.g. "en fr it nl"')
    parser.add_argument("--mls_root", default="", help="MLS release root; empty: generate the embedded corpus")
    parser.add_argument("--corpus_dir", type=Path, default=Path("downloads/mini_mls"), help="where to generate it")
    parser.add_argument("--corpus_size", default="demo", help="ci, demo, large or repro")
    parser.add_argument(
        "--lang_scale", default="", help='train-size multipliers of the generated corpus, e.g. "en:4 nl:0.25" (unlisted: 1)'
    )
    parser.add_argument("--corpus_seed", type=int, default=0, help="seed of the generated corpus")
    parser.add_argument("--train_subset", default="full", choices=TRAIN_SUBSETS)
    parser.add_argument("--skip_bad_utts", type=str2bool, default=False)
    parser.add_argument("--nj", type=int, default=1)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    return run_cli(
        lambda: data_prep(
            args.out_dir, args.langs.split(), Path(args.mls_root) if args.mls_root else None, args.corpus_dir,
            args.corpus_size, args.corpus_seed, args.train_subset, args.skip_bad_utts, args.nj, args.lang_scale,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
