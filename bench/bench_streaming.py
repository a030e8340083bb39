"""Streaming greedy decoding speed of the demo and paper Emformer transducers on 1 CPU thread.

Usage::

    python -m bench.bench_streaming            # writes bench/results/streaming.json

For each config the model is built with random weights (vocabulary: 300 tokens for the demo,
1548 for the paper scale), and 10 s of synthetic audio are fed to :class:`StreamingSpeech2Text`
one encoder segment of audio at a time (what a live stream delivers). Reported per variant:

* ``rtf``: processing time / audio duration (features + encoder + greedy search);
* ``latency_ms``: algorithmic latency, (segment + right context) * stride * 10 ms;
* ``chunk_ms_median`` / ``chunk_ms_p95``: compute time per segment;
* ``tokens``: labels emitted (random weights: the blank logit is shifted so that about one label
  per two encoder frames is emitted, roughly the rate of real speech, neither none nor the
  3-per-frame worst case).

Variants: ``dense`` and ``masked_70`` (random 70 % masks over the prunable weights, attached in
hard mode with :func:`espnet_pathways.masks.attach`; the weights are zeroed in place, so the same
dense kernels run and the cost must not grow).
"""

from __future__ import annotations

import copy
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

from bench.common import write_result
from espnet_pathways.asr.inference import Speech2Text, StreamingSpeech2Text
from espnet_pathways.asr.search.greedy import greedy_search
from espnet_pathways.masks import MaskSet, attach, prunable_parameters
from espnet_pathways.tasks.asr import PathwaysASRTask

CONF = Path(__file__).resolve().parents[1] / "egs2_mls_pathways" / "asr1" / "conf"
CONFIGS = {"demo": ("train_asr_emformer_demo.yaml", 300), "paper": ("train_asr_emformer_paper.yaml", 1548)}
AUDIO_S = 10.0
FS = 16000
HOP_MS = 10.0


def build_model(config: Path, vocab: int, workdir: Path):
    """Random-weight model from a training YAML (dummy token list and unit-variance MVN stats)."""
    tokens = workdir / f"tokens_{vocab}.txt"
    tokens.write_text("\n".join(["<blank>", "<unk>", *[f"t{i}" for i in range(vocab - 3)], "<sos/eos>"]) + "\n")
    stats = workdir / "stats.npz"
    np.savez(stats, count=np.array(1.0), sum=np.zeros(80), sum_square=np.ones(80))
    args = PathwaysASRTask.get_parser().parse_args(
        ["--config", str(config), "--token_list", str(tokens), "--normalize_conf", f"stats_file={stats}"]
    )
    torch.manual_seed(0)
    return PathwaysASRTask.build_model(args)


def calibrate_blank(s2t: Speech2Text, audio: np.ndarray, target_per_frame: float = 0.5) -> int:
    """Set the blank bias so that greedy search emits about ``target_per_frame`` labels per frame.

    Bisection on the bias over a fixed encoder output (the search alone is re-run).
    """
    model = s2t.model
    with torch.no_grad():
        enc, enc_lens = model.encode(torch.from_numpy(audio).unsqueeze(0), torch.tensor([len(audio)]))
    target = target_per_frame * int(enc_lens[0])
    bias = model.joiner.output.bias
    base = bias.detach()[0].item()

    def emitted(shift: float) -> int:
        with torch.no_grad():
            bias[0] = base + shift
        return len(greedy_search(model.predictor, model.joiner, enc, enc_lens).tokens[0])

    low, high = -30.0, 30.0  # emitted(low) > target >= emitted(high)
    for _ in range(16):
        mid = (low + high) / 2
        if emitted(mid) > target:
            low = mid
        else:
            high = mid
    # a random model's count can jump across the target: keep the closer side
    below, above = emitted(high), emitted(low)
    return below if target - below <= above - target else emitted(low)


def stream_once(s2t: Speech2Text, audio: np.ndarray) -> Dict[str, object]:
    """Feed ``audio`` one segment of samples per call; time every call."""
    enc = s2t.model.encoder
    piece = int(enc.chunk_shift * HOP_MS * FS / 1000)
    stream = StreamingSpeech2Text(s2t)
    stream.reset(lang="xx" if hasattr(s2t.model, "pathway_masks") else None)
    times: List[float] = []
    start_all = time.perf_counter()
    for start in range(0, len(audio), piece):
        t0 = time.perf_counter()
        stream(audio[start : start + piece], is_final=start + piece >= len(audio))
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - start_all
    return {"total_s": total, "chunk_s": times}


def measure(variants: Dict[str, Speech2Text], audio: np.ndarray, repeats: int = 3) -> Dict[str, Dict[str, float]]:
    """Time the variants round-robin (they share the machine's noise); the first round warms up."""
    runs: Dict[str, List[Dict[str, object]]] = {name: [] for name in variants}
    for round_idx in range(repeats + 1):
        for name, s2t in variants.items():
            run = stream_once(s2t, audio)
            if round_idx > 0:
                runs[name].append(run)
    out = {}
    for name, name_runs in runs.items():
        chunk = sorted(t for run in name_runs for t in run["chunk_s"])
        total = statistics.median(run["total_s"] for run in name_runs)
        out[name] = {
            "rtf": total / (len(audio) / FS),
            "chunk_ms_median": 1000 * statistics.median(chunk),
            "chunk_ms_p95": 1000 * chunk[min(len(chunk) - 1, int(0.95 * len(chunk)))],
            "chunks": len(name_runs[0]["chunk_s"]),
        }
    return out


def random_masks(model, sparsity: float = 0.7):
    gen = torch.Generator().manual_seed(0)
    keep = {n: torch.rand(p.shape, generator=gen) >= sparsity for n, p in prunable_parameters(model).items()}
    return MaskSet({"xx": keep})


def main(quick: bool = False) -> Dict[str, object]:
    """Both configs (``quick``: the demo config only)."""
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    t = np.arange(int(AUDIO_S * FS)) / FS
    audio = (0.1 * np.sin(2 * np.pi * 440 * t * (1 + 0.3 * np.sin(t))) + 0.02 * rng.standard_normal(t.shape))
    audio = audio.astype(np.float32)
    results: Dict[str, object] = {"audio_s": AUDIO_S, "threads": 1, "search": "greedy, streaming"}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (config, vocab) in CONFIGS.items():
            if quick and name != "demo":
                continue
            model = build_model(CONF / config, vocab, Path(tmp))
            s2t = Speech2Text.from_model(model, lang_list=["xx"], streaming=True)
            enc = model.encoder
            tokens = calibrate_blank(s2t, audio)
            entry: Dict[str, object] = {
                "params": sum(p.numel() for p in model.parameters()),
                "vocab": vocab,
                "latency_ms": (enc.segment_length + enc.right_context_length) * enc.stride * HOP_MS,
                "segment_ms": enc.segment_length * enc.stride * HOP_MS,
                "tokens": tokens,
            }
            masked = copy.deepcopy(model)
            attach(masked, random_masks(masked), mode="hard", lang_list=["xx"])
            variants = {
                "dense": s2t,
                "masked_70": Speech2Text.from_model(masked, lang_list=["xx"], streaming=True),
            }
            entry.update(measure(variants, audio))
            if "masked_70" in entry:
                entry["masked_over_dense"] = entry["masked_70"]["rtf"] / entry["dense"]["rtf"]
            results[name] = entry
            logging.warning(f"{name}: {entry}")
    write_result("streaming", results)
    return results


if __name__ == "__main__":
    main()
