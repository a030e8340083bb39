"""``RESULTS.md`` of an experiment: per-language WER/CER, model sparsity and size, latency.

Usage::

    python -m espnet_pathways.recipe.stages.results --asr_exp exp/asr_train_asr_emformer_demo

Built from every ``<asr_exp>/decode_*/`` holding ``scoring.json`` (stage 13) and
``decode_info.json`` (stage 12: model file, training config, inference config). For each decode
dir: the command that produced it, the decoded checkpoint's sparsity (zero / total parameters,
over all tensors and over weight matrices) and size, the streaming latency (segment + right
context, from the training config), for a pruned model the sparsity of each decoded language's
pathway and of their union from the checkpoint's masks (:mod:`espnet_pathways.recipe.mask_report`),
then ESPnet-style WER and CER tables with one row per set and an average row per kind of set
(e.g. every ``mls_<lang>_test``): sentence and word counts summed, percentages averaged over
languages (macro average, as the paper's "avg" column). A row whose pathway's sparsity misses the
training config's ``pruning_conf.target_sparsity`` (e.g. a run that ended before its pruning
schedule) is marked :data:`OFF_TARGET`, with a footnote. A decode dir with ``lid.json`` (stages
12-13 with ``--lid_eval true``) gets a language-identification table: per set the accuracy of
``--lang auto``'s chosen languages, the languages it chose, and WER/CER with the chosen pathway
beside those with the true language's.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch
import yaml

from espnet_pathways.pruning.methods import find_method
from espnet_pathways.recipe.mask_report import (
    checkpoint_masks,
    load_model_state,
    pathway_lines,
    pathway_sparsity,
    percent,
)
from espnet_pathways.utils.cli import run_cli
from espnet_pathways.utils.fileio import atomic_write_text

__all__ = [
    "SCORING_JSON",
    "DECODE_INFO_JSON",
    "LID_JSON",
    "LID_SUBDIR",
    "LID_FILE",
    "DEFAULT_EXCLUDE",
    "OFF_TARGET",
    "TARGET_TOLERANCE",
    "checkpoint_stats",
    "sparsity_target",
    "off_target",
    "off_target_footnote",
    "streaming_latency",
    "results_markdown",
    "write_results_md",
    "main",
]

SCORING_JSON = "scoring.json"
DECODE_INFO_JSON = "decode_info.json"
LID_JSON = "lid.json"
"""Language identification of a decode dir (stage 13 with ``--lid_eval true``)."""
LID_SUBDIR = "lang_auto"
"""``<decode_dir>/<set>/lang_auto/``: the set decoded with ``--lang auto``."""
LID_FILE = "lang"
"""Chosen language per utterance (``utt lang``), beside ``text`` of a ``--lang auto`` decoding."""
# State-dict entries that are buffers, not weights: feature normalisation stats, filterbanks, masks.
DEFAULT_EXCLUDE = r"(^|\.)(normalize|logmel)\.|mask"
_COLUMNS = ("corr", "sub", "dele", "ins", "err", "serr")
OFF_TARGET = "†"
"""Marks a results row whose pathway sparsity misses ``pruning_conf.target_sparsity``."""
TARGET_TOLERANCE = 0.01
_ESPNET_FRONTEND_DEFAULTS = {"fs": 16000, "hop_length": 128}


def checkpoint_stats(model_file: Path, exclude: str = DEFAULT_EXCLUDE) -> Dict[str, float]:
    """Zero and total counts of a checkpoint's floating-point weights.

    Args:
        model_file: a state dict saved by ESPnet (``*.pth``).
        exclude: regex of entry names that are not weights (``re.search``).

    Returns:
        ``params``, ``zeros``, ``sparsity`` over all weights; ``matrix_params``, ``matrix_zeros``,
        ``matrix_sparsity`` over tensors with two or more dimensions; ``size_mb`` (dense, as stored)
        and ``nonzero_mb`` (values only), in 10^6 bytes.
    """
    state = load_model_state(model_file)
    pattern = re.compile(exclude)
    out = dict(params=0, zeros=0, matrix_params=0, matrix_zeros=0, size_bytes=0, nonzero_bytes=0)
    for name, tensor in state.items():
        if not torch.is_tensor(tensor) or not tensor.is_floating_point() or pattern.search(name):
            continue
        n, z = tensor.numel(), int((tensor == 0).sum())
        out["params"] += n
        out["zeros"] += z
        out["size_bytes"] += n * tensor.element_size()
        out["nonzero_bytes"] += (n - z) * tensor.element_size()
        if tensor.dim() >= 2:
            out["matrix_params"] += n
            out["matrix_zeros"] += z
    if not out["params"]:
        raise ValueError(f"{model_file}: no floating-point weight outside {exclude!r}")
    return {
        "params": out["params"],
        "zeros": out["zeros"],
        "sparsity": out["zeros"] / out["params"],
        "matrix_params": out["matrix_params"],
        "matrix_zeros": out["matrix_zeros"],
        "matrix_sparsity": out["matrix_zeros"] / max(out["matrix_params"], 1),
        "size_mb": out["size_bytes"] / 1e6,
        "nonzero_mb": out["nonzero_bytes"] / 1e6,
    }


def _rate(value: Any, key: str) -> float:
    if isinstance(value, str) and value.lower().endswith("k"):
        return float(value[:-1]) * 1000
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"training config: {key} = {value!r} is not a number") from None


def streaming_latency(config: Mapping[str, Any]) -> Optional[Dict[str, float]]:
    """Algorithmic latency of a streaming encoder: (segment + right context) frames in ms.

    Reads ``encoder_conf.{segment_length, right_context_length, time_reduction_stride}`` (frames
    after time reduction) and ``frontend_conf.{hop_length, fs}`` (ESPnet's defaults 128 and 16 kHz).
    Returns None for an encoder without ``segment_length`` (not streaming).
    """
    enc = config.get("encoder_conf") or {}
    if "segment_length" not in enc:
        return None
    front = {**_ESPNET_FRONTEND_DEFAULTS, **(config.get("frontend_conf") or {})}
    frame_ms = (
        1000.0
        * _rate(enc.get("time_reduction_stride", 1), "encoder_conf.time_reduction_stride")
        * _rate(front["hop_length"], "frontend_conf.hop_length")
        / _rate(front["fs"], "frontend_conf.fs")
    )
    segment = frame_ms * _rate(enc["segment_length"], "encoder_conf.segment_length")
    right = frame_ms * _rate(enc.get("right_context_length", 0), "encoder_conf.right_context_length")
    return {"segment_ms": segment, "right_context_ms": right, "latency_ms": segment + right}


def sparsity_target(config: Mapping[str, Any]) -> Optional[float]:
    """The pathway sparsity a training config prunes to, ``pruning_conf.target_sparsity`` (None for a
    dense model, for fixed ASR Pathways, which keeps its initial masks, and without the key)."""
    conf = config.get("pruning_conf") or {}
    if not isinstance(conf, Mapping) or conf.get("method") is None or "target_sparsity" not in conf:
        return None
    method = find_method(conf["method"])
    return None if method is not None and not method.prunes else float(conf["target_sparsity"])


def off_target(sparsity: float, target: Optional[float]) -> bool:
    """Whether a pathway's final ``sparsity`` is more than :data:`TARGET_TOLERANCE` from ``target``."""
    return target is not None and abs(sparsity - target) > TARGET_TOLERANCE


def off_target_footnote(rows: Mapping[str, float]) -> str:
    """The footnote of the rows marked :data:`OFF_TARGET` (``{row: its target sparsity}``)."""
    listed = ", ".join(f"{row} (target {percent(target)})" for row, target in rows.items())
    return (
        f"{OFF_TARGET} pathway sparsity more than {100 * TARGET_TOLERANCE:g} percentage point off "
        f"pruning_conf.target_sparsity: {listed}. The run probably ended before its pruning schedule (see its "
        "training log): not comparable with the rows at the target."
    )


def _missed_targets(model_file: Path, langs: List[str], total_params: int, target: Optional[float]) -> List[str]:
    """The languages whose pathway in ``model_file`` misses ``target`` (:func:`off_target`)."""
    masks = checkpoint_masks(model_file) if target is not None else None
    if masks is None:
        return []
    rows = pathway_sparsity(masks, langs, total_params)
    return [r.name for r in rows if r.name != "union" and off_target(r.sparsity, target)]


def _group(name: str, lang: str) -> str:
    parts = name.split("_")
    return "_".join("*" if p == lang else p for p in parts) if lang in parts else name


def _percent(summary: Mapping[str, Any], column: str) -> float:
    """Unrounded percentage of one column, from sclite's counts."""
    if column == "serr":
        return 100.0 * summary["n_serr"] / max(summary["snt"], 1)
    count = {"corr": "n_corr", "sub": "n_sub", "dele": "n_del", "ins": "n_ins", "err": "n_err"}[column]
    return 100.0 * summary[count] / max(summary["wrd"], 1)


def _table(sets: Mapping[str, Mapping[str, Any]], metric: str, marked: Sequence[str] = ()) -> List[str]:
    """Rows per set, then averages; the sets of the languages ``marked`` (and their averages) get :data:`OFF_TARGET`."""
    lines = [
        "|dataset|lang|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: Dict[str, List[Mapping[str, Any]]] = {}
    flagged = {_group(name, info["lang"]) for name, info in sets.items() if info["lang"] in marked}
    for name, info in sets.items():
        s = info[metric]
        mark = f" {OFF_TARGET}" if info["lang"] in marked else ""
        lines.append(
            f"|{name}{mark}|{info['lang']}|{s['snt']}|{s['wrd']}|" + "|".join(f"{s[c]:.1f}" for c in _COLUMNS) + "|"
        )
        groups.setdefault(_group(name, info["lang"]), []).append(s)
    for group, members in groups.items():
        if len(members) < 2:
            continue
        snt, wrd = sum(m["snt"] for m in members), sum(m["wrd"] for m in members)
        means = "|".join(f"{sum(_percent(m, c) for m in members) / len(members):.1f}" for c in _COLUMNS)
        mark = f" {OFF_TARGET}" if group in flagged else ""
        lines.append(f"|**average** ({group}){mark}|{len(members)} langs|{snt}|{wrd}|{means}|")
    return lines


def _lid_table(lid: Mapping[str, Any], sets: Mapping[str, Mapping[str, Any]], lid_args: str) -> List[str]:
    """The language-identification table: a row per set of ``lid.json``, then macro averages."""
    lines = [
        "### Language identification (`--lang auto`)",
        "",
        "Every pathway decodes each utterance (when streaming, only its first `--lid_chunks` chunks) and the best "
        "length-normalised score picks the language; WER/CER with the picked pathway beside the true language's"
        + (f"; extra args `{lid_args}`" if lid_args else "")
        + ".",
        "",
        "|dataset|lang|Snt|LID acc (%)|WER true (%)|WER auto (%)|CER true (%)|CER auto (%)|chosen|",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    groups: Dict[str, List[List[float]]] = {}
    for name, info in lid["sets"].items():
        if name not in sets:
            raise ValueError(f"{LID_JSON}: set {name!r} is not in {SCORING_JSON}")
        values = [
            100.0 * info["correct"] / max(info["snt"], 1),
            _percent(sets[name]["wer"], "err"),
            _percent(info["wer"], "err"),
            _percent(sets[name]["cer"], "err"),
            _percent(info["cer"], "err"),
        ]
        chosen = ", ".join(f"{lang} {n}" for lang, n in info["chosen"].items())
        lines.append(f"|{name}|{info['lang']}|{info['snt']}|" + "|".join(f"{v:.1f}" for v in values) + f"|{chosen}|")
        groups.setdefault(_group(name, info["lang"]), []).append([info["snt"], *values])
    for group, members in groups.items():
        if len(members) < 2:
            continue
        means = "|".join(f"{sum(m[i] for m in members) / len(members):.1f}" for i in range(1, 6))
        lines.append(f"|**average** ({group})|{len(members)} langs|{sum(int(m[0]) for m in members)}|{means}||")
    return lines


def load_json(path: Path) -> Dict[str, Any]:
    """A JSON file written by stages 12-13; clear errors when missing or broken."""
    if not path.is_file():
        raise FileNotFoundError(f"missing {path} (run stages 12-13)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None


def _section(decode_dir: Path, exclude: str) -> List[str]:
    scoring = load_json(decode_dir / SCORING_JSON)
    info = load_json(decode_dir / DECODE_INFO_JSON)
    for key in ("model_file", "train_config"):
        if key not in info:
            raise ValueError(f"{decode_dir / DECODE_INFO_JSON}: no {key!r}")
    stats = checkpoint_stats(Path(info["model_file"]), exclude)
    config_path = Path(info["train_config"])
    if not config_path.is_file():
        raise FileNotFoundError(f"missing training config: {config_path}")
    with config_path.open(encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}
    latency = streaming_latency(config)
    lines = [
        f"## {decode_dir.parent.name}/{decode_dir.name}",
        "",
        f"- command: `{scoring.get('command') or 'not recorded'}`",
        f"- model: `{info['model_file']}` (config `{info['train_config']}`)",
        f"- inference config: `{info.get('inference_config') or 'none'}`"
        + (f", extra args `{info['inference_args']}`" if info.get("inference_args") else ""),
        f"- parameters: {stats['params'] / 1e6:.2f} M, size {stats['size_mb']:.1f} MB "
        f"({stats['nonzero_mb']:.1f} MB non-zero)",
        f"- sparsity: {100 * stats['sparsity']:.2f}% of all weights ({stats['zeros']} / {stats['params']} zero), "
        f"{100 * stats['matrix_sparsity']:.2f}% of weight matrices",
    ]
    if latency is None:
        lines.append("- streaming latency: not a streaming encoder (no encoder_conf.segment_length)")
    else:
        lines.append(
            f"- streaming latency: {latency['latency_ms']:.0f} ms "
            f"(segment {latency['segment_ms']:.0f} ms + right context {latency['right_context_ms']:.0f} ms)"
        )
    # per-language pathway sparsity from the checkpoint's masks (nothing for a dense model)
    langs = [s["lang"] for s in scoring["sets"].values()]
    lines += pathway_lines(Path(info["model_file"]), langs, stats["params"])
    target = sparsity_target(config)
    missed = _missed_targets(Path(info["model_file"]), langs, stats["params"], target)
    if missed:
        lines += ["", off_target_footnote({f"pathway {lang}": target for lang in missed})]
    for metric in ("wer", "cer"):
        lines += ["", f"### {metric.upper()}", "", *_table(scoring["sets"], metric, missed)]
    if (decode_dir / LID_JSON).is_file():
        lid = load_json(decode_dir / LID_JSON)
        lines += ["", *_lid_table(lid, scoring["sets"], info.get("lid_args", ""))]
    return lines + [""]


def results_markdown(asr_exp: Path, exclude: str = DEFAULT_EXCLUDE) -> str:
    """The text of ``RESULTS.md`` for ``asr_exp`` (every scored ``decode_*`` dir, sorted by name)."""
    asr_exp = Path(asr_exp)
    decode_dirs = sorted(p.parent for p in asr_exp.glob(f"decode_*/{SCORING_JSON}"))
    if not decode_dirs:
        raise FileNotFoundError(f"{asr_exp}: no decode_*/{SCORING_JSON} (run stage 13 first)")
    versions = [f"python {platform.python_version()}", f"torch {torch.__version__}"]
    for module in ("espnet", "espnet_pathways"):
        versions.append(f"{module} {getattr(__import__(module), '__version__', 'unknown')}")
    lines = ["<!-- Generated by espnet_pathways.recipe.stages.results -->", "# RESULTS", "",
             "## Environments", "", f"- {', '.join(versions)}", ""]
    for decode_dir in decode_dirs:
        lines += _section(decode_dir, exclude)
    return "\n".join(lines)


def write_results_md(asr_exp: Path, exclude: str = DEFAULT_EXCLUDE) -> Path:
    """Write ``<asr_exp>/RESULTS.md`` atomically and return its path."""
    path = Path(asr_exp) / "RESULTS.md"
    atomic_write_text(path, results_markdown(asr_exp, exclude))
    return path


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--asr_exp", type=Path, required=True, help="experiment dir holding decode_*/")
    parser.add_argument("--exclude", default=DEFAULT_EXCLUDE, help="regex of checkpoint entries that are not weights")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    return run_cli(lambda: write_results_md(args.asr_exp, args.exclude))


if __name__ == "__main__":
    sys.exit(main())
