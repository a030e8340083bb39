"""Generate a small corpus in the exact Multilingual LibriSpeech release layout, spoken by espeak-ng
(stage 1 runs it: :mod:`espnet_pathways.recipe.stages.data_prep`).

Each language is built in a temporary folder and renamed to ``<out>/mls_<name>`` when complete,
with ``mini_mls.json`` recording size, seed, train scale (when not 1) and counts. Rerunning with the
same arguments skips the language; other arguments on an existing folder are an error unless
``overwrite``. The result is a pure function of (size, seed, language, its train scale):
independent of ``nj`` and of the other languages. ``lang_scale="en:4 nl:0.25"`` multiplies
the train utterances and speakers of those languages (unlisted: 1), as MLS is imbalanced; their
dev and test sets stay those of scale 1.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence, Union

from espnet_pathways.data.corpus_text import Vocabulary, load_vocabulary
from espnet_pathways.data.languages import Language, get_language, parse_langs
from espnet_pathways.data.mini_mls_meta import (
    MadeUtt,
    book_titles,
    handles_text,
    metainfo_text,
    segments_text,
    transcripts_text,
)
from espnet_pathways.data.mini_mls_plan import (
    SIZES,
    CorpusSize,
    UttPlan,
    limited_supervision,
    parse_lang_scale,
    plan_language,
    rng_for,
)
from espnet_pathways.data.mini_mls_synth import SynthJob, SynthResult, init_worker, synthesize_utterance
from espnet_pathways.data.mls_format import ONE_HOUR_FOLDS, SPLITS, audio_path, nine_hour_handles, one_hour_handles
from espnet_pathways.data.mls_reader import check_audio, read_handles, read_transcripts
from espnet_pathways.data.parallel import parallel_map
from espnet_pathways.utils.fileio import atomic_dir, atomic_write_text
from espnet_pathways.utils.stamp import fingerprint, read_stamp, write_stamp

__all__ = ["generate_mini_mls", "CorpusExistsError", "STAMP_NAME", "DEFAULT_LANGS"]

logger = logging.getLogger(__name__)

GENERATOR = "espnet_pathways.data.mini_mls"
GENERATOR_VERSION = 1
STAMP_NAME = "mini_mls.json"
DEFAULT_LANGS: tuple[str, ...] = ("en", "fr", "it", "nl")


class CorpusExistsError(FileExistsError):
    """The output folder holds a language made with other arguments (or not by this generator)."""


class CorpusValidationError(RuntimeError):
    """What the generator wrote does not read back as a valid MLS release (a bug, not bad input)."""


@dataclass
class _LanguageBuild:
    lang: Language
    tmp: Path
    vocab: Vocabulary
    plans: dict[str, list[UttPlan]]
    train_scale: float = 1.0


def _identity(lang: str, size: str, seed: int, train_scale: float = 1.0) -> dict[str, object]:
    """What a stamp must hold to be reused; ``train_scale`` only when not 1 (stamps of before lack it)."""
    scale = {"train_scale": train_scale} if train_scale != 1.0 else {}
    return {"generator": GENERATOR, "version": GENERATOR_VERSION, "lang": lang, "size": size, "seed": seed, **scale}


def _stamp_matches(stamp: Optional[dict], wanted: dict[str, object]) -> bool:
    return stamp is not None and {k: v for k, v in stamp.items() if k != "splits"} == wanted


def _describe(stamp: dict) -> str:
    scale = f" train_scale={stamp['train_scale']:g}" if "train_scale" in stamp else ""
    return f"size={stamp.get('size')} seed={stamp.get('seed')}{scale}"


def _read_stamp(folder: Path) -> Optional[dict]:
    """The identity and counts the folder's stamp records (a stamp of before utils.stamp holds them bare)."""
    record = read_stamp(folder / STAMP_NAME)
    return record.get("params", record) if record else None


def _plan_language(lang: Language, size: CorpusSize, seed: int, train_scale: float, tmp: Path) -> _LanguageBuild:
    vocab = load_vocabulary(lang, size.vocab)
    return _LanguageBuild(lang, tmp, vocab, plan_language(lang, size, seed, vocab, train_scale), train_scale)


def _stats(utts: list[MadeUtt]) -> dict[str, float]:
    return {
        "utterances": len(utts),
        "speakers": len({u.utt.speaker for u in utts}),
        "hours": round(sum(u.seconds for u in utts) / 3600.0, 4),
    }


def _validate(build: _LanguageBuild, made: dict[str, list[MadeUtt]]) -> None:
    """Read the folder back with the data-prep reader; any problem is a generator bug."""
    train_ids: set[str] = set()
    for split in SPLITS:
        scan = read_transcripts(build.tmp / split, "flac")
        problems = scan.problems + check_audio(scan.utterances, nj=1, progress=False)
        if problems:
            raise CorpusValidationError(f"generated {build.lang.code} {split} is invalid: {problems[0]}")
        if sorted(scan.seen_ids) != sorted(str(u.utt) for u in made[split]):
            raise CorpusValidationError(f"generated {build.lang.code} {split}: transcripts do not match the plan")
        if split == "train":
            train_ids = scan.seen_ids
    handle_files = [one_hour_handles(build.tmp / "train", f) for f in range(ONE_HOUR_FOLDS)]
    _, problems = read_handles(handle_files + [nine_hour_handles(build.tmp / "train")], train_ids)
    if problems:
        raise CorpusValidationError(f"generated {build.lang.code} handles are invalid: {problems[0]}")


