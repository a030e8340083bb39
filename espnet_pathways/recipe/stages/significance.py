"""Paired bootstrap of WER differences between systems, over test utterances and training seeds.

Usage::

    python -m espnet_pathways.recipe.stages.significance \
        --system dense exp/dense_s0/decode_x exp/dense_s1/decode_x exp/dense_s2/decode_x \
        --system pathways exp/pw_s0/decode_x exp/pw_s1/decode_x exp/pw_s2/decode_x \
        --out exp/significance.json

Each ``--system NAME DIR...`` is one system, one directory per training seed: a decode dir
(``<set>/score_wer/result.txt`` of stage 13), one set's folder (``score_wer/result.txt``) or a
score dir (``result.txt``; the set is its parent's name); several comma-joined directories are one
run whose sets are spread over them (a monolingual row: ``exp/lth_en_s1/decode_x,exp/lth_fr_s1/decode_x``).
Per-utterance errors (S + D + I) and
reference words (C + S + D) come from the alignment dump of sclite's ``-o all`` report
(:func:`~espnet_pathways.recipe.sclite.parse_utterances`). Every run must hold the same sets, each
with the same utterances and references.

Statistics (Koehn 2004; Bisani & Ney 2004): the utterances of each set are resampled with
replacement ``--num_resamples`` times (seeded); a resample's WER is its summed errors over its
summed reference words, and the same resamples serve every system and seed, so differences are
paired. Per set and for the macro average over sets (as ``RESULTS.md``'s average; sets are
resampled independently) it reports, per system, the WER of every seed with mean and sd over
seeds, and for every pair (A, B) of systems, in ``--system`` order, the difference of the
seed-mean WERs A - B (percentage points), its percentile interval, and P(A better): the share of
resamples where A's seed-mean WER is lower (ties count half). The interval covers test-set
sampling only; variation between seeds is the sd. The JSON goes to ``--out``; one line a pair to stdout.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from espnet_pathways.recipe.sclite import parse_utterances
from espnet_pathways.utils.cli import run_cli
from espnet_pathways.utils.fileio import atomic_write_text

__all__ = [
    "SCORE_DIRS",
    "find_run_results",
    "AVERAGE",
    "SetScores",
    "SystemScores",
    "Difference",
    "read_set_scores",
    "find_results",
    "read_run",
    "load_system",
    "system_from_runs",
    "bootstrap_wers",
    "difference",
    "compare_systems",
    "main",
]

# metric -> score dir of a decoded set, as stage 13 writes them (recipe.stages.score.METRICS)
SCORE_DIRS = {"wer": "score_wer", "cer": "score_cer"}
RESULT_NAME = "result.txt"
AVERAGE = "avg"  # key of the macro average over sets
_CHUNK_ELEMENTS = 4_000_000  # resample counts held at once (resamples x utterances)


@dataclass(frozen=True)
class SetScores:
    """Per-utterance scores of one run on one set: ``keys`` (N,) sorted utterance ids,
    ``errors`` (N,) S + D + I and ``ref_words`` (N,) C + S + D (int64), read from ``source``."""

    keys: Tuple[str, ...]
    errors: np.ndarray
    ref_words: np.ndarray
    source: Path

    @property
    def wer(self) -> float:
        """Percent: 100 * sum(errors) / sum(ref_words)."""
        return 100.0 * float(self.errors.sum()) / float(self.ref_words.sum())

    def as_dict(self) -> Dict[str, list]:
        """JSON-ready ``{"keys", "errors", "ref_words"}`` (lists), read back by :meth:`from_dict`."""
        return {"keys": list(self.keys), "errors": self.errors.tolist(), "ref_words": self.ref_words.tolist()}

    @classmethod
    def from_dict(cls, record: Dict[str, list], source: Path) -> "SetScores":
        """The scores :meth:`as_dict` wrote, ``source`` naming where they were read (in error messages)."""
        keys, errors, words = record["keys"], record["errors"], record["ref_words"]
        if not len(keys) == len(errors) == len(words):
            raise ValueError(f"{source}: keys, errors and ref_words differ in length")
        return cls(tuple(keys), np.asarray(errors, dtype=np.int64), np.asarray(words, dtype=np.int64), Path(source))


@dataclass(frozen=True)
class SystemScores:
    """One system over its seeds: per set, ``errors[set]`` (S, N) and ``ref_words[set]`` (N,),
    utterances in the order of ``keys[set]``, read from ``sources[set]`` (S,); ``dirs`` (S,) as given."""

    name: str
    dirs: Tuple[str, ...]
    keys: Dict[str, Tuple[str, ...]]
    errors: Dict[str, np.ndarray]
    ref_words: Dict[str, np.ndarray]
    sources: Dict[str, Tuple[Path, ...]]

    def run(self, set_name: str, index: int) -> SetScores:
        """Seed ``index``'s scores on ``set_name``."""
        errors, source = self.errors[set_name][index], self.sources[set_name][index]
        return SetScores(self.keys[set_name], errors, self.ref_words[set_name], source)


