"""Stages 3 and 4: format_data and filter_data."""

from __future__ import annotations

import logging
import re

import pytest
import soundfile

from fake_mls_release import truncate_file
from recipe_data import FS, UTTS, read_lines, write_lang_list
from espnet_pathways.recipe.stages import filter_data, format_data


def test_format_writes_every_file(data_dir, lang_list, tmp_path):
    dst = tmp_path / "dump" / "org" / "train"
    assert format_data.format_data_dir(data_dir, dst, lang_list, fs=FS)
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2lang", "utt2category", "utt2num_samples",
                 "utt2lang_id", "lang_list.txt", "feats_type"):
        assert (dst / name).is_file(), name
    samples = dict(line.split() for line in read_lines(dst / "utt2num_samples"))
    assert {k: int(v) for k, v in samples.items()} == {u: int(s * FS) for u, (_, _, s, _) in UTTS.items()}
    ids = dict(line.split() for line in read_lines(dst / "utt2lang_id"))
    assert ids == {u: ("0" if lang == "en" else "1") for u, (_, lang, _, _) in UTTS.items()}
    assert "fr_3 fr_3_12_000001 fr_3_12_000002" in read_lines(dst / "spk2utt")
    assert read_lines(dst / "lang_list.txt") == ["en", "fr"]
    assert read_lines(dst / "feats_type") == ["raw"]


def test_format_is_resumable(data_dir, lang_list, tmp_path):
    dst = tmp_path / "out"
    assert format_data.format_data_dir(data_dir, dst, lang_list)
    assert not format_data.format_data_dir(data_dir, dst, lang_list)
    (data_dir / "text").write_text((data_dir / "text").read_text().replace("the cat sat", "a cat sat"))
    assert format_data.format_data_dir(data_dir, dst, lang_list)
    assert "en_1_10_000001 a cat sat" in read_lines(dst / "text")


def test_unknown_language_names_line(data_dir, tmp_path):
    only_en = write_lang_list(tmp_path / "langs.txt", ["en"])
    dst = tmp_path / "out"
    with pytest.raises(ValueError, match=r"utt2lang:4: utterance 'fr_3_12_000001' has language 'fr'"):
        format_data.format_data_dir(data_dir, dst, only_en)
    assert not dst.exists()


def test_mismatched_ids(data_dir, lang_list, tmp_path):
    lines = read_lines(data_dir / "text")
    (data_dir / "text").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match="utterance ids of wav.scp and text differ.*fr_4_13_000001"):
        format_data.format_data_dir(data_dir, tmp_path / "out", lang_list)
    assert not (tmp_path / "out").exists()


def test_missing_file_and_empty_dir(data_dir, lang_list, tmp_path):
    (data_dir / "utt2category").unlink()
    with pytest.raises(FileNotFoundError, match="utt2category"):
        format_data.format_data_dir(data_dir, tmp_path / "out", lang_list)
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in ("wav.scp", "text", "utt2spk", "utt2lang", "utt2category"):
        (empty / name).write_text("")
    with pytest.raises(ValueError, match="no utterance"):
        format_data.format_data_dir(empty, tmp_path / "out", lang_list)


def test_bad_audio(data_dir, lang_list, tmp_path):
    (data_dir / "wav.scp").write_text((data_dir / "wav.scp").read_text().replace("en_1_10_000002.flac", "nope.flac"))
    with pytest.raises(ValueError, match=r"wav.scp:2: en_1_10_000002: cannot read audio"):
        format_data.format_data_dir(data_dir, tmp_path / "out", lang_list)
    with pytest.raises(ValueError, match="is 16000 Hz, expected 8000 Hz"):
        format_data.format_data_dir(data_dir.parent.parent / "data" / "train", tmp_path / "o2", lang_list, fs=8000)


