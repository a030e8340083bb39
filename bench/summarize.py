"""Turn ``bench/results/*.json`` into the markdown summary ``bench/results/README.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict, List

from bench import bench_batch_decoding, bench_export, bench_lang_auto
from bench.common import RESULTS_DIR
from espnet_pathways.utils.fileio import atomic_write_text

__all__ = ["write_summary"]


def _masks(r: dict) -> List[str]:
    steps, rank, store = r["train_step"], r["ranking"], r["storage"]
    rows = ["### Masks (`python -m bench.bench_masks`)"]
    for step in steps:
        rows += [
            "",
            f"Training step of {step['model']}, batch {step['batch']}, {step['optimizer']}, "
            f"median of {step['repeats']} round-robin repeats of {step.get('steps_per_timed_call', 1)} steps each "
            "(per-step times):",
            "",
            "| variant | median step (s) | vs dense (ratio of medians) | vs dense (median of same-round ratios) |",
            "|---|---:|---:|---:|",
        ]
        for name, seconds in step["median_step_s"].items():
            rows.append(
                f"| {name} | {seconds:.3f} | {step['ratio_vs_dense'][name]:.3f} "
                f"| {step['paired_ratio_vs_dense'][name]:.3f} |"
            )
    rows += [
        "",
        f"Magnitude ranking of {rank['weights']:,} weights at sparsity {rank['sparsity']} (each method in a fresh "
        "process; median seconds of its runs, peak extra memory of the first):",
        "",
        "| method | runs | median seconds (min-max) | speed-up vs torch global_unstructured | peak extra memory (bytes/weight) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, m in rank["methods"].items():
        rows.append(
            f"| {name} | {len(m['all_seconds'])} | {m['seconds']:.2f} ({min(m['all_seconds']):.2f}-{max(m['all_seconds']):.2f}) "
            f"| {rank['speedup_vs_torch_global_unstructured'][name]:.1f}x "
            f"| {m['extra_bytes_per_weight']:.2f} |"
        )
    rows += [
        "",
        f"Mask file: {store['bits_per_weight_per_language']:.4f} bits per weight per language "
        f"({store['languages']} languages, {store['prunable_weights']:,} weights); "
        f"{store['mask_file_vs_checkpoint']:.3f} of the dense fp32 checkpoint.",
    ]
    return rows


def _streaming(r: dict) -> List[str]:
    rows = [
        "### Streaming decoding (`python -m bench.bench_streaming`)",
        "",
        f"{r['audio_s']} s of audio, {r['threads']} thread, {r['search']}:",
        "",
        "| config | params | latency (ms) | variant | RTF | chunk median (ms) | chunk p95 (ms) |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for name in ("demo", "paper"):
        if name not in r:
            continue
        c = r[name]
        for variant in ("dense", "masked_70"):
            v = c[variant]
            rows.append(
                f"| {name} | {c['params']:,} | {c['latency_ms']:.0f} | {variant} | {v['rtf']:.3f} "
                f"| {v['chunk_ms_median']:.1f} | {v['chunk_ms_p95']:.1f} |"
            )
    return rows


def _pruning(r: dict) -> List[str]:
    runs = r["runs"]
    rows = [
        "### Pruning engine (`python -m bench.bench_pruning`)",
        "",
        f"One run per method, {runs['model']} model, batch {runs['batch']}:",
        "",
        "| method | steps | wall (s) | median step (s) | vs dense | target reached at step | final sparsity |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, m in runs["methods"].items():
        rows.append(
            f"| {name} | {m['steps']} | {m['wall_s']:.1f} | {m['median_step_s']:.3f} | {m['median_step_vs_dense']:.3f} "
            f"| {m.get('target_reached_at_step', '')} | {m.get('final_sparsity', '')} |"
        )
    rows += ["", "| model | train step (s) | prune event | adaptation | rewind | pathway switch | events add (by intervals) |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for e in r["events"]:
        added = "; ".join(f"{k}: {v * 100:.2f}%" for k, v in e["events_add_to_training_time"].items())
        rows.append(
            f"| {e['model']} ({e['prunable_weights']:,} prunable) | {e['train_step_s']:.3f} "
            f"| {e['prune_event_vs_step']:.2f} step | {e['adapt_event_vs_step']:.2f} step | {e['rewind_vs_step']:.2f} step "
            f"| {e['switch_pathway_vs_step']:.3f} step | {added} |"
        )
    return rows


SECTIONS: Dict[str, Callable[[dict], List[str]]] = {
    "masks": _masks,
    "streaming": _streaming,
    "batch_decoding": bench_batch_decoding.summary_rows,
    "pruning": _pruning,
    "export": bench_export.summary_rows,
    "lang_auto": bench_lang_auto.summary_rows,
}


def write_summary(results_dir: Path = RESULTS_DIR) -> Path:
    """Write ``README.md`` next to the JSON results (sections for the results present)."""
    lines = ["# Benchmark results", "", "Regenerate with `make bench`. Machine and date are in each JSON file.", ""]
    for name, section in SECTIONS.items():
        path = results_dir / f"{name}.json"
        if path.is_file():
            result = json.loads(path.read_text())
            lines += section(result) + ["", f"Machine: `{json.dumps(result['machine'])}`"]
            lines += [f"- {part} measured on `{json.dumps(machine)}`" for part, machine in result.get("measured_on", {}).items()]
            lines.append("")
    out = results_dir / "README.md"
    atomic_write_text(out, "\n".join(lines))
    return out


if __name__ == "__main__":
    print(write_summary())
