"""Offline decoding throughput: utterances decoded one by one vs together (``--batch_size``).

Usage::

    python -m bench.bench_batch_decoding [--quick]   # writes bench/results/batch_decoding.json

The demo-config model with random weights (blank bias calibrated as in :mod:`bench.bench_streaming`,
about one label per two encoder frames) decodes a set of synthetic utterances of 3-12 s with greedy
search on 1 thread (what each recipe decoding job gets), segment by segment (``streaming``) and in
one pass (``full``), one utterance per call (:meth:`Speech2Text.__call__`) and in batches
(:meth:`Speech2Text.decode_batch`, batches taken in set order as ESPnet's loader does). Reported:
RTF of each variant (median of round-robin rounds), the speed-up over one by one (median of
same-round ratios), and whether every batched hypothesis equals the one-by-one hypothesis.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

from bench.bench_streaming import CONF, CONFIGS, FS, build_model, calibrate_blank
from bench.common import interleaved_times, paired_ratio_medians, write_result
from espnet_pathways.asr.inference import Speech2Text

BATCH_SIZES = (8, 32)


def synthetic_set(count: int, seed: int = 0) -> List[np.ndarray]:
    """``count`` tone sweeps with noise, 3-12 s each."""
    rng = np.random.default_rng(seed)
    waves = []
    for _ in range(count):
        t = np.arange(int(rng.uniform(3.0, 12.0) * FS)) / FS
        f0 = rng.uniform(200, 600)
        wave = 0.1 * np.sin(2 * np.pi * f0 * t * (1 + 0.3 * np.sin(t))) + 0.02 * rng.standard_normal(t.shape)
        waves.append(wave.astype(np.float32))
    return waves


def one_by_one(s2t: Speech2Text, waves: List[np.ndarray]) -> List[List[int]]:
    return [s2t(wave)[0].token_int for wave in waves]


def batched(s2t: Speech2Text, waves: List[np.ndarray], batch_size: int) -> List[List[int]]:
    """Token ids of every utterance, decoded ``batch_size`` at a time (zero-padded batches)."""
    out = []
    for start in range(0, len(waves), batch_size):
        part = waves[start : start + batch_size]
        lengths = torch.tensor([len(w) for w in part])
        speech = torch.zeros(len(part), int(lengths.max()))
        for i, wave in enumerate(part):
            speech[i, : len(wave)] = torch.from_numpy(wave)
        out += [results[0].token_int for results in s2t.decode_batch(speech, lengths)]
    return out


def main(quick: bool = False) -> Dict[str, object]:
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    waves = synthetic_set(16 if quick else 64)
    rounds = 2 if quick else 3
    audio_s = sum(len(w) for w in waves) / FS
    result: Dict[str, object] = {"utterances": len(waves), "audio_s": audio_s, "threads": 1, "rounds": rounds,
                                 "search": "greedy", "modes": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        config, vocab = CONFIGS["demo"]
        model = build_model(CONF / config, vocab, Path(tmp))
        for mode, streaming in (("streaming", True), ("full", False)):
            s2t = Speech2Text.from_model(model, streaming=streaming)
            calibrate_blank(s2t, waves[0])
            reference = one_by_one(s2t, waves)
            variants = {"one_by_one": lambda s2t=s2t: one_by_one(s2t, waves)}
            identical = {}
            for size in BATCH_SIZES:
                identical[f"batch_{size}"] = batched(s2t, waves, size) == reference
                variants[f"batch_{size}"] = lambda s2t=s2t, size=size: batched(s2t, waves, size)
            times = interleaved_times(variants, repeats=rounds, warmup=0)
            speedup = {name: 1.0 / ratio for name, ratio in paired_ratio_medians(times, "one_by_one").items()}
            result["modes"][mode] = {
                "rtf": {name: statistics.median(ts) / audio_s for name, ts in times.items()},
                "speedup_vs_one_by_one": speedup,
                "identical_hypotheses": identical,
                "labels_emitted": sum(len(r) for r in reference),
            }
            logging.warning(f"{mode}: {result['modes'][mode]}")
    write_result("batch_decoding", result)
    return result


def summary_rows(r: dict) -> List[str]:
    """The markdown table of a result (for ``bench/results/README.md``)."""
    rows = [
        "### Batched decoding (`python -m bench.bench_batch_decoding`)",
        "",
        f"{r['utterances']} utterances ({r['audio_s']:.0f} s of audio), demo model, {r['threads']} thread, "
        f"{r['search']} search, medians of {r['rounds']} round-robin rounds:",
        "",
        "| mode | variant | RTF | speed-up vs one by one (median of same-round ratios) | hypotheses identical |",
        "|---|---|---:|---:|---|",
    ]
    for mode, m in r["modes"].items():
        for name, rtf in m["rtf"].items():
            same = m["identical_hypotheses"].get(name, "reference")
            rows.append(f"| {mode} | {name} | {rtf:.4f} | {m['speedup_vs_one_by_one'][name]:.2f} | {same} |")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 utterances, 2 rounds")
    print("\n".join(summary_rows(main(quick=parser.parse_args().quick))))
