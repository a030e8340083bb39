"""Run every benchmark and write the summary table (``make bench``).

Usage: ``python -m bench.run_all [--quick]``; results in ``bench/results/*.json`` and
``bench/results/README.md``.
"""

from __future__ import annotations

import argparse
import logging

import torch

from bench import bench_batch_decoding, bench_export, bench_lang_auto, bench_masks, bench_pruning, bench_streaming
from bench.summarize import write_summary

BENCHMARKS = {
    "masks": bench_masks.main,
    "streaming": bench_streaming.main,
    "batch_decoding": bench_batch_decoding.main,
    "pruning": bench_pruning.main,
    "lang_auto": bench_lang_auto.main,
    "export": bench_export.main,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    threads = torch.get_num_threads()
    for name in args.only or BENCHMARKS:
        logging.info("benchmark %s", name)
        torch.set_num_threads(threads)  # a benchmark may pin its own thread count
        BENCHMARKS[name](quick=args.quick)
    logging.info("wrote %s", write_summary())


if __name__ == "__main__":
    main()
