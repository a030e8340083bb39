"""trn writing, a real sclite run (Debian sctk) and parsing its result.txt."""

from __future__ import annotations

import pytest

from espnet_pathways.recipe import sclite, trn

REF = {"en_1_a": "the cat sat", "en_2_b": "hello world"}
HYP = {"en_1_a": "the bat sat down", "en_2_b": "hello"}
SPK = {"en_1_a": "en_1", "en_2_b": "en_2"}
KEYS = ["en_1_a", "en_2_b"]


def test_char_tokens():
    assert trn.char_tokens("ab  c") == ["a", "b", "<space>", "c"]
    assert trn.char_tokens("") == []


def test_trn_lines():
    assert trn.trn_lines(REF, SPK, KEYS, "word") == ["the cat sat\t(en_1-en_1_a)\n", "hello world\t(en_2-en_2_b)\n"]
    assert trn.trn_lines({"u": "ab c"}, {"u": "s"}, ["u"], "char") == ["a b <space> c\t(s-u)\n"]
    with pytest.raises(ValueError, match="mode"):
        trn.trn_lines(REF, SPK, KEYS, "phone")
    with pytest.raises(ValueError, match="cannot be written as a trn id"):
        trn.trn_lines({"u": "a"}, {"u": "s-1"}, ["u"], "word")


@pytest.fixture(scope="module")
def sclite_bin():
    return sclite.find_sclite()


def _score(tmp_path, sclite_bin, ref, hyp, mode):
    trn.write_trn(tmp_path / "ref.trn", ref, SPK, KEYS, mode)
    trn.write_trn(tmp_path / "hyp.trn", hyp, SPK, KEYS, mode)
    sclite.run_sclite(tmp_path / "ref.trn", tmp_path / "hyp.trn", tmp_path / "result.txt", sclite_bin)
    return sclite.parse_result(tmp_path / "result.txt")


def test_real_sclite_word_scores(tmp_path, sclite_bin):
    s = _score(tmp_path, sclite_bin, REF, HYP, "word")
    # ref 5 words; 1 substitution (cat->bat), 1 deletion (world), 1 insertion (down)
    assert (s.snt, s.wrd) == (2, 5)
    assert (s.n_corr, s.n_sub, s.n_del, s.n_ins, s.n_err, s.n_serr) == (3, 1, 1, 1, 3, 2)
    assert (s.corr, s.sub, s.dele, s.ins, s.err, s.serr) == (60.0, 20.0, 20.0, 20.0, 60.0, 100.0)


def test_real_sclite_char_scores_and_empty_hypothesis(tmp_path, sclite_bin):
    s = _score(tmp_path, sclite_bin, REF, {"en_1_a": "the cat sat", "en_2_b": ""}, "char")
    assert s.wrd == len("the cat sat") + len("hello world")  # spaces count as <space> tokens
    assert s.n_del == len("hello world") and s.n_sub == 0 and s.n_ins == 0
    assert s.serr == 50.0


def test_perfect_hypotheses(tmp_path, sclite_bin):
    s = _score(tmp_path, sclite_bin, REF, REF, "word")
    assert s.err == 0.0 and s.corr == 100.0


def test_parse_rejects_other_files(tmp_path):
    bad = tmp_path / "result.txt"
    bad.write_text("not a report\n")
    with pytest.raises(ValueError, match="no 'Sum/Avg' row"):
        sclite.parse_result(bad)
    with pytest.raises(FileNotFoundError, match="missing sclite report"):
        sclite.parse_result(tmp_path / "none.txt")


def test_sclite_failure_leaves_nothing(tmp_path, sclite_bin):
    (tmp_path / "ref.trn").write_text("a\t(s-u)\n")
    with pytest.raises(RuntimeError, match="sclite failed"):
        sclite.run_sclite(tmp_path / "ref.trn", tmp_path / "missing.trn", tmp_path / "result.txt", sclite_bin)
    assert not (tmp_path / "result.txt").exists()


def test_find_sclite_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(sclite, "_DEBIAN_SCLITE", str(tmp_path / "none"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="install the Debian package sctk"):
        sclite.find_sclite(str(tmp_path / "also-none"))