@dataclass(frozen=True)
class Difference:
    """Bootstrap of ``WER(A) - WER(B)`` (seed means, percentage points).

    ``diff`` on the test set as it is, ``low``/``high`` the percentile interval at ``confidence``
    over the resamples, ``p_a_better`` the share of resamples with A lower (ties half)."""

    diff: float
    low: float
    high: float
    p_a_better: float
    confidence: float

    def as_dict(self) -> Dict[str, float]:
        return {"diff": self.diff, "low": self.low, "high": self.high, "p_a_better": self.p_a_better}


def read_set_scores(result_txt: Path) -> SetScores:
    """Per-utterance scores of an sclite ``-o all`` report (``result.txt``)."""
    result_txt = Path(result_txt)
    if not result_txt.is_file():
        raise FileNotFoundError(f"missing sclite report: {result_txt} (run stage 13 first)")
    scores = parse_utterances(result_txt)
    keys = tuple(sorted(scores))
    table = np.array([scores[k] for k in keys], dtype=np.int64).reshape(len(keys), 4)  # (N, [C S D I])
    return SetScores(keys, table[:, 1:].sum(axis=1), table[:, :3].sum(axis=1), result_txt)


def find_results(directory: Path, metric: str = "wer") -> Dict[str, Path]:
    """``{set name: result.txt}`` of a decode dir, a set's folder or a score dir (see the module docstring)."""
    directory = Path(directory)
    score_dir = SCORE_DIRS[metric]
    if (directory / RESULT_NAME).is_file():
        return {directory.resolve().parent.name: directory / RESULT_NAME}
    if (directory / score_dir / RESULT_NAME).is_file():
        return {directory.resolve().name: directory / score_dir / RESULT_NAME}
    found = {d.name: d / score_dir / RESULT_NAME for d in sorted(directory.iterdir())} if directory.is_dir() else {}
    found = {name: path for name, path in found.items() if path.is_file()}
    if not found:
        raise FileNotFoundError(f"no {RESULT_NAME} or <set>/{score_dir}/{RESULT_NAME} in {directory} (run stage 13 first)")
    return found


def find_run_results(spec: Path, metric: str = "wer") -> Dict[str, Path]:
    """:func:`find_results` of one run: a directory, or comma-joined directories holding different sets."""
    found: Dict[str, Path] = {}
    for part in str(spec).split(","):
        for set_name, path in find_results(Path(part), metric).items():
            if set_name in found:
                raise ValueError(f"set {set_name!r} is scored in both {found[set_name]} and {path} (one run)")
            found[set_name] = path
    return found


def _choose_sets(found: Dict[str, Path], test_sets: Sequence[str]) -> List[str]:
    """The given sets, else the ``*_test`` sets found (all found sets when none is)."""
    if test_sets:
        return list(test_sets)
    tests = [name for name in found if name.endswith("_test")]
    return sorted(tests or found)


