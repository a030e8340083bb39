"""Sizes of packed sparse checkpoints (``python -m espnet_pathways.bin.masks pack``) against dense ones.

Rows: a model of the demo's architecture (``egs2_mls_pathways/asr1/conf/train_asr_emformer_demo.yaml``,
random weights) with random 70% pathways for four languages whose overlap matches the trained LTH
pathways of the reproduction (language-pair IoU about 0.9: magnitude masks of |θ| · exp(σ ε_l)), and,
when it exists, a trained pathways checkpoint of the recipe (read only). For each: the one-language
model (θ ⊙ m_fr, what ``export`` writes) as a dense fp32 ``torch.save`` file, packed in fp32 and in
fp16, and the whole multilingual model packed with the union of its pathways once, each against its
bound (kept values + 1 bit per weight [+ 1 bit per union weight per language] + the dense rest).
Every packed file is read back and compared with ``torch.equal`` (fp16: shapes and zeros).

Usage: ``python -m bench.bench_export [--quick] [--checkpoint exp/x/valid.loss.ave.pth]``
"""

from __future__ import annotations

import argparse
import io
import logging
import tempfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional

import numpy as np
import torch
import yaml

from bench.common import write_result
from espnet_pathways.masks import MaskSet, magnitude_masks, prunable_parameters
from espnet_pathways.masks.layout import ATTR, state_key
from espnet_pathways.masks.sparse_checkpoint import load_sparse, save_sparse
from espnet_pathways.tasks.export import pathway_state

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "egs2_mls_pathways" / "asr1" / "conf" / "train_asr_emformer_demo.yaml"
TRAINED = REPO / "egs2_mls_pathways" / "asr1" / "exp" / "asr_pathways_lth_s1" / "valid.loss.ave.pth"
LANGS = ("en", "fr", "it", "nl")
SPARSITY = 0.7
OVERLAP_NOISE = 0.06  # σ of the per-language score noise: pair IoU about 0.9 at 70%, as the trained LTH masks
N_TOKENS = 60


def demo_model() -> torch.nn.Module:
    """The demo's transducer with random weights (a character token list of N_TOKENS, unit statistics)."""
    from espnet_pathways.tasks.asr import PathwaysASRTask

    with tempfile.TemporaryDirectory() as tmp:
        tokens = Path(tmp) / "tokens.txt"
        tokens.write_text("\n".join(["<blank>", "<unk>", *[f"c{i}" for i in range(N_TOKENS - 3)], "<sos/eos>"]) + "\n")
        stats = Path(tmp) / "feats_stats.npz"
        np.savez(stats, count=np.array(100.0), sum=np.zeros(80), sum_square=np.full(80, 100.0))
        args = PathwaysASRTask.get_parser().parse_args(
            ["--config", str(DEMO_CONFIG), "--token_list", str(tokens), "--normalize_conf", f"stats_file={stats}"]
        )
        return PathwaysASRTask.build_model(args)


def overlapping_masks(weights: Mapping[str, torch.Tensor], seed: int = 0) -> MaskSet:
    """70% magnitude masks per language of |θ| · exp(σ ε_l) (ε_l standard normal, one per language)."""
    masks = {}
    for i, lang in enumerate(LANGS):
        gen = torch.Generator().manual_seed(seed + i)
        scores = {n: w.abs() * torch.exp(OVERLAP_NOISE * torch.randn(w.shape, generator=gen)) for n, w in weights.items()}
        masks[lang] = magnitude_masks(scores, SPARSITY)
    return MaskSet(masks)


def multilingual_state(model: torch.nn.Module, masks: MaskSet) -> Dict[str, torch.Tensor]:
    """What a checkpoint of the model with these pathways attached holds: θ zero outside the union, mask buffers."""
    union = masks.union()
    state = {n: (v.masked_fill(~union[n], 0.0) if n in union else v) for n, v in model.state_dict().items()}
    for lang in masks.languages:
        state.update({state_key(lang, n): m.clone() for n, m in masks[lang].items()})
    return state


def _saved_size(state: Mapping[str, torch.Tensor]) -> int:
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    return len(buffer.getvalue())


def _bound(state: Mapping[str, torch.Tensor], kept: Mapping[str, int], languages: int) -> float:
    """Kept fp32 values + 1 bit per weight + ``languages`` bits per kept weight + every other tensor dense."""
    total = 0.0
    for name, value in state.items():
        if name.startswith(f"{ATTR}."):
            continue
        if name in kept:
            total += 4 * kept[name] + value.numel() / 8 + languages * kept[name] / 8
        else:
            total += value.numel() * value.element_size()
    return total


def _check_exact(path: Path, state: Mapping[str, torch.Tensor]) -> bool:
    got = load_sparse(path).state
    return list(got) == list(state) and all(torch.equal(got[n], v) for n, v in state.items())


