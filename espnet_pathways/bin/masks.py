"""Inspect and make pathway mask files.

Usage::

    # per-layer sparsity table (markdown) or JSON
    python -m espnet_pathways.bin.masks stats exp/masks.pwm [--json] [--asr_model_file exp/valid.acc.ave.pth]
    # language-overlap matrix
    python -m espnet_pathways.bin.masks overlap exp/masks.pwm [--json]
    # PNG plots: per-layer sparsity per language, overlap heat map
    python -m espnet_pathways.bin.masks plot exp/masks.pwm --out_dir exp/plots
    # + the pathways over training (IoU of language pairs, shared/exclusive weights per layer; PNG + JSON)
    # from a pruning run's mask history, into exp/pruning (or --out_dir)
    python -m espnet_pathways.bin.masks plot exp
    # one-shot magnitude mask from an ESPnet checkpoint + config
    python -m espnet_pathways.bin.masks prune --asr_train_config exp/config.yaml \
        --asr_model_file exp/valid.acc.ave.pth --sparsity 0.7 --scope global --out exp/masks.pwm
    # one language as a standalone ESPnet model (no masks), and packed as espnet2.bin.pack packs one
    python -m espnet_pathways.bin.masks export --lang fr --asr_train_config exp/config.yaml \
        --asr_model_file exp/valid.loss.ave.pth --out_dir exp/export_fr [--archive exp/export_fr.zip]
    # packed sparse checkpoint (kept values + 1-bit masks; without --lang: every pathway, union-packed)
    python -m espnet_pathways.bin.masks pack --asr_model_file exp/valid.loss.ave.pth [--lang fr] [--fp16] \
        [--asr_train_config exp/config.yaml] --out exp/model.pws
    python -m espnet_pathways.bin.masks unpack exp/model.pws --out exp/model.pth
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
from espnet_pathways.masks.history import HISTORY_FILE, MaskHistory
from espnet_pathways.masks.layout import count_params
from espnet_pathways.masks.report import (
    mask_stats,
    overlap_table,
    plot_layer_sparsity,
    plot_overlap,
    sparsity_table,
    write_history_report,
)
from espnet_pathways.pruning.outputs import MASKS_FILE, REPORT_DIR
from espnet_pathways.tasks.export import export_language, pack_checkpoint, unpack_checkpoint, write_archive
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
    masks_file, out, written = args.masks, args.out_dir, []
    if args.masks.is_dir():  # an experiment dir: its mask history, and its final masks once written
        out = out or args.masks / REPORT_DIR
        written += write_history_report(MaskHistory(args.masks / REPORT_DIR / HISTORY_FILE), out).values()
        masks_file = args.masks / MASKS_FILE if (args.masks / MASKS_FILE).is_file() else None
    elif out is None:
        raise ValueError(f"plot {args.masks}: --out_dir is required with a mask file")
    if masks_file is not None:
        maskset = MaskSet.load(masks_file)
        written.append(plot_layer_sparsity(maskset, out / "layer_sparsity.png"))
        written.append(plot_overlap(maskset, out / "mask_overlap.png"))
    for path in written:
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


def _cmd_export(args: argparse.Namespace) -> None:
    config = export_language(args.asr_train_config, args.asr_model_file, args.lang, args.out_dir)
    logging.info("wrote %s", config.parent)
    if args.archive is not None:
        logging.info("wrote %s", write_archive(args.out_dir, args.archive))


def _cmd_pack(args: argparse.Namespace) -> None:
    out = pack_checkpoint(args.asr_model_file, args.out, args.asr_train_config, args.lang, args.fp16)
    size, dense = out.stat().st_size, args.asr_model_file.stat().st_size
    print(f"{out}: {size:,} bytes, {size / dense:.3f} of {args.asr_model_file} ({dense:,} bytes)")


def _cmd_unpack(args: argparse.Namespace) -> None:
    logging.info("wrote %s", unpack_checkpoint(args.sparse, args.out))


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

    plot = sub.add_parser("plot", help="PNG plots: per-layer sparsity, overlap heat map; of an experiment dir, "
                          "also the pathways over training from its mask history (PNG + JSON)")
    plot.add_argument("masks", type=Path, help="a mask file, or a pruning run's experiment dir")
    plot.add_argument("--out_dir", type=Path, help="where to write (required with a mask file; default <exp>/pruning)")
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

    export = sub.add_parser("export", help="one language's pathway as a standalone ESPnet model (no masks)")
    export.add_argument("--asr_train_config", type=Path, required=True)
    export.add_argument("--asr_model_file", type=Path, required=True)
    export.add_argument("--lang", required=True, help="language code of the model's lang_list")
    export.add_argument("--out_dir", type=Path, required=True, help="config.yaml, model.pth, tokens.txt, ...")
    export.add_argument("--archive", type=Path, help="also pack out_dir as espnet2.bin.pack does (.zip, .tar.gz, ...)")
    export.set_defaults(func=_cmd_export)

    pack = sub.add_parser("pack", help="packed sparse checkpoint: kept values + 1-bit masks")
    pack.add_argument("--asr_model_file", type=Path, required=True)
    pack.add_argument("--asr_train_config", type=Path,
                      help="needed for a checkpoint without pathway masks (its prunable tensors are stored sparse)")
    pack.add_argument("--lang", help="only this language's pathway (default: every pathway, union-packed)")
    pack.add_argument("--fp16", action="store_true", help="store float values as float16 (lossy)")
    pack.add_argument("--out", type=Path, required=True)
    pack.set_defaults(func=_cmd_pack)

    unpack = sub.add_parser("unpack", help="packed sparse checkpoint -> ordinary torch checkpoint")
    unpack.add_argument("sparse", type=Path)
    unpack.add_argument("--out", type=Path, required=True)
    unpack.set_defaults(func=_cmd_unpack)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    return run_cli(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
