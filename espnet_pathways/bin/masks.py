"""Inspect and make pathway mask files.

Usage::

    # per-layer sparsity table (markdown) or JSON
    python -m espnet_pathways.bin.masks stats exp/masks.pwm [--json] [--asr_model_file exp/valid.acc.ave.pth]
    # language-overlap matrix
    python -m espnet_pathways.bin.masks overlap exp/masks.pwm [--json]
    # PNG plots: per-layer sparsity per language, overlap heat map
    python -m espnet_pathways.bin.masks plot exp/masks.pwm --out_dir exp/plots
    # one-shot magnitude mask from an ESPnet checkpoint + config
    python -m espnet_pathways.bin.masks prune --asr_train_config exp/config.yaml \
        --asr_model_file exp/valid.acc.ave.pth --sparsity 0.7 --scope global --out exp/masks.pwm
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import torch

from espnet_pathways.masks import (
    ATTR,
    SHARED,
    MaskMismatchError,
    MaskSet,
    check_sparsity,
    magnitude_masks,
    model_fingerprint,
    prunable_parameters,
)
from espnet_pathways.masks.layout import count_params
from espnet_pathways.masks.report import (
    mask_stats,
    overlap_table,
    plot_layer_sparsity,
    plot_overlap,
    sparsity_table,
)
from espnet_pathways.tasks.registry import load_model
from espnet_pathways.utils.cli import run_cli

__all__ = ["main", "get_parser", "one_shot_masks"]


def one_shot_masks(
    model: torch.nn.Module,
    sparsity: float,
    scope: str = "global",
    languages: Sequence[str] = (SHARED,),
    include: Optional[List[str]] = None,
    exclude: Optional[List[str]] = None,
) -> MaskSet:
    """Magnitude masks of ``model``'s prunable weights, the same for every language given."""
    params = prunable_parameters(model, include, exclude)
    keep = magnitude_masks(params, sparsity, scope)
    return MaskSet(
        {lang: {n: m.clone() for n, m in keep.items()} for lang in languages},
        method=f"one_shot_{scope}",
        fingerprint=model_fingerprint(params),
    )


def _checked_model_params(maskset: MaskSet, masks_file: Path, model_file: Path) -> int:
    """Parameters in ``model_file``, once checked to be of the architecture the masks were made for."""
    state = torch.load(model_file, map_location="cpu", weights_only=False)
    try:
        maskset.check_model(state)
    except MaskMismatchError as e:
        raise MaskMismatchError(f"mask file {masks_file} was not made for model file {model_file}: {e}") from None
    return count_params(state)


def _cmd_stats(args: argparse.Namespace) -> None:
    maskset = MaskSet.load(args.masks)
    total = _checked_model_params(maskset, args.masks, args.asr_model_file) if args.asr_model_file else None
    if args.json:
        print(json.dumps(mask_stats(maskset, total), indent=2))
    else:
        print(f"# {args.masks}: method={maskset.method} fingerprint={maskset.fingerprint}\n")
        print(sparsity_table(maskset, total))


def _cmd_overlap(args: argparse.Namespace) -> None:
    maskset = MaskSet.load(args.masks)
    if args.json:
        langs, matrix = maskset.overlap()
        print(json.dumps({"languages": list(langs), "overlap": matrix.tolist()}, indent=2))
    else:
        print(overlap_table(maskset))


def _cmd_plot(args: argparse.Namespace) -> None:
    maskset = MaskSet.load(args.masks)
    out = Path(args.out_dir)
    for path in (
        plot_layer_sparsity(maskset, out / "layer_sparsity.png"),
        plot_overlap(maskset, out / "mask_overlap.png"),
    ):
        logging.info("wrote %s", path)


def _cmd_prune(args: argparse.Namespace) -> None:
    sparsity = check_sparsity(args.sparsity, "--sparsity")
    model, _ = load_model(args.asr_train_config, args.asr_model_file, "cpu")
    handle = getattr(model, ATTR, None)
    if handle is not None:  # rank the full θ of a model trained with pathway masks
        handle.detach()
    maskset = one_shot_masks(model, sparsity, args.scope, args.languages, args.include, args.exclude)
    maskset.save(args.out, extra={"source": str(args.asr_model_file)})
    logging.info("wrote %s", args.out)
    print(sparsity_table(maskset, count_params(dict(model.named_parameters()))))


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m espnet_pathways.bin.masks",
        description="Inspect and make pathway mask files",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    stats = sub.add_parser("stats", help="per-layer sparsity table")
    stats.add_argument("masks", type=Path)
    stats.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    stats.add_argument("--asr_model_file", type=Path, help="checkpoint: also report sparsity over all parameters")
    stats.set_defaults(func=_cmd_stats)

    overlap = sub.add_parser("overlap", help="language-overlap matrix")
    overlap.add_argument("masks", type=Path)
    overlap.add_argument("--json", action="store_true")
    overlap.set_defaults(func=_cmd_overlap)

    plot = sub.add_parser("plot", help="PNG plots: per-layer sparsity, overlap heat map")
    plot.add_argument("masks", type=Path)
    plot.add_argument("--out_dir", type=Path, required=True)
    plot.set_defaults(func=_cmd_plot)

    prune = sub.add_parser("prune", help="one-shot magnitude mask from an ESPnet checkpoint")
    prune.add_argument("--asr_train_config", type=Path, required=True)
    prune.add_argument("--asr_model_file", type=Path, required=True)
    prune.add_argument("--sparsity", type=float, required=True)
    prune.add_argument("--scope", choices=["global", "layerwise"], default="global")
    prune.add_argument("--languages", nargs="+", default=[SHARED], help="mask keys to write (default: '*')")
    prune.add_argument("--include", nargs="*", default=None, help="regexes of prunable parameter names")
    prune.add_argument("--exclude", nargs="*", default=None, help="regexes of names to keep dense")
    prune.add_argument("--out", type=Path, required=True)
    prune.set_defaults(func=_cmd_prune)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    return run_cli(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
