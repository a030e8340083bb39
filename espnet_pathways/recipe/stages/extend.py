"""Add a language to a trained pathways model (before stage 11 trains it; ``local/extend.sh``).

Usage::

    python -m espnet_pathways.recipe.stages.extend --lang es --token_dir data/token_list/char \\
        --train_dir dump_ext_es/raw/train --asr_exp exp/asr_dynamic_pathways_lap \\
        --init_mask exp/asr_lap/masks.pwm --out_dir exp/extend_es [--token_type char]

Writes ``<out_dir>/token_list/`` (``--token_dir``'s models and ids, plus ``<lang>.model`` trained on
the new language's transcripts in ``--train_dir``), ``<out_dir>/grown/`` (config, checkpoint and
masks of :func:`espnet_pathways.tasks.extend.extend_model`) and ``<out_dir>/overlay.yaml``, the
config overlay a phase adds after the model's config: ``init_param`` (the grown checkpoint),
``model_conf.lang_vocab_size`` and ``pruning_conf`` ``{init_masks, new_languages}``. The phase passes
the token list on its own (``args: [--token_list, <out_dir>/token_list/tokens.txt, --bpemodel,
<out_dir>/token_list]``: command-line options win over config files). Skipped when up to date.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

import yaml

from espnet_pathways.recipe.stages.token_list import texts_by_lang
from espnet_pathways.tasks.extend import extend_model
from espnet_pathways.text import SpmOptions, extend_token_list_dir
from espnet_pathways.text.spm_train import MODEL_TYPES
from espnet_pathways.utils.cli import run_cli
from espnet_pathways.utils.fileio import atomic_write_text
from espnet_pathways.utils.lang_list import LANG_LIST, read_lang_list
from espnet_pathways.utils.stamp import fingerprint, is_done, write_stamp

__all__ = ["extend_recipe_model", "OVERLAY", "main"]

STAMP = "extend.done"
OVERLAY = "overlay.yaml"


def extend_recipe_model(
    lang: str,
    token_dir: Path,
    train_dir: Path,
    asr_exp: Path,
    out_dir: Path,
    model_file: str = "valid.loss.ave.pth",
    init_mask: Optional[Path] = None,
    model_type: str = "char",
    nbpe: int = 512,
    seed: int = 0,
) -> bool:
    """Write ``out_dir`` (module docstring) unless its stamp is current; returns whether work was done."""
    config, model = asr_exp / "config.yaml", asr_exp / model_file
    params = {"step": "extend", "lang": lang, "model_type": model_type, "nbpe": nbpe, "seed": seed,
              "init_mask": str(init_mask), "asr_exp": str(asr_exp), "model_file": model_file}
    inputs = [token_dir / "tokens.txt", train_dir / "text", train_dir / "utt2lang", config, model]
    fp = fingerprint(params, inputs + ([init_mask] if init_mask else []))
    if is_done(out_dir / STAMP, fp):
        logging.info("%s is up to date; skipping", out_dir)
        return False
    texts = texts_by_lang(train_dir, read_lang_list(train_dir / LANG_LIST))
    if lang not in texts:
        raise ValueError(f"{train_dir / LANG_LIST}: no language {lang!r} (prepare its data with --langs)")
    options = SpmOptions(model_type=model_type, vocab_size=nbpe, seed=seed, hard_vocab_limit=False)
    extend_token_list_dir(token_dir, lang, texts[lang], options, out_dir / "token_list")
    grown = extend_model(config, model, out_dir / "token_list" / "tokens.txt", lang, out_dir / "grown",
                         init_mask=init_mask, seed=seed)
    grown_config = yaml.safe_load(grown["config.yaml"].read_text(encoding="utf-8"))
    overlay = {
        "init_param": [str(grown["model.pth"])],
        "model_conf": {"lang_vocab_size": grown_config["model_conf"]["lang_vocab_size"]},
        "pruning_conf": {"init_masks": [str(grown["masks.pwm"])], "new_languages": [lang]},
    }
    header = f"# Written by espnet_pathways.recipe.stages.extend: {lang} added to {model}\n"
    atomic_write_text(out_dir / OVERLAY, header + yaml.safe_dump(overlay, sort_keys=False, allow_unicode=True))
    write_stamp(out_dir / STAMP, fp, params)
    return True


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lang", required=True, help="the language to add")
    parser.add_argument("--token_dir", type=Path, required=True, help="the trained model's token-list directory")
    parser.add_argument("--train_dir", type=Path, required=True, help="a data dir holding the new language's training text")
    parser.add_argument("--asr_exp", type=Path, required=True, help="the trained pathways run")
    parser.add_argument("--model_file", default="valid.loss.ave.pth", help="its checkpoint, in --asr_exp")
    parser.add_argument("--init_mask", type=Path, default=None, help="mask file with the language's or a shared mask (LAP)")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--token_type", default="char", choices=MODEL_TYPES, help="the new language's SentencePiece model type")
    parser.add_argument("--nbpe", type=int, default=512, help="its pieces (not char)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    return run_cli(lambda: extend_recipe_model(args.lang, args.token_dir, args.train_dir, args.asr_exp, args.out_dir,
                                               args.model_file, args.init_mask, args.token_type, args.nbpe, args.seed))


if __name__ == "__main__":
    sys.exit(main())
