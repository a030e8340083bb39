"""MLS data prep: subsets, merged dirs, flac/opus layouts, idempotence and every bad-input case."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf

from espnet_pathways.data.kaldi import read_kaldi_file, validate_data_dir
from espnet_pathways.data.languages import UnknownLanguageError
from espnet_pathways.data.mls import MLSFormatError, prepare_mls
from espnet_pathways.data.mls_reader import PROBLEM_KINDS, MissingCorpusError
from espnet_pathways.recipe.stages import data_prep
from espnet_pathways.utils.lang_list import LANG_LIST
from fake_mls_release import truncate_file

PER_LANG = ("train", "dev", "test")


def _ids(out: Path, name: str) -> list[str]:
    return list(read_kaldi_file(out / name / "utt2spk"))


def _expected_dirs(codes: tuple[str, ...]) -> set[str]:
    return {f"mls_{c}_{s}" for c in codes for s in PER_LANG} | {"train", "dev"}


@pytest.mark.parametrize("subset", ["1h", "10h", "full"])
def test_train_subsets(fake_mls: dict, tmp_path: Path, subset: str) -> None:
    out = tmp_path / "data"
    result = prepare_mls(fake_mls["en"].root, out, "en fr", train_subset=subset)
    for code, release in fake_mls.items():
        one = [h for fold in release.one_hour for h in fold]
        wanted = {"1h": one, "10h": one + release.nine_hour, "full": release.ids["train"]}[subset]
        assert _ids(out, f"mls_{code}_train") == sorted(f"{code}_{u}" for u in wanted)
        assert _ids(out, f"mls_{code}_dev") == sorted(f"{code}_{u}" for u in release.ids["dev"])
    assert result["dirs"]["mls_en_train"]["utterances"] == len(_ids(out, "mls_en_train"))
    assert result["dropped"] == {} and result["skipped"] is False


def test_outputs_are_sorted_consistent_and_merged(fake_mls: dict, tmp_path: Path) -> None:
    out = tmp_path / "data"
    prepare_mls(fake_mls["en"].root, out, ["fr", "en"])
    assert (out / LANG_LIST).read_text() == "fr\nen\n"
    assert {p.name for p in out.iterdir() if p.is_dir()} == _expected_dirs(("fr", "en"))
    for name in _expected_dirs(("fr", "en")):
        n = validate_data_dir(out / name)
        assert n > 0
        for f in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2lang", "utt2category"):
            keys = [line.split(" ", 1)[0] for line in (out / name / f).read_text(encoding="utf-8").splitlines()]
            assert keys == sorted(keys, key=lambda k: k.encode())
    for split in ("train", "dev"):
        merged = read_kaldi_file(out / split / "text")
        parts = {**read_kaldi_file(out / f"mls_en_{split}" / "text"), **read_kaldi_file(out / f"mls_fr_{split}" / "text")}
        assert merged == parts
    utt2spk = read_kaldi_file(out / "mls_en_train" / "utt2spk")
    assert utt2spk["en_70_11_000001"] == "en_70"
    assert read_kaldi_file(out / "mls_en_train" / "text")["en_70_11_000001"] == fake_mls["en"].transcripts("train").read_text().split("70_11_000001\t")[1].split("\n")[0]
    langs = read_kaldi_file(out / "train" / "utt2lang")
    assert langs == read_kaldi_file(out / "train" / "utt2category")
    assert {u: v for u, v in langs.items()} == {u: u[:2] for u in langs}
    wav = read_kaldi_file(out / "mls_fr_test" / "wav.scp")
    for path in wav.values():
        assert os.path.isabs(path) and path.endswith(".opus")
        audio, rate = sf.read(path)
        assert rate == 16000 and audio.ndim == 1 and len(audio) > 0
    assert all(p.endswith(".flac") for p in read_kaldi_file(out / "mls_en_dev" / "wav.scp").values())


def test_flac_release_is_preferred_over_opus(fake_mls: dict, fake_release_writer: Callable, tmp_path: Path) -> None:
    root = fake_mls["en"].root
    fake_release_writer(root, "en", opus=True)
    prepare_mls(root, tmp_path / "data", "en")
    assert all(p.endswith(".flac") for p in read_kaldi_file(tmp_path / "data/mls_en_dev/wav.scp").values())


def test_rerun_skips_until_inputs_or_arguments_change(fake_mls: dict, tmp_path: Path) -> None:
    out = tmp_path / "data"
    first = prepare_mls(fake_mls["en"].root, out, "en", nj=2)
    mtime = (out / "train" / "text").stat().st_mtime_ns
    again = prepare_mls(fake_mls["en"].root, out, "en")
    assert again["skipped"] is True and again["dirs"] == first["dirs"]
    assert (out / "train" / "text").stat().st_mtime_ns == mtime
    assert prepare_mls(fake_mls["en"].root, out, "en", train_subset="1h")["skipped"] is False
    assert len(_ids(out, "train")) == 6
    transcripts = fake_mls["en"].transcripts("dev")
    transcripts.write_text(transcripts.read_text().replace("word dev 0", "changed words"))
    assert prepare_mls(fake_mls["en"].root, out, "en", train_subset="1h")["skipped"] is False
    assert "changed words" in (out / "mls_en_dev" / "text").read_text()


def test_nj_does_not_change_outputs(fake_mls: dict, tmp_path: Path) -> None:
    prepare_mls(fake_mls["en"].root, tmp_path / "a", "en fr", nj=1)
    prepare_mls(fake_mls["en"].root, tmp_path / "b", "en fr", nj=2)
    for name in _expected_dirs(("en", "fr")):
        for f in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2lang"):
            assert (tmp_path / "a" / name / f).read_bytes() == (tmp_path / "b" / name / f).read_bytes()


def test_generated_ci_corpus_prepares(ci_corpus: tuple[Path, dict], tmp_path: Path) -> None:
    root, summary = ci_corpus
    result = prepare_mls(root, tmp_path / "data", "en fr it nl", train_subset="full", nj=1)
    for code in ("en", "fr", "it", "nl"):
        for split in PER_LANG:
            assert result["dirs"][f"mls_{code}_{split}"]["utterances"] == summary[code]["splits"][split]["utterances"]
            assert result["dirs"][f"mls_{code}_{split}"]["speakers"] == summary[code]["splits"][split]["speakers"]
    assert result["dirs"]["train"]["utterances"] == sum(s["splits"]["train"]["utterances"] for s in summary.values())


# ---------------------------------------------------------------- bad inputs


def _replace_line(path: Path, line: int, new: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[line - 1] = new
    path.write_text("".join(lines), encoding="utf-8")


def _break(kind: str, release) -> tuple[Path, int, str, int]:
    """Damage the release; return (file, line, message fragment, utterances lost from mls_en_train full)."""
    split, utt = "train", release.ids["train"][4]
    transcripts = release.transcripts(split)
    line = release.line_of(split, utt)
    audio = release.audio(split, utt)
    if kind == "missing_audio":
        audio.unlink()
        return transcripts, line, f"audio file not found: {audio}", 1
    if kind == "unreadable_audio":
        audio.write_bytes(b"not a flac file at all" * 20)
        return transcripts, line, f"cannot read audio {audio}", 1
    if kind == "undecodable_audio":
        truncate_file(audio)
        return transcripts, line, f"cannot decode audio {re.escape(str(audio))} \\(truncated or corrupt\\)", 1
    if kind == "bad_sample_rate":
        sf.write(str(audio), np.zeros(4000, dtype=np.float32), 8000, format="FLAC")
        return transcripts, line, "has sample rate 8000 Hz, expected 16000 Hz", 1
    if kind == "bad_channels":
        sf.write(str(audio), np.zeros((4000, 2), dtype=np.float32), 16000, format="FLAC")
        return transcripts, line, "has 2 channels, expected 1", 1
    if kind == "empty_audio":
        sf.write(str(audio), np.zeros(0, dtype=np.float32), 16000, format="WAV")  # header only
        return transcripts, line, "has no samples", 1
    if kind == "empty_text":
        _replace_line(transcripts, line, f"{utt}\t  \n")
        return transcripts, line, f"empty transcript for {utt}", 1
    if kind == "no_tab":
        _replace_line(transcripts, line, f"{utt} some words\n")
        return transcripts, line, "no tab between utterance id and text", 1
    if kind == "bad_id":
        _replace_line(transcripts, line, "spk7_book_3\tsome words\n")
        return transcripts, line, "utterance id 'spk7_book_3' is not", 1
    if kind == "bad_encoding":
        data = transcripts.read_bytes().split(b"\n")
        data[line - 1] = utt.encode() + b"\tcaf\xe9 au lait"
        transcripts.write_bytes(b"\n".join(data))
        return transcripts, line, "line is not valid UTF-8", 1
    if kind == "duplicate_id":
        first = release.ids["train"][0]
        _replace_line(transcripts, line, f"{first}\tanother text\n")
        return transcripts, line, f"duplicate utterance id {first} \\(first on line 1\\)", 1
    raise AssertionError(kind)


KINDS = [
    "missing_audio",
    "unreadable_audio",
    "undecodable_audio",
    "bad_sample_rate",
    "bad_channels",
    "empty_audio",
    "empty_text",
    "no_tab",
    "bad_id",
    "duplicate_id",
    "bad_encoding",
]


def test_every_problem_kind_is_tested() -> None:
    assert set(KINDS) | {"unknown_handle"} == set(PROBLEM_KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_raises_with_file_and_line_and_writes_nothing(fake_mls: dict, tmp_path: Path, kind: str) -> None:
    path, line, message, _ = _break(kind, fake_mls["en"])
    out = tmp_path / "data"
    with pytest.raises(MLSFormatError, match=f"{re.escape(str(path))}:{line}: .*{message}") as info:
        prepare_mls(fake_mls["en"].root, out, "en fr")
    assert [p.kind for p in info.value.problems] == [kind]
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("kind", KINDS)
def test_skip_mode_drops_and_counts(fake_mls: dict, tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    _, _, _, lost = _break(kind, fake_mls["en"])
    out = tmp_path / "data"
    with caplog.at_level(logging.WARNING):
        result = prepare_mls(fake_mls["en"].root, out, "en fr", skip_bad_utts=True)
    assert result["dropped"] == {kind: 1}
    assert result["dirs"]["mls_en_train"]["utterances"] == len(fake_mls["en"].ids["train"]) - lost
    assert f"of kind {kind}" in caplog.text
    validate_data_dir(out / "mls_en_train")
    assert result["dirs"]["mls_fr_train"]["utterances"] == len(fake_mls["fr"].ids["train"])


def test_truncated_flac_whose_header_reads_is_refused(fake_mls: dict, tmp_path: Path) -> None:
    release = fake_mls["en"]
    utt = release.ids["dev"][2]
    audio = release.audio("dev", utt)
    truncate_file(audio)
    assert sf.info(str(audio)).frames == 4000  # the header still promises every sample
    with pytest.raises(MLSFormatError, match=f"{re.escape(str(release.transcripts('dev')))}:3: {utt}: cannot decode audio"):
        prepare_mls(release.root, tmp_path / "data", "en", nj=2)
    result = prepare_mls(release.root, tmp_path / "data", "en", skip_bad_utts=True, nj=2)
    assert result["dropped"] == {"undecodable_audio": 1}
    assert f"en_{utt}" not in read_kaldi_file(tmp_path / "data" / "mls_en_dev" / "wav.scp")


def test_unknown_handle_in_subset(fake_mls: dict, tmp_path: Path) -> None:
    handles = fake_mls["fr"].folder / "train/limited_supervision/1hr/2/handles.txt"
    handles.write_text(handles.read_text() + "999_1_000000\n")
    with pytest.raises(MLSFormatError, match=f"{re.escape(str(handles))}:2: handle 999_1_000000 is not in the train transcripts"):
        prepare_mls(fake_mls["en"].root, tmp_path / "data", "en fr", train_subset="1h")
    result = prepare_mls(fake_mls["en"].root, tmp_path / "data", "en fr", train_subset="1h", skip_bad_utts=True)
    assert result["dropped"] == {"unknown_handle": 1} and result["dirs"]["mls_fr_train"]["utterances"] == 6


def test_opus_problems_name_the_opus_file(fake_mls: dict, tmp_path: Path) -> None:
    release = fake_mls["fr"]
    utt = release.ids["dev"][1]
    release.audio("dev", utt).unlink()
    with pytest.raises(MLSFormatError, match=f"{re.escape(str(release.transcripts('dev')))}:2: {utt}: audio file not found: .*{utt}.opus"):
        prepare_mls(release.root, tmp_path / "data", "fr")


def test_failed_rerun_keeps_previous_outputs(fake_mls: dict, tmp_path: Path) -> None:
    out = tmp_path / "data"
    prepare_mls(fake_mls["en"].root, out, "en fr")
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    _break("missing_audio", fake_mls["en"])
    with pytest.raises(MLSFormatError):
        prepare_mls(fake_mls["en"].root, out, "en fr", train_subset="10h")
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before


def test_stale_tmp_of_a_killed_run_is_removed(fake_mls: dict, tmp_path: Path) -> None:
    out = tmp_path / "data"
    (out / ".mls_en_dev.abcd1234.tmp").mkdir(parents=True)  # half-written dir of a killed run
    (out / ".lang_list.txt.abcd1234.tmp").write_text("en\n")
    (out / ".notes.txt.abcd1234.tmp").write_text("not written by the prep")
    prepare_mls(fake_mls["en"].root, out, "en")
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == [".notes.txt.abcd1234.tmp"]


def test_missing_pieces_and_unknown_language(fake_mls: dict, tmp_path: Path) -> None:
    root = fake_mls["en"].root
    with pytest.raises(UnknownLanguageError, match="'xx'; known codes: en fr it nl de es pt pl"):
        prepare_mls(root, tmp_path / "data", "en xx")
    with pytest.raises(MissingCorpusError, match="no MLS release for 'it'.*mls_italian/ or mls_italian_opus/"):
        prepare_mls(root, tmp_path / "data", "en it")
    (fake_mls["en"].folder / "train/limited_supervision/9hr/handles.txt").unlink()
    with pytest.raises(MissingCorpusError, match="9hr/handles.txt: handles file not found"):
        prepare_mls(root, tmp_path / "data", "en", train_subset="10h")
    shutil.rmtree(fake_mls["en"].folder / "test")
    with pytest.raises(MissingCorpusError, match="test/transcripts.txt: transcripts file not found"):
        prepare_mls(root, tmp_path / "data", "en")
    assert not (tmp_path / "data").exists()


def test_all_utterances_bad_is_an_error_even_when_skipping(fake_mls: dict, tmp_path: Path) -> None:
    release = fake_mls["en"]
    for utt in release.ids["dev"]:
        release.audio("dev", utt).unlink()
    with pytest.raises(MLSFormatError, match="en dev: no usable utterances"):
        prepare_mls(release.root, tmp_path / "data", "en", skip_bad_utts=True)


def test_cli_exit_status(fake_mls: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Through stage 1's entry point (the only command line that runs :func:`prepare_mls`)."""
    common = ["--mls_root", str(fake_mls["en"].root), "--out_dir", str(tmp_path / "data")]
    assert data_prep.main(common + ["--langs", "en fr", "--train_subset", "10h"]) == 0
    assert len(_ids(tmp_path / "data", "train")) == 18
    assert data_prep.main(common + ["--langs", "en xx"]) == 1
    assert "unknown language code 'xx'" in caplog.text
    path, line, _, _ = _break("no_tab", fake_mls["en"])
    assert data_prep.main(common + ["--langs", "en"]) == 1
    assert f"{path}:{line}: no tab" in caplog.text
    assert data_prep.main(common + ["--langs", "en", "--skip_bad_utts", "true"]) == 0