def _finish_language(build: _LanguageBuild, made: dict[str, list[MadeUtt]], size: CorpusSize, seed: int) -> dict:
    """Write the text files of one language, validate the folder, write the stamp; return its summary."""
    lang, tmp = build.lang, build.tmp
    books = sorted({u.utt.book for utts in made.values() for u in utts})
    titles = book_titles(books, build.vocab, rng_for(seed, lang, 5))
    for index, split in enumerate(SPLITS):
        atomic_write_text(tmp / split / "transcripts.txt", transcripts_text(made[split]))
        atomic_write_text(tmp / split / "segments.txt", segments_text(made[split], titles, rng_for(seed, lang, 4, index)))
    atomic_write_text(tmp / "metainfo.txt", metainfo_text(made, titles))
    folds, nine = limited_supervision(lang, size, seed, sorted(str(u.utt) for u in made["train"]))
    for fold, ids in enumerate(folds):
        atomic_write_text(one_hour_handles(tmp / "train", fold), handles_text(ids))
    atomic_write_text(nine_hour_handles(tmp / "train"), handles_text(nine))
    _validate(build, made)
    identity = _identity(lang.code, size.name, seed, build.train_scale)
    summary = {**identity, "splits": {split: _stats(made[split]) for split in SPLITS}}
    write_stamp(tmp / STAMP_NAME, fingerprint(identity), summary)
    return summary


def _jobs(builds: list[_LanguageBuild]) -> list[SynthJob]:
    return [
        SynthJob(plan, b.lang.espeak_voice, str(audio_path(b.tmp / split, plan.utt, "flac")))
        for b in builds
        for split in SPLITS
        for plan in b.plans[split]
    ]


def _collect(build: _LanguageBuild, results: Iterator[SynthResult]) -> dict[str, list[MadeUtt]]:
    made: dict[str, list[MadeUtt]] = {}
    for split in SPLITS:
        made[split] = []
        for plan in build.plans[split]:
            result = next(results)
            if result.utt != str(plan.utt):
                raise CorpusValidationError(f"result for {result.utt} arrived in place of {plan.utt}")
            made[split].append(MadeUtt(plan.utt, plan.speaker, result.text, result.num_samples))
    return made


def generate_mini_mls(
    out_dir: Union[str, Path],
    size: str = "demo",
    langs: Union[str, Sequence[str]] = DEFAULT_LANGS,
    seed: int = 0,
    nj: int = 1,
    overwrite: bool = False,
    lang_scale: Union[str, Sequence[str], Mapping[str, float], None] = None,
) -> dict[str, dict]:
    """Generate (or reuse) ``out_dir/mls_<name>`` for each language.

    Args:
        out_dir: the corpus root (what the data prep calls ``mls_root``).
        size: a key of :data:`~espnet_pathways.data.mini_mls_plan.SIZES` (``ci``, ``demo``, ``large``, ``repro``).
        langs: language codes, e.g. ``("en", "fr")`` or ``"en fr"``.
        seed: the corpus is a pure function of (size, seed, language, its train scale).
        nj: synthesis processes; does not change the result.
        overwrite: replace a language folder made with other arguments.
        lang_scale: train-size multipliers, ``"en:4 nl:0.25"`` or ``{"en": 4.0}``; unlisted languages 1
            (see :func:`~espnet_pathways.data.mini_mls_plan.parse_lang_scale`).
    Returns:
        ``{code: {"path", "skipped", "size", "seed", ["train_scale",] "splits": {split: {"utterances", "speakers", "hours"}}}}``.
    Raises:
        CorpusExistsError: a folder exists with other arguments and ``overwrite`` is false.
        ValueError: unknown size, or a bad ``lang_scale`` (the message names ``--lang_scale``).
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
    size_cfg = SIZES[size]
    codes = parse_langs(langs)
    scales = parse_lang_scale(lang_scale, codes)
    out = Path(out_dir).resolve()
    summary: dict[str, dict] = {}
    todo: list[Language] = []
    for code in codes:
        lang = get_language(code)
        target = out / lang.mls_dir
        if target.exists():
            stamp = _read_stamp(target)
            wanted = _identity(code, size, seed, scales.get(code, 1.0))
            if _stamp_matches(stamp, wanted):
                logger.info("%s: %s already generated (%s), skipping", code, target, _describe(wanted))
                summary[code] = {**stamp, "path": str(target), "skipped": True}
                continue
            if not overwrite:
                found = "no mini_mls stamp" if stamp is None else _describe(stamp)
                raise CorpusExistsError(
                    f"{target} exists ({found}) but {_describe(wanted)} was asked; "
                    "remove it, choose another --corpus_dir, or pass overwrite=True"
                )
        todo.append(lang)
    if not todo:
        return summary
    with contextlib.ExitStack() as outer:
        builds: list[tuple[_LanguageBuild, contextlib.ExitStack]] = []
        for lang in todo:
            stack = outer.enter_context(contextlib.ExitStack())
            tmp = stack.enter_context(atomic_dir(out / lang.mls_dir))
            builds.append((_plan_language(lang, size_cfg, seed, scales.get(lang.code, 1.0), tmp), stack))
        jobs = _jobs([b for b, _ in builds])
        desc = f"mini_mls {size} {' '.join(lang.code for lang in todo)}"
        results = parallel_map(synthesize_utterance, jobs, nj=nj, desc=desc, initializer=init_worker)
        with contextlib.closing(results):
            for build, stack in builds:
                made = _collect(build, results)
                stats = _finish_language(build, made, size_cfg, seed)
                stack.close()  # renames the finished temporary folder into place
                summary[build.lang.code] = {**stats, "path": str(out / build.lang.mls_dir), "skipped": False}
                logger.info("%s: wrote %s", build.lang.code, out / build.lang.mls_dir)
    return {code: summary[code] for code in codes}

