"""Adding a language to a token list: existing ids kept, new pieces before ``<sos/eos>``."""

from __future__ import annotations

import pytest

from espnet_pathways.text import SpmOptions, build_token_list_dir, extend_pieces, extend_token_list_dir

OLD = ["<blank>", "<unk>", *[f"p{i}" for i in range(10)], "<sos/eos>"]


def test_extend_pieces_keeps_ids_and_sos_eos_last():
    merged = extend_pieces(OLD, ["<unk>", "p3", "ñ", "á", "p7", "<s>", "é"], "es")
    assert merged[: len(OLD) - 1] == OLD[:-1]
    assert merged[len(OLD) - 1 :] == ["ñ", "á", "é", "<sos/eos>"]


def test_extend_token_list_dir_trains_the_new_language(tmp_path, corpora):
    char = SpmOptions(model_type="char")
    old = build_token_list_dir(corpora, ["en", "fr"], {"en": char, "fr": char}, tmp_path / "old")
    new = extend_token_list_dir(tmp_path / "old", "nl", corpora["nl"], char, tmp_path / "new")
    assert new[: len(old) - 1] == old[:-1] and new[-1] == "<sos/eos>" and len(new) > len(old)
    assert all(any(piece in line for line in corpora["nl"]) for piece in new[len(old) - 1 : -1])
    assert {p.name for p in (tmp_path / "new").glob("*.model")} == {"en.model", "fr.model", "nl.model"}
    with pytest.raises(ValueError, match="fr.model: language 'fr' is already"):
        extend_token_list_dir(tmp_path / "old", "fr", corpora["fr"], char, tmp_path / "again")
