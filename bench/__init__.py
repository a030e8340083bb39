"""Benchmarks of espnet-pathways (``make bench``); results land in ``bench/results``."""
