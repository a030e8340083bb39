"""Training batches by language: monolingual runs of batches, or mixed batches (LAP).

ESPnet's category sampler (``batch_type: folded`` + ``utt2category`` next to the first training
data file) makes monolingual batches, but :class:`SequenceIterFactory` shuffles the batch order
every epoch, so with ``accum_grad > 1`` an accumulation group (``accum_grad`` consecutive batches)
mixes languages. :class:`LanguageRunIterFactory` keeps ESPnet's iterator (seeding, the
``num_iters_per_epoch`` slicing across epochs, the DataLoader) and orders each epoch's batch list
in *runs*: ``run_length`` consecutive batches of one language (``--lang_run_length``, default
``accum_grad``; a multiple of it). Per epoch, with ``RandomState(epoch + seed)`` as ESPnet:

1. each language's batches are shuffled and cut into runs of ``run_length``; the incomplete tail
   (< ``run_length`` batches of a language) is dropped for that epoch: a shorter run would shift
   every later accumulation group off its boundary. Which batches are dropped changes per epoch,
   so no utterance is left out for good; each language keeps its share of batches up to that tail
   (the count is logged);
2. the runs are shuffled and concatenated.

An epoch slice of ``num_iters_per_epoch`` batches (must be a multiple of ``accum_grad``) then starts
on an accumulation-group boundary, since every epoch's list is a whole number of runs. Distributed
training shards each batch as ``batch[rank::world_size]`` before this (ESPnet's sharding): every
rank has the same batches per language, so every rank builds the same runs in the same order.

:func:`categories_ignored` makes ESPnet's sampler skip ``utt2category`` (mixed-language batches,
the LAP method).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from espnet2.iterators.sequence_iter_factory import SequenceIterFactory
from espnet2.samplers.abs_sampler import AbsSampler
from espnet2.tasks import abs_task

__all__ = ["LanguageRunSampler", "LanguageRunIterFactory", "categories_ignored", "check_run_options"]

Batch = Tuple[str, ...]


def check_run_options(accum_grad: int, run_length: Optional[int], num_iters_per_epoch: Optional[int]) -> int:
    """Validate the options and return the run length (``run_length`` or ``accum_grad``)."""
    run_length = accum_grad if run_length is None else run_length
    if run_length <= 0 or run_length % accum_grad:
        raise ValueError(
            f"--lang_run_length ({run_length}) must be a positive multiple of --accum_grad ({accum_grad})"
        )
    if num_iters_per_epoch is not None and num_iters_per_epoch % accum_grad:
        raise ValueError(
            f"--num_iters_per_epoch ({num_iters_per_epoch}) must be a multiple of --accum_grad ({accum_grad}) "
            "so that every epoch starts on an accumulation-group boundary"
        )
    return run_length


class LanguageRunSampler(AbsSampler):
    """Batches in monolingual runs of ``run_length``, re-drawn for each epoch by :meth:`generate`.

    Args:
        batches: ESPnet's (sharded) batches, [num_batches][utts]; each of one language.
        utt2lang: utterance id -> language (the ``utt2category`` file).
        run_length: batches per run (> 0).
        shuffle: shuffle the batches inside each language and the runs (training); else keep the
            sampler's order.
    """

    def __init__(self, batches: Sequence[Sequence[str]], utt2lang: Mapping[str, str], run_length: int,
                 shuffle: bool = True):
        self.run_length = run_length
        self.shuffle = shuffle
        self.by_lang: Dict[str, List[Batch]] = {}  # language -> its batches, in the sampler's order
        for batch in batches:
            langs = {utt2lang[utt] for utt in batch}
            if len(langs) != 1:
                raise ValueError(
                    f"a training batch holds languages {sorted(langs)}: monolingual runs need category "
                    "batches (batch_type folded + utt2category)"
                )
            self.by_lang.setdefault(langs.pop(), []).append(tuple(batch))
        self.num_runs = {lang: len(b) // run_length for lang, b in self.by_lang.items()}
        if not any(self.num_runs.values()):
            raise ValueError(f"no language has {run_length} training batches (--lang_run_length / --accum_grad)")
        dropped = {lang: len(b) % run_length for lang, b in self.by_lang.items() if len(b) % run_length}
        logging.info(
            f"language runs: {sum(self.num_runs.values())} runs of {run_length} batches "
            f"{dict(self.num_runs)}; per epoch {sum(dropped.values())} tail batches dropped {dropped}"
        )

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(N-batch={len(self)}, run_length={self.run_length}, runs={self.num_runs})"

    def __len__(self) -> int:
        return self.run_length * sum(self.num_runs.values())

    def __iter__(self) -> Iterator[Batch]:
        return iter(self.generate(0))

    def runs(self, seed: int) -> List[List[Batch]]:
        """The runs of the epoch seeded ``seed``, in order: [num_runs][run_length] batches."""
        rng = np.random.RandomState(seed)
        runs = []
        for lang, batches in self.by_lang.items():
            order = rng.permutation(len(batches)) if self.shuffle else np.arange(len(batches))
            kept = [batches[i] for i in order[: self.num_runs[lang] * self.run_length]]
            runs += [kept[i: i + self.run_length] for i in range(0, len(kept), self.run_length)]
        if self.shuffle:
            rng.shuffle(runs)
        return runs

    def generate(self, seed: int) -> List[Batch]:
        """The batch list of one epoch: the runs of ``seed`` concatenated, [len(self)][utts]."""
        return [batch for run in self.runs(seed) for batch in run]


class LanguageRunIterFactory(SequenceIterFactory):
    """ESPnet's :class:`SequenceIterFactory` whose epochs are ordered in runs by a :class:`LanguageRunSampler`.

    The sampler does the shuffling (of whole runs), so the parent never reorders single batches.
    """

    def build_iter(self, epoch: int, shuffle: Optional[bool] = None):
        self.sampler.shuffle = self.shuffle if shuffle is None else shuffle
        return super().build_iter(epoch, shuffle=False)

    @classmethod
    def from_factory(cls, factory: SequenceIterFactory, utt2lang: Mapping[str, str],
                     run_length: int) -> "LanguageRunIterFactory":
        """The same iterator as ESPnet's ``factory`` (dataset, seed, options), its batches in runs."""
        if factory.shuffle_within_batch:
            raise ValueError("--shuffle_within_batch true mixes languages inside batches; monolingual runs need "
                             "it false")
        sampler = LanguageRunSampler(factory.sampler.generate(factory.seed), utt2lang, run_length, factory.shuffle)
        return cls(
            dataset=factory.dataset, batches=sampler, num_iters_per_epoch=factory.num_iters_per_epoch,
            seed=factory.seed, shuffle=factory.shuffle, shuffle_within_batch=False,
            num_workers=factory.num_workers, collate_fn=factory.collate_fn, pin_memory=factory.pin_memory,
        )


@contextlib.contextmanager
def categories_ignored():
    """Inside the block ESPnet's ``build_sequence_iter_factory`` builds its batches without
    ``utt2category`` (it looks the file up itself and has no option to skip it)."""
    build = abs_task.build_batch_sampler
    abs_task.build_batch_sampler = lambda **kwargs: build(**{**kwargs, "utt2category_file": None})
    try:
        yield
    finally:
        abs_task.build_batch_sampler = build
