"""End to end: a CI-size variant of ``conf/phases/repro.yaml`` through ``run.sh`` on the CI corpus.

The variant keeps the file's entries for θ0, monolingual LTH and ASR Pathways from the LTH masks
(names, experiments, references, ``foreach_language``), with 2 seeds instead of 3 and tiny
schedules in place of the demo overlays (every other row takes the same path through the stages). Checks that seeded rows take
the same seed's masks, that ``exp/RESULTS.md`` shows mean ± sd over the seeds, and that the paired
bootstrap reads the scored runs (per-language dirs of a monolingual row joined into one run).
Runs in the session's ``ci_recipe`` (conftest.py: stages 1-10 done). Select with ``pytest -m e2e``
(a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from espnet_pathways.recipe.stages import repro_report, significance
from test_recipe_shell import CI_LANGS as LANGS, CI_RECIPE_ARGS, CI_TEST_SETS, RECIPE, run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng (Debian package) is not installed"),
]

SEEDS = [1, 2]
KEPT = ("dense", "lth", "pathways_lth")
TINY = {  # overlay of repro.yaml -> a schedule that fits a few optimizer steps of the CI corpus
    "conf/prune/lth.yaml": "pruning_conf: {method: lth, target_sparsity: 0.7, schedule: cubic, initial_sparsity: 0.3,"
                           " num_events: 2, prune_interval: 2}\nnum_iters_per_epoch: 6\nmax_epoch: 1\n",
    "conf/prune/pathways.yaml": "pruning_conf: {method: pathways}\nbatch_size: 8\nnum_iters_per_epoch: 4\nmax_epoch: 1\n",
}
DECODE = "decode_streaming_asr_model_valid.loss.ave"


def _ci_variant(root: Path) -> Path:
    """repro.yaml's kept entries with the tiny overlays and 2 seeds."""
    doc = yaml.safe_load((RECIPE / "conf" / "phases" / "repro.yaml").read_text())
    entries = []
    for entry in doc["phases"]:
        if entry["name"] not in KEPT:
            continue
        entry = dict(entry)
        if isinstance(entry["config"], list):
            base, overlay = entry["config"][:2]  # the budget overlay (third) is replaced by the tiny one
            tiny = root / Path(overlay).name
            tiny.write_text(TINY[overlay])
            entry["config"] = [base, str(tiny)]
            entry["seeds"] = SEEDS
        else:  # θ0: one epoch, not decoded (its rows are the controls of the full file)
            entry.update(args=["--max_epoch", "1"], decode=False)
        entries.append(entry)
    path = root / "repro_ci.yaml"
    path.write_text(yaml.safe_dump({"phases": entries}))
    return path


def test_repro_phases_ci_variant(ci_recipe, tmp_path, monkeypatch):
    phases_file = _ci_variant(tmp_path)
    recipe = ci_recipe  # stages 1-10 done (conftest.py); θ0 is test_e2e_phases' asr_dense when it ran first
    test_sets = list(CI_TEST_SETS)
    run(recipe, *CI_RECIPE_ARGS, "--phases_config", str(phases_file), timeout=1500)
    exp = recipe / "exp"

    for seed in SEEDS:
        conf = yaml.safe_load((exp / f"asr_pathways_lth_s{seed}" / "config.yaml").read_text())
        assert conf["seed"] == seed
        assert conf["pruning_conf"]["init_masks"] == [f"exp/asr_lth_{lang}_s{seed}/masks.pwm" for lang in LANGS]
        assert conf["init_param"] == ["exp/asr_dense/valid.loss.ave.pth"], "every row starts from the same θ0"
    table = (exp / "RESULTS.md").read_text().split("## Phases")[0]
    for group in ("lth", "pathways_lth"):
        row = next(line for line in table.splitlines() if line.startswith(f"|{group} (2 seeds)|"))
        assert row.count(" ± ") == len(LANGS) + 1, row  # every language and the average

    def runs(group: str, per_language: bool) -> list:
        if per_language:
            return [",".join(str(exp / f"asr_{group}_{lang}_s{s}" / DECODE) for lang in LANGS) for s in SEEDS]
        return [str(exp / f"asr_{group}_s{s}" / DECODE) for s in SEEDS]

    out = tmp_path / "sig.json"
    assert significance.main(["--out", str(out), "--num_resamples", "200", "--system", "lth", *runs("lth", True),
                              "--system", "pathways_lth", *runs("pathways_lth", False)]) == 0
    report = json.loads(out.read_text())
    assert list(report["sets"]) == test_sets
    assert len(report["comparisons"]) == 1
    assert all(len(report["systems"][s]["wer"]["avg"]["per_seed"]) == 2 for s in report["systems"])

    # the report of the variant: one JSON per row and seed, carrying its per-utterance errors
    papers = tmp_path / "papers.yaml"
    papers.write_text("rows: {}\ncomparisons:\n  - {a: pathways_lth, b: lth, source: T1}\n"
                      "sweeps:\n  LTH masks: [lth, pathways_lth]\n")
    out, json_dir = tmp_path / "REPRODUCTION.md", tmp_path / "repro_json"
    monkeypatch.chdir(recipe)  # the phases' config paths are relative to the recipe dir
    assert repro_report.main(["--phases_config", str(phases_file), "--expdir", "exp",
                              "--lang_list", "dump/raw/train/lang_list.txt", "--papers", str(papers),
                              "--out", str(out), "--json_dir", str(json_dir), "--num_resamples", "200"]) == 0
    record = json.loads((json_dir / "pathways_lth_s2.json").read_text())
    assert sorted(record["utterances"]) == test_sets and record["steps"]["all_stages"] > record["steps"]["this_stage"]
    compared = json.loads((json_dir / "comparisons.json").read_text())[0]["report"]
    assert compared["runs"] == {"pathways_lth": ["pathways_lth_s1", "pathways_lth_s2"],
                                "lth": ["lth_s1", "lth_s2"]}  # a monolingual row's languages joined per seed
    same = report["comparisons"][0]  # lth vs pathways_lth above: the same resamples, the other sign
    assert (same["a"], same["b"]) == ("lth", "pathways_lth")
    d, e = compared["comparisons"][0]["diff"]["avg"], same["diff"]["avg"]
    assert (d["diff"], d["low"], d["high"]) == pytest.approx((-e["diff"], -e["high"], -e["low"]))
    assert (tmp_path / "reproduction" / "wer_vs_sparsity.png").stat().st_size > 0