def _check_same(first: SetScores, other: SetScores) -> None:
    if first.keys != other.keys:
        missing = sorted(set(first.keys) - set(other.keys))
        extra = sorted(set(other.keys) - set(first.keys))
        raise ValueError(
            f"{other.source}: utterances differ from {first.source}: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(extra)} extra (e.g. {extra[:3]})"
        )
    bad = np.flatnonzero(first.ref_words != other.ref_words)
    if bad.size:
        raise ValueError(
            f"{other.source}: reference words differ from {first.source} for {bad.size} utterances "
            f"(e.g. {first.keys[int(bad[0])]}); not the same references"
        )


def read_run(directory: Path, sets: Sequence[str], metric: str = "wer") -> Dict[str, SetScores]:
    """``{set: SetScores}`` of one run (a directory or comma-joined directories) on ``sets``
    (``FileNotFoundError`` naming the missing report)."""
    found = find_run_results(Path(directory), metric)
    for set_name in sets:
        if set_name not in found:
            expected = Path(directory) / set_name / SCORE_DIRS[metric] / RESULT_NAME
            raise FileNotFoundError(f"{directory} has no scored set {set_name!r} (no {expected})")
    return {set_name: read_set_scores(found[set_name]) for set_name in sets}


def load_system(
    name: str, dirs: Sequence[Path], metric: str = "wer", test_sets: Sequence[str] = (), like: Optional[SystemScores] = None
) -> SystemScores:
    """Read one system's runs (one directory per seed); every run, and ``like`` if given, must
    hold the same sets, utterances and references (else ``ValueError``/``FileNotFoundError`` naming the file)."""
    if not dirs:
        raise ValueError(f"system {name!r}: no directory given")
    if test_sets:
        sets = list(test_sets)
    elif like is not None:
        sets = list(like.keys)
    else:
        sets = _choose_sets(find_run_results(Path(dirs[0]), metric), ())
    try:
        runs = [read_run(Path(d), sets, metric) for d in dirs]
    except FileNotFoundError as err:
        raise FileNotFoundError(f"system {name!r}: {err}") from None
    return system_from_runs(name, [str(d) for d in dirs], runs, sets, like)


def system_from_runs(
    name: str,
    labels: Sequence[str],
    runs: Sequence[Dict[str, SetScores]],
    test_sets: Sequence[str] = (),
    like: Optional[SystemScores] = None,
) -> SystemScores:
    """One system from its runs' per-set scores (one ``{set: SetScores}`` per seed, named by ``labels``):
    the sets ``test_sets``, else ``like``'s, else the first run's; every run must hold them with
    the same utterances and references (``ValueError`` naming the sources)."""
    if not runs:
        raise ValueError(f"system {name!r}: no run given")
    sets = list(test_sets) if test_sets else list(like.keys) if like is not None else sorted(runs[0])
    for label, run in zip(labels, runs):
        missing = [s for s in sets if s not in run]
        if missing:
            raise ValueError(f"system {name!r}: run {label} has no scores for {missing}")
    for set_name in sets:
        first = like.run(set_name, 0) if like is not None else runs[0][set_name]
        for run in runs:
            _check_same(first, run[set_name])
    return SystemScores(
        name,
        tuple(labels),
        {s: runs[0][s].keys for s in sets},
        {s: np.stack([run[s].errors for run in runs]) for s in sets},
        {s: runs[0][s].ref_words for s in sets},
        {s: tuple(run[s].source for run in runs) for s in sets},
    )


