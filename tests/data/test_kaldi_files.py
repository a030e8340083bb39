"""Kaldi file helpers: sorted atomic writes, strict reads, data-dir validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from espnet_pathways.data.kaldi import (
    KaldiDataError,
    read_kaldi_file,
    utt2spk_to_spk2utt,
    validate_data_dir,
    write_data_dir,
    write_kaldi_file,
)


def _dir_files() -> dict[str, dict[str, str]]:
    utts = {"s70_a_000001": "s70", "s7_a_000000": "s7", "s7_b_000002": "s7", "s123_x_000000": "s123"}
    return {
        "wav.scp": {u: f"/audio/{u}.flac" for u in utts},
        "text": {u: f"hello {u}" for u in utts},
        "utt2spk": utts,
        "utt2lang": {u: "en" for u in utts},
    }


def test_write_sorts_in_c_order_and_reads_back(tmp_path: Path) -> None:
    mapping = {"b": "2", "a_x": "1 with spaces", "B": "0", "é": "3", "a": "9"}
    write_kaldi_file(tmp_path / "f", mapping)
    lines = (tmp_path / "f").read_text(encoding="utf-8").splitlines()
    assert [line.split()[0] for line in lines] == ["B", "a", "a_x", "b", "é"]
    assert read_kaldi_file(tmp_path / "f") == mapping
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_read_rejects_non_utf8_with_line(tmp_path: Path) -> None:
    (tmp_path / "text").write_bytes(b"a ok\nb caf\xe9\n")
    with pytest.raises(KaldiDataError, match="text:2: line is not valid UTF-8"):
        read_kaldi_file(tmp_path / "text")


def test_write_rejects_ids_with_whitespace(tmp_path: Path) -> None:
    with pytest.raises(KaldiDataError, match="whitespace"):
        write_kaldi_file(tmp_path / "f", {"a b": "x"})
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize(
    "content, line, message",
    [("a 1\na 2\n", 2, "duplicate id 'a' \\(first on line 1\\)"), ("a 1\nb\n", 2, "id 'b' has no value"), ("a 1\n\nb 2\n", 2, "empty line")],
)
def test_read_errors_name_file_and_line(tmp_path: Path, content: str, line: int, message: str) -> None:
    path = tmp_path / "text"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(KaldiDataError, match=f"text:{line}: {message}"):
        read_kaldi_file(path)


def test_spk2utt_groups_and_sorts() -> None:
    spk2utt = utt2spk_to_spk2utt({"s7_b": "s7", "s70_a": "s70", "s7_a": "s7"})
    assert list(spk2utt.items()) == [("s7", "s7_a s7_b"), ("s70", "s70_a")]


def test_write_data_dir_is_valid(tmp_path: Path) -> None:
    write_data_dir(tmp_path / "d", _dir_files())
    assert validate_data_dir(tmp_path / "d") == 4
    assert (tmp_path / "d" / "spk2utt").read_text().splitlines()[0] == "s123 s123_x_000000"


def _corrupt(tmp_path: Path, name: str, content: str) -> Path:
    d = tmp_path / "d"
    write_data_dir(d, _dir_files())
    (d / name).write_text(content, encoding="utf-8")
    return d


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("text", "s7_a_000000 x\ns123_x_000000 y\n", "text:2: id 's123_x_000000' is out of order"),
        ("utt2lang", "s123_x_000000 en\ns70_a_000001 en\ns7_a_000000 en\nzz en\n", "utt2lang:4: utterance 'zz' is not in utt2spk"),
        ("wav.scp", "s123_x_000000 /a\n", "utterance 's70_a_000001' of utt2spk is missing"),
        ("spk2utt", "s123 s123_x_000000\ns7 s7_a_000000\ns70 s70_a_000001\n", "spk2utt:2: speaker 's7' does not match"),
        ("utt2spk", "s123_x_000000 s123\ns70_a_000001 s70\ns7_a_000000 s70\ns7_b_000002 s7\n", "utt2spk:3: speaker 's70' is not a prefix"),
    ],
)
def test_validate_catches_inconsistencies(tmp_path: Path, name: str, content: str, message: str) -> None:
    d = _corrupt(tmp_path, name, content)
    with pytest.raises(KaldiDataError, match=message):
        validate_data_dir(d)


def test_validate_requires_files(tmp_path: Path) -> None:
    d = tmp_path / "d"
    write_data_dir(d, _dir_files())
    (d / "spk2utt").unlink()
    with pytest.raises(KaldiDataError, match="missing spk2utt"):
        validate_data_dir(d)