def test_truncated_audio_is_refused_naming_file_and_utterance(data_dir, lang_list, tmp_path, caplog):
    audio = tmp_path / "audio" / "en_1_10_000002.flac"
    truncate_file(audio)
    assert soundfile.info(str(audio)).frames == int(UTTS["en_1_10_000002"][2] * FS)  # the header still reads
    message = rf"wav.scp:2: en_1_10_000002: cannot decode audio {re.escape(str(audio))} \(truncated or corrupt\)"
    dst = tmp_path / "dump" / "org" / "train"
    with pytest.raises(ValueError, match=message):
        format_data.format_data_dir(data_dir, dst, lang_list, fs=FS, nj=2)
    assert not dst.parent.exists()
    argv = ["--src", str(data_dir), "--dst", str(dst), "--lang_list", str(lang_list)]
    with caplog.at_level(logging.ERROR):
        assert format_data.main(argv) == 1
    assert re.search(message, caplog.text)
    assert not dst.parent.exists()


def test_format_removes_its_own_stale_tmp(data_dir, lang_list, tmp_path):
    out = tmp_path / "org"
    (out / ".train.abcd1234.tmp").mkdir(parents=True)  # a killed run's half-written output dir
    (out / ".dev.abcd1234.tmp").mkdir()  # another set's: not this run's to remove
    assert format_data.format_data_dir(data_dir, out / "train", lang_list)
    assert sorted(p.name for p in out.iterdir()) == [".dev.abcd1234.tmp", "train"]


def test_format_cli_exit_status(data_dir, tmp_path):
    bad = tmp_path / "langs.txt"
    bad.write_text("en\nen\n")
    assert format_data.main(["--src", str(data_dir), "--dst", str(tmp_path / "o"), "--lang_list", str(bad)]) == 1
    good = write_lang_list(tmp_path / "good.txt")
    assert format_data.main(["--src", str(data_dir), "--dst", str(tmp_path / "o"), "--lang_list", str(good)]) == 0


@pytest.fixture
def formatted(data_dir, lang_list, tmp_path):
    dst = tmp_path / "org"
    format_data.format_data_dir(data_dir, dst, lang_list)
    return dst


def test_filter_keeps_files_consistent(formatted, tmp_path):
    dst = tmp_path / "train"
    assert filter_data.filter_data_dir(formatted, dst, FS, 0.1, 1.0)
    kept = {"en_1_10_000001", "en_1_10_000002", "fr_3_12_000001"}  # too short, too long, empty text dropped
    for name in filter_data.FORMATTED_FILES:
        assert {line.split()[0] for line in read_lines(dst / name)} == kept, name
    assert read_lines(dst / "spk2utt") == ["en_1 en_1_10_000001 en_1_10_000002", "fr_3 fr_3_12_000001"]
    assert (dst / "lang_list.txt").is_file() and (dst / "feats_type").is_file()
    assert not filter_data.filter_data_dir(formatted, dst, FS, 0.1, 1.0)
    assert filter_data.filter_data_dir(formatted, dst, FS, 0.1, 2.0)
    assert len(read_lines(dst / "text")) == 4


def test_filter_everything_removed(formatted, tmp_path):
    with pytest.raises(ValueError, match="every utterance was filtered out"):
        filter_data.filter_data_dir(formatted, tmp_path / "x", FS, 5.0, 6.0)
    assert not (tmp_path / "x").exists()


def test_filter_bad_inputs(formatted, tmp_path):
    with pytest.raises(ValueError, match="min_wav_duration <= max_wav_duration"):
        filter_data.filter_data_dir(formatted, tmp_path / "x", FS, 2.0, 1.0)
    (formatted / "utt2num_samples").write_text(
        (formatted / "utt2num_samples").read_text().replace("8000", "8k", 1)
    )
    with pytest.raises(ValueError, match=r"utt2num_samples:1: en_1_10_000001: number of samples '8k'"):
        filter_data.filter_data_dir(formatted, tmp_path / "x", FS, 0.0, 10.0)
