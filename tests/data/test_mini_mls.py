"""The generated MLS-shaped corpus: layout, formats, speakers, determinism, idempotence, atomicity."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_pathways.data import mini_mls_synth
from espnet_pathways.data.corpus_text import load_vocabulary
from espnet_pathways.data.languages import UnknownLanguageError, get_language
from espnet_pathways.data.mini_mls import STAMP_NAME, CorpusExistsError, generate_mini_mls
from espnet_pathways.data.mini_mls_meta import book_titles
from espnet_pathways.data.mini_mls_plan import (
    MAX_SECONDS,
    MIN_SECONDS,
    SIZES,
    limited_supervision,
    parse_lang_scale,
    plan_language,
    rng_for,
    train_amounts,
)
from espnet_pathways.recipe.stages import data_prep

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
    with pytest.raises(CorpusExistsError, match="size=ci seed=0.*size=ci seed=3.*another --corpus_dir"):
        generate_mini_mls(root, size="ci", langs=("en",), seed=3)
    assert stamp.stat().st_mtime_ns == before
    argv = ["--langs", "en", "--corpus_dir", str(root), "--corpus_size", "ci", "--corpus_seed", "3"]
    assert data_prep.main(argv + ["--out_dir", str(root / "data")]) == 1  # the stage's exit status


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


# ---- pinned corpora: the demo results depend on existing sizes staying exactly as they were ----

# sha256[:16] of _plan_digest, computed with the generator of before --lang_scale and the repro
# size existed (repro: when it was added). A change here changes the corpus of that size.
PINNED_PLANS = {
    ("ci", 0): {"en": "8536875d27e23bc7", "fr": "d20c237684e1198c", "it": "7dcf97a1a0ea8fd6", "nl": "8d82283362950302"},
    ("ci", 1): {"en": "85528b9490006310", "de": "4eeb1b707cb1e4a7"},
    ("demo", 0): {"en": "8ddb73bc741fef25", "fr": "d548669f95571e0e", "it": "1b108beeb967bb45", "nl": "50f112f632291522"},
    ("large", 0): {"en": "866f0b4078ade132", "fr": "6ec463a6e05c3819", "it": "3bfe0cb8215078f6", "nl": "052c0e0fc979d874"},
    ("repro", 0): {"en": "0da9dd6c8e9380ef", "fr": "12853cf248791759", "it": "3212997eae72f3a5", "nl": "d526f6cfb5e2c32c"},
}
# sha256[:16] of _corpus_digest of the ci corpus (seed 0) made by the generator of before; it also
# depends on espeak-ng and libsndfile: a failure after upgrading them means the corpus changed.
PINNED_CI_CORPUS = {"en": "4522df9a1b4aa25f", "fr": "94b489f67e75bfbf", "it": "df8477ca0b425fea", "nl": "f9b9609804176252"}


def _plans(size: str, code: str, seed: int = 0, scale: float = 1.0) -> dict:
    lang = get_language(code)
    return plan_language(lang, SIZES[size], seed, load_vocabulary(lang, SIZES[size].vocab), scale)


def _plan_digest(size: str, code: str, seed: int = 0, scale: float = 1.0) -> str:
    """Everything a corpus is made from, short of espeak-ng: plans, handles and book titles."""
    lang, plans = get_language(code), _plans(size, code, seed, scale)
    digest = hashlib.sha256()
    for split in SPLITS:
        for p in plans[split]:
            digest.update(repr((split, str(p.utt), p.speaker, p.words, p.n_words, p.snr_db, p.noise_seed)).encode())
    train_ids = sorted(str(p.utt) for p in plans["train"])
    digest.update(repr(limited_supervision(lang, SIZES[size], seed, train_ids)).encode())
    books = sorted({p.utt.book for utts in plans.values() for p in utts})
    vocab = load_vocabulary(lang, SIZES[size].vocab)
    digest.update(repr(book_titles(books, vocab, rng_for(seed, lang, 5))).encode())
    return digest.hexdigest()[:16]


def _corpus_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for split in SPLITS:
        digest.update((folder / split / "transcripts.txt").read_bytes())
    for path in sorted(folder.glob("*/audio/*/*/*.flac")):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(sf.read(str(path), dtype="int16")[0].tobytes())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("size,seed", list(PINNED_PLANS))
def test_sizes_plan_what_they_planned_before(size: str, seed: int) -> None:
    found = {code: _plan_digest(size, code, seed) for code in PINNED_PLANS[(size, seed)]}
    assert found == PINNED_PLANS[(size, seed)], f"the {size} corpus (seed {seed}) is no longer what it was"


def test_ci_corpus_is_what_it_was(ci_corpus: tuple[Path, dict]) -> None:
    root, summary = ci_corpus
    assert all("train_scale" not in summary[code] for code in CI_LANGS)
    found = {code: _corpus_digest(root / get_language(code).mls_dir) for code in CI_LANGS}
    assert found == PINNED_CI_CORPUS


# ---- per-language train sizes (--lang_scale) and the repro size ----


def test_repro_size_has_large_test_sets() -> None:
    repro = SIZES["repro"]
    assert repro.utterances["test"] >= 400 and repro.speakers["test"] == 8  # 8.4-8.9 words an utterance
    assert train_amounts(repro) == (1500, 24)
    assert train_amounts(repro, 4.0) == (6000, 96)
    assert train_amounts(repro, 0.25) == (375, 6)
    assert train_amounts(SIZES["ci"], 0.01) == (2, 2)


@pytest.mark.parametrize("scale", [0.25, 4.0])
def test_lang_scale_changes_only_the_train_split(scale: float) -> None:
    base, scaled = _plans("repro", "en"), _plans("repro", "en", scale=scale)
    assert scaled["dev"] == base["dev"] and scaled["test"] == base["test"]
    utterances, speakers = train_amounts(SIZES["repro"], scale)
    train_speakers = {p.speaker for p in scaled["train"]}
    assert len(scaled["train"]) == utterances and len(train_speakers) == speakers
    assert sum(s.gender == "F" for s in train_speakers) == speakers // 2
    held_out = {p.speaker.id for split in ("dev", "test") for p in scaled[split]}
    assert not {s.id for s in train_speakers} & held_out
    books = {split: {p.utt.book for p in scaled[split]} for split in SPLITS}
    assert not books["train"] & (books["dev"] | books["test"])
    ids = [str(p.utt) for plans in scaled.values() for p in plans]
    assert len(ids) == len(set(ids))
    assert _plan_digest("repro", "en", scale=4.0) == "bc7652d60ec3f7fa"  # pinned when added


def test_lang_scale_is_capped_by_the_voices() -> None:
    plans = _plans("ci", "nl", scale=40.0)  # 400 speakers wanted; 80 female voices, 2 of them in dev/test
    speakers = {p.speaker for p in plans["train"]}
    assert len(plans["train"]) == 960 and len(speakers) == 2 * 78 + 1
    assert sum(s.gender == "F" for s in speakers) == 78


def test_lang_scale_below_limited_supervision_fails() -> None:
    with pytest.raises(ValueError, match="--lang_scale it:0.05 leaves 75 train utterances.*needs at least 150.*scale >= 0.1"):
        _plans("repro", "it", scale=0.05)


def test_parse_lang_scale() -> None:
    langs = ("en", "fr", "nl")
    assert parse_lang_scale("en:4 fr:1 nl:0.25", langs) == {"en": 4.0, "nl": 0.25}
    assert parse_lang_scale(["en:4", "nl:0.5"], langs) == parse_lang_scale({"en": 4, "nl": 0.5}, langs)
    assert parse_lang_scale("", langs) == parse_lang_scale(None, langs) == {}
    for spec, message in (
        ("xx:2", "--lang_scale: unknown language code 'xx'"),
        ("it:2", "--lang_scale: 'it' is not one of the languages generated"),
        ("en:0", "--lang_scale: scale of 'en' must be a number > 0"),
        ("en:-1", "--lang_scale: scale of 'en' must be a number > 0"),
        ("en:nan", "--lang_scale: scale of 'en' must be a number > 0"),
        ("en:big", "--lang_scale: scale of 'en' is 'big', not a number"),
        ("en4", "--lang_scale: 'en4' is not <lang>:<scale>"),
        ("en:2 en:3", "--lang_scale: 'en' is given more than once"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_lang_scale(spec, langs)


def test_bad_lang_scale_fails_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--lang_scale: scale of 'fr' must be a number > 0"):
        generate_mini_mls(tmp_path / "c", size="ci", langs=("en", "fr"), lang_scale="fr:0")
    argv = ["--langs", "en", "--corpus_dir", str(tmp_path / "c"), "--corpus_size", "ci", "--lang_scale", "xx:2"]
    assert data_prep.main(argv + ["--out_dir", str(tmp_path / "d")]) == 1
    assert not (tmp_path / "c").exists()


def test_scaled_language_leaves_the_others_alone(ci_corpus: tuple[Path, dict], tmp_path: Path) -> None:
    root = tmp_path / "scaled"
    generate_mini_mls(root, size="ci", langs=("en", "fr"), lang_scale="en:2", nj=2)
    first, again = _read_all(ci_corpus[0], "fr"), _read_all(root, "fr")
    assert first.keys() == again.keys() and all(np.array_equal(first[k], again[k]) for k in first)
    english = root / get_language("en").mls_dir
    stamp = json.loads((english / STAMP_NAME).read_text())["params"]
    assert stamp["train_scale"] == 2.0 and stamp["splits"]["train"]["utterances"] == 48
    assert "train_scale" not in json.loads((root / get_language("fr").mls_dir / STAMP_NAME).read_text())["params"]
    base = ci_corpus[0] / get_language("en").mls_dir
    for split in ("dev", "test"):
        assert (english / split / "transcripts.txt").read_text() == (base / split / "transcripts.txt").read_text()
    assert all(info["skipped"] for info in generate_mini_mls(root, size="ci", langs="en fr", lang_scale={"en": 2}).values())
    with pytest.raises(CorpusExistsError, match=re.escape("(size=ci seed=0 train_scale=2) but size=ci seed=0 was asked")):
        generate_mini_mls(root, size="ci", langs=("en",))
    with pytest.raises(CorpusExistsError, match=re.escape("(size=ci seed=0) but size=ci seed=0 train_scale=0.5 was asked")):
        generate_mini_mls(root, size="ci", langs=("fr",), lang_scale="fr:0.5")


def test_data_prep_passes_lang_scale(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen = []
    monkeypatch.setattr(data_prep, "generate_mini_mls", lambda out, **kw: seen.append(kw))
    monkeypatch.setattr(data_prep, "prepare_mls", lambda *a, **kw: None)
    argv = ["--langs", "en nl", "--corpus_dir", str(tmp_path), "--corpus_size", "repro", "--lang_scale", "en:4 nl:0.25"]
    assert data_prep.main(argv) == 0
    assert seen == [{"size": "repro", "langs": ["en", "nl"], "seed": 0, "nj": 1, "lang_scale": "en:4 nl:0.25"}]
    assert data_prep.main(["--langs", "en", "--mls_root", str(tmp_path), "--lang_scale", "en:4"]) == 1
