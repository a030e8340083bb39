"""Merged token list: special tokens placed, no duplicates, first occurrence order."""

from __future__ import annotations

import pytest

from espnet_pathways.text import BLANK, SOS_EOS, UNK, merge_pieces, read_token_list, write_token_list


def test_merge_places_specials_and_dedups():
    merged = merge_pieces({"en": ["<unk>", "▁the", "a", "b"], "fr": ["<unk>", "a", "▁le", "<s>", "b", "c"]}, ["en", "fr"])
    assert merged == [BLANK, UNK, "▁the", "a", "b", "▁le", "c", SOS_EOS]


def test_merge_order_follows_langs():
    pieces = {"en": ["x", "y"], "fr": ["y", "z"]}
    assert merge_pieces(pieces, ["fr", "en"]) == [BLANK, UNK, "y", "z", "x", SOS_EOS]


def test_merge_missing_language():
    with pytest.raises(KeyError, match="nl"):
        merge_pieces({"en": ["a"]}, ["en", "nl"])


def test_merge_rejects_whitespace_piece():
    with pytest.raises(ValueError, match="whitespace"):
        merge_pieces({"en": ["a b"]}, ["en"])


def test_write_read_round_trip(tmp_path):
    tokens = [BLANK, UNK, "▁a", "b", SOS_EOS]
    write_token_list(tmp_path / "tokens.txt", tokens)
    assert read_token_list(tmp_path / "tokens.txt") == tokens


@pytest.mark.parametrize(
    "tokens, match",
    [
        ([UNK, BLANK, "a", SOS_EOS], "first"),
        ([BLANK, UNK, "a", "a", SOS_EOS], "line 4: token 'a' repeats line 3"),
        ([BLANK, UNK, SOS_EOS, "a"], "last"),
    ],
)
def test_write_rejects_bad_layout(tmp_path, tokens, match):
    with pytest.raises(ValueError, match=match):
        write_token_list(tmp_path / "tokens.txt", tokens)
    assert not (tmp_path / "tokens.txt").exists()


def test_read_names_file_and_line(tmp_path):
    path = tmp_path / "tokens.txt"
    path.write_text(f"{BLANK}\n{UNK}\n\n{SOS_EOS}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"tokens.txt:3"):
        read_token_list(path)


def test_read_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokens.txt"):
        read_token_list(tmp_path / "tokens.txt")