def measure(state: Mapping[str, torch.Tensor], lang: str, out_dir: Path) -> Dict[str, object]:
    """Sizes of the one-language and multilingual packings of a checkpoint with pathway masks."""
    masks = MaskSet.from_state_dict(state)
    one, mask = pathway_state(state, lang, "checkpoint")
    dense = _saved_size(one)
    kept_one = {n: int(m.sum()) for n, m in mask.items()}
    union = masks.union()
    kept_union = {n: int(u.sum()) for n, u in union.items()}
    sizes = {
        "sparse_fp32": save_sparse(out_dir / "one.pws", one, mask).stat().st_size,
        "sparse_fp16": save_sparse(out_dir / "one16.pws", one, mask, fp16=True).stat().st_size,
        "multilingual_union_packed": save_sparse(out_dir / "all.pws", state).stat().st_size,
    }
    half = load_sparse(out_dir / "one16.pws").state
    langs, overlap = masks.overlap()
    pairs = [float(overlap[i, j]) for i in range(len(langs)) for j in range(i + 1, len(langs))]
    params = sum(v.numel() for n, v in one.items() if v.is_floating_point())
    return {
        "lang": lang,
        "languages": list(masks.languages),
        "parameters": params,
        "prunable_weights": masks.num_prunable,
        "prunable_fraction": masks.num_prunable / params,
        "sparsity": {l: round(masks.sparsity(l), 4) for l in masks.languages},
        "union_fraction": sum(kept_union.values()) / masks.num_prunable,
        "pair_iou_min_max": [min(pairs), max(pairs)] if pairs else [1.0, 1.0],
        "dense_fp32_bytes": dense,
        "multilingual_checkpoint_bytes": _saved_size(state),
        "bytes": sizes,
        "ratio_vs_dense_fp32": {k: v / dense for k, v in sizes.items()},
        "bound_bytes": {
            "sparse_fp32": _bound(one, kept_one, 0),
            "multilingual_union_packed": _bound(state, kept_union, len(masks.languages)),
        },
        "size_vs_bound": {
            "sparse_fp32": sizes["sparse_fp32"] / _bound(one, kept_one, 0),
            "multilingual_union_packed": sizes["multilingual_union_packed"]
            / _bound(state, kept_union, len(masks.languages)),
        },
        "round_trip_exact": {
            "sparse_fp32": _check_exact(out_dir / "one.pws", one),
            "multilingual_union_packed": _check_exact(out_dir / "all.pws", state),
            "sparse_fp16_zeros_and_shapes": all(
                torch.equal(half[n] != 0, v != 0) if v.is_floating_point() else torch.equal(half[n], v)
                for n, v in one.items()
            ),
        },
    }


def main(quick: bool = False, checkpoint: Optional[Path] = TRAINED) -> Dict[str, object]:
    """Measure the rows and write ``bench/results/export.json`` (``quick`` changes nothing: it is fast)."""
    torch.manual_seed(0)
    model = demo_model()
    masks = overlapping_masks({n: p.detach() for n, p in prunable_parameters(model).items()})
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        rows["demo_random_masks"] = measure(multilingual_state(model, masks), "fr", Path(tmp))
        if checkpoint is not None and Path(checkpoint).is_file():
            state = torch.load(checkpoint, map_location="cpu", weights_only=False)
            shown = Path(checkpoint).resolve()
            shown = shown.relative_to(REPO) if shown.is_relative_to(REPO) else shown
            rows["trained_checkpoint"] = {"path": str(shown), **measure(state, "fr", Path(tmp))}
    targets = {"sparse_fp32": 0.35, "sparse_fp16": 0.2, "multilingual_vs_bound": 1.03}
    result = {"config": str(DEMO_CONFIG.relative_to(REPO)), "targets": targets, "rows": rows}
    logging.info("wrote %s", write_result("export", result))
    return result


def summary_rows(r: dict) -> List[str]:
    """Markdown section of ``bench/results/README.md``."""
    rows = [
        "### Export and packed sparse checkpoints (`python -m bench.bench_export`)",
        "",
        f"Model of `{r['config']}`; one language = fr's pathway squashed (what `export` writes); ratios against "
        "its dense fp32 `torch.save` file; bound = kept fp32 values + 1 bit per weight (+ 1 bit per union weight "
        f"per language) + the other tensors dense. Targets: ≤ {r['targets']['sparse_fp32']} (fp32), "
        f"≤ {r['targets']['sparse_fp16']} (fp16), multilingual ≤ {r['targets']['multilingual_vs_bound']} × bound.",
        "",
        "| checkpoint | params (prunable) | sparsity | union / prunable | pair IoU | dense fp32 (bytes) "
        "| sparse fp32 | sparse fp16 | multilingual union-packed | multilingual / bound | exact |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, row in r["rows"].items():
        ratio = row["ratio_vs_dense_fp32"]
        exact = all(row["round_trip_exact"].values())
        iou = row["pair_iou_min_max"]
        rows.append(
            f"| {name} | {row['parameters']:,} ({row['prunable_fraction']:.1%}) | {row['sparsity'][row['lang']]:.2f} "
            f"| {row['union_fraction']:.3f} | {iou[0]:.2f}-{iou[1]:.2f} | {row['dense_fp32_bytes']:,} "
            f"| {ratio['sparse_fp32']:.3f} | {ratio['sparse_fp16']:.3f} | {ratio['multilingual_union_packed']:.3f} "
            f"| {row['size_vs_bound']['multilingual_union_packed']:.4f} | {'yes' if exact else 'NO'} |"
        )
    return rows


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--checkpoint", type=Path, default=TRAINED, help="a trained checkpoint with pathway masks")
    cli = parser.parse_args()
    print("\n".join(summary_rows(main(cli.quick, cli.checkpoint))))
