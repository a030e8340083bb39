"""The generated MLS-shaped corpus: layout, formats, speakers, determinism, idempotence, atomicity."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_pathways.data import mini_mls_synth
from espnet_pathways.data.languages import UnknownLanguageError, get_language
from espnet_pathways.data.mini_mls import STAMP_NAME, CorpusExistsError, generate_mini_mls, main
from espnet_pathways.data.mini_mls_plan import MAX_SECONDS, MIN_SECONDS, SIZES

CI_LANGS = ("en", "fr", "it", "nl")  # what the ci_corpus fixture generates
SPLITS = ("train", "dev", "test")
UTT_LINE = re.compile(r"(\d+)_(\d+)_(\d{6})\t(\S.*)")


def _transcripts(folder: Path, split: str) -> dict[str, str]:
    out = {}
    for line in (folder / split / "transcripts.txt").read_text(encoding="utf-8").splitlines():
        match = UTT_LINE.fullmatch(line)
        assert match, f"bad transcript line {line!r}"
        out[line.split("\t")[0]] = match[4]
    return out


def _speaker(utt: str) -> str:
    return utt.split("_")[0]


@pytest.mark.parametrize("code", CI_LANGS)
def test_layout_and_formats(ci_corpus: tuple[Path, dict], code: str) -> None:
    root, summary = ci_corpus
    lang = get_language(code)
    folder = root / lang.mls_dir
    size = SIZES["ci"]
    assert summary[code]["path"] == str(folder) and summary[code]["skipped"] is False
    word = re.compile("[" + re.escape(lang.letters) + "']+")
    for split in SPLITS:
        texts = _transcripts(folder, split)
        assert len(texts) == size.utterances[split] == summary[code]["splits"][split]["utterances"]
        assert list(texts) == sorted(texts)
        for utt, text in texts.items():
            assert text == text.lower() and "  " not in text
            assert all(word.fullmatch(w) for w in text.split()), text
            spk, book, _ = utt.split("_")
            info = sf.info(str(folder / split / "audio" / spk / book / f"{utt}.flac"))
            assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_16", 16000, 1)
            assert MIN_SECONDS - 0.01 <= info.duration <= MAX_SECONDS + 0.01
        audio_files = sorted(p.stem for p in (folder / split / "audio").glob("*/*/*.flac"))
        assert audio_files == list(texts)
        segments = [line.split("\t") for line in (folder / split / "segments.txt").read_text().splitlines()]
        assert [s[0] for s in segments] == list(texts)
        for utt, url, start, end in segments:
            assert url.startswith("http://www.archive.org/download/") and url.endswith(".mp3")
            assert 0.0 < float(start) < float(end)


@pytest.mark.parametrize("code", CI_LANGS)
def test_speakers_metainfo_and_handles(ci_corpus: tuple[Path, dict], code: str) -> None:
    folder = ci_corpus[0] / get_language(code).mls_dir
    utts = {split: _transcripts(folder, split) for split in SPLITS}
    speakers = {split: {_speaker(u) for u in utts[split]} for split in SPLITS}
    assert len(speakers["train"]) >= 10
    assert not speakers["train"] & speakers["dev"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["dev"] & speakers["test"]

    lines = (folder / "metainfo.txt").read_text(encoding="utf-8").splitlines()
    assert [c.strip() for c in lines[0].split("|")] == ["SPEAKER", "GENDER", "PARTITION", "MINUTES", "BOOK ID", "TITLE", "CHAPTER"]
    rows = [[c.strip() for c in line.split("|")] for line in lines[1:]]
    genders = {}
    for spk, gender, partition, minutes, book, title, chapter in rows:
        assert gender in ("M", "F") and title and chapter and float(minutes) > 0
        assert any(u.startswith(f"{spk}_{book}_") for u in utts[partition])
        genders[spk] = gender
    seen_pairs = {("_".join(u.split("_")[:2]), split) for split in SPLITS for u in utts[split]}
    assert seen_pairs == {(f"{r[0]}_{r[4]}", r[2]) for r in rows}
    assert {genders[s] for s in speakers["train"]} == {"M", "F"}

    ls = folder / "train" / "limited_supervision"
    folds = [(ls / "1hr" / str(f) / "handles.txt").read_text().split() for f in range(6)]
    nine = (ls / "9hr" / "handles.txt").read_text().split()
    flat = [h for fold in folds for h in fold]
    assert all(len(fold) == SIZES["ci"].one_hour_fold for fold in folds)
    assert len(flat) == len(set(flat)) and set(flat) <= set(utts["train"])
    assert len(nine) == SIZES["ci"].nine_hour and set(nine) <= set(utts["train"]) and not set(nine) & set(flat)


def _read_all(root: Path, code: str) -> dict[str, object]:
    folder = root / get_language(code).mls_dir
    out: dict[str, object] = {f"{s}/transcripts": (folder / s / "transcripts.txt").read_text() for s in SPLITS}
    for path in sorted(folder.glob("*/audio/*/*/*.flac")):
        out[str(path.relative_to(folder))] = sf.read(str(path), dtype="int16")[0]
    return out


def test_same_seed_same_corpus_for_any_nj(ci_corpus: tuple[Path, dict], tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_mini_mls(again, size="ci", langs=("fr", "nl"), seed=0, nj=2)
    for code in ("fr", "nl"):
        first, second = _read_all(ci_corpus[0], code), _read_all(again, code)
        assert first.keys() == second.keys()
        for key in first:
            assert np.array_equal(first[key], second[key]) if isinstance(first[key], np.ndarray) else first[key] == second[key]


def test_other_seed_other_corpus(ci_corpus: tuple[Path, dict], tmp_path: Path) -> None:
    generate_mini_mls(tmp_path / "s1", size="ci", langs=("en",), seed=1)
    base = get_language("en").mls_dir
    assert (ci_corpus[0] / base / "train/transcripts.txt").read_text() != (tmp_path / "s1" / base / "train/transcripts.txt").read_text()


def test_rerun_skips_and_other_arguments_are_refused(ci_corpus: tuple[Path, dict]) -> None:
    root = ci_corpus[0]
    stamp = root / get_language("en").mls_dir / STAMP_NAME
    before = stamp.stat().st_mtime_ns
    summary = generate_mini_mls(root, size="ci", langs=CI_LANGS, seed=0)
    assert all(info["skipped"] for info in summary.values())
    assert summary["en"]["splits"] == ci_corpus[1]["en"]["splits"]
    assert stamp.stat().st_mtime_ns == before
    with pytest.raises(CorpusExistsError, match="size=ci seed=0.*size=ci seed=3.*--overwrite"):
        generate_mini_mls(root, size="ci", langs=("en",), seed=3)
    assert stamp.stat().st_mtime_ns == before
    assert main(["--size", "ci", "--out", str(root), "--langs", "en fr"]) == 0
    assert main(["--size", "ci", "--out", str(root), "--langs", "en", "--seed", "3"]) == 1


def test_overwrite_replaces_and_unknown_inputs_fail(tmp_path: Path) -> None:
    generate_mini_mls(tmp_path, size="ci", langs=("it",), seed=0)
    first = (tmp_path / "mls_italian/train/transcripts.txt").read_text()
    summary = generate_mini_mls(tmp_path, size="ci", langs=("it",), seed=5, overwrite=True)
    assert summary["it"]["seed"] == 5 and not summary["it"]["skipped"]
    assert (tmp_path / "mls_italian/train/transcripts.txt").read_text() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mls_italian"]
    with pytest.raises(UnknownLanguageError, match="'xx'.*en fr it nl de es pt pl"):
        generate_mini_mls(tmp_path / "other", size="ci", langs=("en", "xx"))
    with pytest.raises(ValueError, match="unknown size 'huge'"):
        generate_mini_mls(tmp_path / "other", size="huge")
    assert not (tmp_path / "other").exists()


def test_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = mini_mls_synth.espeak_synthesize

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 40:
            raise RuntimeError("synthetic failure")
        return real(*args, **kwargs)

    monkeypatch.setattr(mini_mls_synth, "espeak_synthesize", flaky)
    with pytest.raises(RuntimeError, match="synthetic failure"):
        generate_mini_mls(tmp_path, size="ci", langs=("en", "nl"), seed=0, nj=1)
    # en (first ~32 utterances) finished before the failure and was committed; nl was not.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mls_english"]
    assert (tmp_path / "mls_english" / STAMP_NAME).is_file()
