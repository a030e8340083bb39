"""The add-language report (recipe.stages.extend_report) on decode dirs scored by the real sclite."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Dict

import pytest
import torch

from espnet_pathways.masks import MaskSet
from espnet_pathways.recipe.sclite import find_sclite, run_sclite
from espnet_pathways.recipe.stages import extend_report as er

pytestmark = pytest.mark.skipif(shutil.which("sclite") is None and not Path("/usr/lib/sctk/bin/sclite").exists(),
                                reason="sclite (Debian package sctk) is not installed")

REFS = {
    "en": {"en_1": "the cat sat on the mat", "en_2": "hello world", "en_3": "one two three"},
    "fr": {"fr_1": "le chat est sur le tapis", "fr_2": "bonjour le monde"},
    "es": {"es_1": "el gato esta en la alfombra", "es_2": "hola mundo"},
}


def _masks(es_own: int) -> MaskSet:
    """en, fr and es over 10 weights; es keeps 4, of which ``es_own`` no other language keeps."""
    en = torch.tensor([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], dtype=torch.bool)
    fr = torch.tensor([0, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=torch.bool)
    es = torch.zeros(10, dtype=torch.bool)
    es[:4 - es_own] = True
    es[6:6 + es_own] = True
    return MaskSet({"en": {"w": en}, "fr": {"w": fr}, "es": {"w": es}})


def _decode_dir(root: Path, hyps: Dict[str, Dict[str, str]], masks: MaskSet = None) -> Path:
    """``root/<mls_<lang>_test>/{text, score_wer/result.txt}`` as stages 12-13 write them (and the
    run's ``masks.pwm`` next to ``root``)."""
    if masks is not None:
        root.parent.mkdir(parents=True)
        masks.save(root.parent / "masks.pwm")
    for lang, texts in hyps.items():
        set_dir = root / er.lang_test_set(lang)
        (set_dir / "score_wer").mkdir(parents=True)
        (set_dir / "text").write_text("".join(f"{k} {texts[k]}\n" for k in sorted(texts)))
        for name, side in (("ref", REFS[lang]), ("hyp", texts)):
            (set_dir / "score_wer" / f"{name}.trn").write_text("".join(f"{side[k]}\t(x-{k})\n" for k in sorted(side)))
        run_sclite(set_dir / "score_wer" / "ref.trn", set_dir / "score_wer" / "hyp.trn",
                   set_dir / "score_wer" / "result.txt", find_sclite())
    return root


@pytest.fixture()
def decodes(tmp_path):
    base = _decode_dir(tmp_path / "base" / "decode", {"en": dict(REFS["en"], en_2="hello word"), "fr": REFS["fr"]})
    frozen = _decode_dir(tmp_path / "frozen" / "decode", {"en": dict(REFS["en"], en_2="hello word"), "fr": REFS["fr"],
                                                         "es": dict(REFS["es"], es_2="ola mundo")}, _masks(1))
    adapting = _decode_dir(tmp_path / "adapting" / "decode", {"en": REFS["en"], "fr": dict(REFS["fr"], fr_2="bonjour monde"),
                                                             "es": {"es_1": "el gato", "es_2": "hola mundo"}}, _masks(3))
    return base, frozen, adapting


def test_report_changes_identical_hypotheses_and_new_language(decodes, tmp_path):
    base, frozen, adapting = decodes
    report = er.extend_report(base, [("frozen", frozen), ("adapting", adapting)], ["en", "fr"], "es", num_resamples=200)
    out = tmp_path / "out" / "REPORT.md"
    out.parent.mkdir()
    er.write_extend_report(report, out)
    assert json.loads(out.with_suffix(".json").read_text())["new"] == report["new"]
    assert report["identical"] == {"frozen": {"mls_en_test": 1.0, "mls_fr_test": 1.0},
                                   "adapting": {"mls_en_test": pytest.approx(2 / 3), "mls_fr_test": 0.5}}
    assert report["new"]["frozen"]["wer"] == pytest.approx(100 / 8)  # one substitution of 8 words
    assert report["new"]["adapting"]["wer"] == pytest.approx(400 / 8)  # four deletions
    assert (report["new"]["frozen"]["own_share"], report["new"]["adapting"]["own_share"]) == (0.25, 0.75)
    diffs = {c["a"]: c["diff"] for c in report["existing"]["comparisons"] if c["b"] == "base"}
    assert diffs["frozen"]["mls_en_test"] == {"diff": 0.0, "low": 0.0, "high": 0.0, "p_a_better": 0.5}
    en_base = 100 / 11  # "hello word": one substitution of 11 words
    assert diffs["adapting"]["mls_en_test"]["diff"] == pytest.approx(-en_base)
    assert diffs["adapting"]["mls_fr_test"]["diff"] == pytest.approx(100 / 9)  # one deletion of 9 words
    text = out.read_text()
    assert "## Adding es to a model of en, fr" in text
    assert f"|mls_en_test|11|{en_base:.2f}|{en_base:.2f}|+0.00 [+0.00, +0.00]|100.0%|0.00|{-en_base:+.2f} [" in text
    assert "|frozen|mls_es_test|12.50|25.00%|" in text and "|adapting|mls_es_test|50.00|75.00%|" in text


def test_errors_name_the_missing_set_or_language(decodes):
    base, frozen, _ = decodes
    with pytest.raises(FileNotFoundError, match="'base'.*no scored set 'mls_it_test'"):
        er.extend_report(base, [("frozen", frozen)], ["en", "it"], "es")
    with pytest.raises(FileNotFoundError, match="run 'frozen'.*no scored set 'mls_pt_test'"):
        er.extend_report(base, [("frozen", frozen)], ["en", "fr"], "pt")
    with pytest.raises(ValueError, match="not a new language"):
        er.extend_report(base, [("frozen", frozen)], ["en", "fr"], "fr")
    assert er.main(["--base", str(base), "--run", "frozen", str(frozen), "--base_langs", "en fr", "--lang", "pt",
                    "--out", str(base / "R.md")]) != 0
    assert not (base / "R.md").exists()
    (frozen.parent / "masks.pwm").unlink()
    with pytest.raises(FileNotFoundError, match="masks.pwm"):
        er.extend_report(base, [("frozen", frozen)], ["en", "fr"], "es")