def _resample_counts(rng: np.random.Generator, n: int, num_resamples: int) -> Iterator[np.ndarray]:
    """Blocks of ``(b, n)`` counts: how often each of ``n`` items is drawn in a resample of size ``n``."""
    block = max(1, _CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, num_resamples, block):
        b = min(block, num_resamples - start)
        draws = rng.integers(0, n, size=(b, n))
        flat = (np.arange(b)[:, None] * n + draws).ravel()
        yield np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def bootstrap_wers(errors: np.ndarray, ref_words: np.ndarray, num_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """WER (%) of each run on each resample of the utterances, the same resamples for every run.

    Args:
        errors: (R, N) errors of R runs (systems x seeds) on N utterances.
        ref_words: (N,) reference words.
    Returns:
        (R, num_resamples).
    """
    errors = np.asarray(errors, dtype=np.float64)
    ref_words = np.asarray(ref_words, dtype=np.float64)
    if errors.ndim != 2 or errors.shape[1] != ref_words.shape[0] or ref_words.ndim != 1:
        raise ValueError(f"errors must be (runs, N) and ref_words (N,), got {errors.shape} and {ref_words.shape}")
    if ref_words.sum() <= 0:
        raise ValueError("the references hold no words")
    if num_resamples < 1:
        raise ValueError(f"num_resamples must be >= 1, got {num_resamples}")
    out = []
    for counts in _resample_counts(rng, ref_words.shape[0], num_resamples):
        words = counts @ ref_words  # (b,)
        out.append(100.0 * (errors @ counts.T) / np.maximum(words, 1.0))  # (R, b); 0 words only if all refs empty
    return np.concatenate(out, axis=1)


def difference(
    point_a: np.ndarray, point_b: np.ndarray, boot_a: np.ndarray, boot_b: np.ndarray, confidence: float = 0.95
) -> Difference:
    """Seed-mean difference A - B from WERs on the test set (S_a,), (S_b,) and on resamples (S_a, B), (S_b, B)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    boot = np.mean(boot_a, axis=0) - np.mean(boot_b, axis=0)  # (B,)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(boot, [tail, 100.0 - tail])
    p_a_better = float(np.mean(boot < 0) + 0.5 * np.mean(boot == 0))
    return Difference(float(np.mean(point_a) - np.mean(point_b)), float(low), float(high), p_a_better, confidence)


def _mean_sd(values: np.ndarray) -> Dict[str, object]:
    """``per_seed``, ``mean`` and ``sd`` (ddof 1; None for one seed) of (S,) WERs."""
    sd = float(np.std(values, ddof=1)) if values.size > 1 else None
    return {"per_seed": [float(v) for v in values], "mean": float(np.mean(values)), "sd": sd}


def compare_systems(
    systems: Sequence[SystemScores], num_resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> Dict[str, object]:
    """WER per system and set (and :data:`AVERAGE`), and the bootstrap of every pair's difference.

    Returns:
        ``{"sets": {set: {"utterances", "words"}}, "systems": {name: {"dirs", "seeds", "wer": {set|avg:
        {"per_seed", "mean", "sd"}}}}, "comparisons": [{"a", "b", "diff": {set|avg: Difference.as_dict()}}]}``.
    """
    if len(systems) < 2:
        raise ValueError("need at least two systems to compare")
    names = [s.name for s in systems]
    if len(set(names)) != len(names):
        raise ValueError(f"system names must differ: {names}")
    sets = list(systems[0].keys)
    for other in systems[1:]:
        for set_name in sets:
            if set_name not in other.keys:
                raise ValueError(f"system {other.name!r} has no set {set_name!r} (system {names[0]!r} has)")
            _check_same(systems[0].run(set_name, 0), other.run(set_name, 0))
    rng = np.random.default_rng(seed)
    point: Dict[str, List[np.ndarray]] = {}  # set -> per system (S,)
    boot: Dict[str, List[np.ndarray]] = {}  # set -> per system (S, B)
    for set_name in sets:
        words = systems[0].ref_words[set_name]
        stacked = np.concatenate([s.errors[set_name] for s in systems])  # (sum S, N)
        all_boot = bootstrap_wers(stacked, words, num_resamples, rng)
        splits = np.cumsum([s.errors[set_name].shape[0] for s in systems])[:-1]
        boot[set_name] = np.split(all_boot, splits)
        point[set_name] = [100.0 * s.errors[set_name].sum(axis=1) / words.sum() for s in systems]
    point[AVERAGE] = [np.mean([point[k][i] for k in sets], axis=0) for i in range(len(systems))]
    boot[AVERAGE] = [np.mean([boot[k][i] for k in sets], axis=0) for i in range(len(systems))]
    keys = sets + [AVERAGE]
    comparisons = [
        {
            "a": systems[i].name,
            "b": systems[j].name,
            "diff": {k: difference(point[k][i], point[k][j], boot[k][i], boot[k][j], confidence).as_dict() for k in keys},
        }
        for i, j in itertools.combinations(range(len(systems)), 2)
    ]
    return {
        "sets": {k: {"utterances": len(systems[0].keys[k]), "words": int(systems[0].ref_words[k].sum())} for k in sets},
        "systems": {
            s.name: {"dirs": list(s.dirs), "seeds": len(s.dirs), "wer": {k: _mean_sd(point[k][i]) for k in keys}}
            for i, s in enumerate(systems)
        },
        "comparisons": comparisons,
    }


def _summary_line(report: Dict[str, object], comparison: Dict[str, object], metric: str, confidence: float) -> str:
    systems, sets = report["systems"], report["sets"]
    a, b = comparison["a"], comparison["b"]
    d = comparison["diff"][AVERAGE]

    def wer(name: str) -> str:
        cell = systems[name]["wer"][AVERAGE]
        sd = "" if cell["sd"] is None else f"±{cell['sd']:.2f}"
        return f"{cell['mean']:.2f}{sd}"

    utts = sum(v["utterances"] for v in sets.values())
    words = sum(v["words"] for v in sets.values())
    return (
        f"{a} vs {b}: avg {metric.upper()} {wer(a)} vs {wer(b)} ({systems[a]['seeds']}/{systems[b]['seeds']} seeds), "
        f"diff {d['diff']:+.2f} [{100 * confidence:g}%: {d['low']:+.2f}, {d['high']:+.2f}], "
        f"P({a} better)={d['p_a_better']:.3f}; {len(sets)} sets, {utts} utts, {words} words"
    )


def run(
    systems: Sequence[Tuple[str, Sequence[Path]]],
    out: Path,
    metric: str = "wer",
    test_sets: Sequence[str] = (),
    num_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Dict[str, object]:
    """Load ``[(name, dirs)]``, compare, write ``out`` (JSON, atomically), print one line a pair; return the report."""
    loaded: List[SystemScores] = []
    for name, dirs in systems:
        loaded.append(load_system(name, dirs, metric, test_sets, like=loaded[0] if loaded else None))
    report = {
        "metric": metric,
        "num_resamples": num_resamples,
        "seed": seed,
        "confidence": confidence,
        **compare_systems(loaded, num_resamples, seed, confidence),
    }
    atomic_write_text(out, json.dumps(report, indent=1) + "\n")
    for comparison in report["comparisons"]:
        print(_summary_line(report, comparison, metric, confidence))
    logging.info("wrote %s", out)
    return report


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--system", nargs="+", action="append", required=True, metavar=("NAME", "DIR"),
        help="a system's name and its decode/set/score dirs, one per training seed (comma-joined dirs: one seed's "
        "sets spread over several dirs); give --system twice or more",
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON report to write")
    parser.add_argument("--metric", choices=list(SCORE_DIRS), default="wer")
    parser.add_argument("--test_sets", default="", help="space-separated set names (default: the *_test sets found)")
    parser.add_argument("--num_resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    parser.add_argument("--confidence", type=float, default=0.95)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    for entry in args.system:
        if len(entry) < 2:
            get_parser().error(f"--system {' '.join(entry)}: give a name and at least one directory")
    systems = [(entry[0], [Path(d) for d in entry[1:]]) for entry in args.system]
    return run_cli(
        lambda: run(systems, args.out, args.metric, args.test_sets.split(), args.num_resamples, args.seed, args.confidence)
    )


if __name__ == "__main__":
    sys.exit(main())
