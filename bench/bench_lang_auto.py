"""Cost of decoding an unknown language (``--lang auto``) against decoding with the true language.

Usage::

    python -m bench.bench_lang_auto            # writes bench/results/lang_auto.json
    python -m bench.bench_lang_auto --quick    # 4 s of audio, 3 rounds

The demo Emformer transducer is built with random weights (as in :mod:`bench.bench_streaming`,
blank bias calibrated to about one label per two encoder frames) and given four random 70 % pathway
masks (en, fr, it, nl). One utterance of synthetic audio is decoded with greedy streaming search
(1 CPU thread) by each variant, round-robin so that they share the machine's noise:

* ``true_lang``: the language that ``auto`` picks, given (one pathway): the pathway that runs to the
  end is then the same in every variant (with random weights the pathways emit different numbers of
  labels, and the search's cost follows them);
* ``auto_full``: ``lang="auto"``, ``lid_chunks=0`` (every pathway decodes the whole utterance);
* ``auto_k<k>``: ``lang="auto"``, every pathway decodes the first k chunks, then one continues.

Reported: RTF per variant (median over rounds) and the median over rounds of each variant's time
divided by ``true_lang``'s in the same round. Expected: ``auto_full`` about the number of pathways
(4); ``auto_k<k>`` about 1 + 3 k / (chunks of the utterance), plus the pathway switches.
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
from espnet_pathways.asr.inference import AUTO_LANG, Speech2Text
from espnet_pathways.masks import MaskSet, attach, prunable_parameters

__all__ = ["LANGS", "KS", "pathway_masks", "main", "summary_rows"]

LANGS = ("en", "fr", "it", "nl")
KS = (1, 2, 4, 8)


def pathway_masks(model: torch.nn.Module, sparsity: float = 0.7) -> MaskSet:
    """One random mask per language of :data:`LANGS` over the prunable weights."""
    gen = torch.Generator().manual_seed(0)
    params = prunable_parameters(model)
    return MaskSet(
        {lang: {n: torch.rand(p.shape, generator=gen) >= sparsity for n, p in params.items()} for lang in LANGS}
    )


def main(quick: bool = False) -> Dict[str, object]:
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    audio_s, rounds = (4.0, 3) if quick else (10.0, 7)
    rng = np.random.default_rng(0)
    t = np.arange(int(audio_s * FS)) / FS
    audio = (0.1 * np.sin(2 * np.pi * 440 * t * (1 + 0.3 * np.sin(t))) + 0.02 * rng.standard_normal(t.shape))
    audio = audio.astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        config, vocab = CONFIGS["demo"]
        model = build_model(CONF / config, vocab, Path(tmp))
    calibrate_blank(Speech2Text.from_model(model, lang_list=list(LANGS)), audio)  # dense, before the masks
    attach(model, pathway_masks(model), mode="hard", lang_list=list(LANGS))

    def decoder(lid_chunks: int) -> Speech2Text:
        return Speech2Text.from_model(model, lang_list=list(LANGS), streaming=True, lid_chunks=lid_chunks)

    picked = decoder(0)(audio, lang=AUTO_LANG)[0].lang
    variants = {"true_lang": (decoder(0), picked), "auto_full": (decoder(0), AUTO_LANG)}
    variants.update({f"auto_k{k}": (decoder(k), AUTO_LANG) for k in KS})
    chosen: Dict[str, str] = {}

    def run(name: str):
        s2t, lang = variants[name]
        return lambda: chosen.__setitem__(name, s2t(audio, lang=lang)[0].lang)

    times = interleaved_times({name: run(name) for name in variants}, repeats=rounds)
    enc = model.encoder
    n_chunks = int(np.ceil(audio_s * FS / (enc.chunk_shift * 160)))  # hop 160 samples (demo frontend)
    result: Dict[str, object] = {
        "audio_s": audio_s,
        "rounds": rounds,
        "threads": 1,
        "search": "greedy, streaming",
        "pathways": list(LANGS),
        "true_lang": picked,
        "chunk_ms": enc.chunk_shift * 10.0,
        "chunks": n_chunks,
        "rtf": {name: statistics.median(ts) / audio_s for name, ts in times.items()},
        "vs_true_lang": paired_ratio_medians(times, "true_lang"),
        "chosen": chosen,
    }
    logging.warning(f"lang_auto: {result}")
    write_result("lang_auto", result)
    return result


def summary_rows(r: dict) -> List[str]:
    """The markdown table of a result (for ``bench/results/README.md``)."""
    rows = [
        "### Decoding an unknown language (`python -m bench.bench_lang_auto`)",
        "",
        f"{r['audio_s']} s of audio ({r['chunks']} chunks of {r['chunk_ms']:.0f} ms), {r['threads']} thread, "
        f"{r['search']}, {len(r['pathways'])} pathways (true language: {r['true_lang']}, the one auto picks), "
        f"medians of {r['rounds']} round-robin rounds:",
        "",
        "| variant | RTF | vs true language (median of same-round ratios) |",
        "|---|---:|---:|",
    ]
    for name, rtf in r["rtf"].items():
        rows.append(f"| {name} | {rtf:.3f} | {r['vs_true_lang'][name]:.2f} |")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 s of audio, 3 rounds")
    print("\n".join(summary_rows(main(quick=parser.parse_args().quick))))
