"""recipe.stages.repro_report: rows per seed, costs from ESPnet's reporter, comparisons, the spliced report."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import pytest
import torch

from espnet_pathways.recipe import phases
from espnet_pathways.recipe.stages import phase_eval, repro_report
from espnet_pathways.recipe.sclite import find_sclite
from recipe_data import write_masked_checkpoint, write_test_sets

LANGS = ["en", "fr"]
SETS = ["mls_en_test", "mls_fr_test"]


def write_reporter(exp_dir: Path, iterations_per_epoch: int, epochs: int, seconds_per_epoch: float) -> None:
    """A ``checkpoint.pth`` with ESPnet's reporter stats (cumulative ``total_count``, times per epoch)."""
    stats = {
        e: {"train": {"total_count": e * iterations_per_epoch, "time": datetime.timedelta(seconds=seconds_per_epoch)},
            "valid": {"loss": 10.0 / e, "time": datetime.timedelta(seconds=1.0)}}
        for e in range(1, epochs + 1)
    }
    exp_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, "reporter": {"stats": stats, "epoch": epochs}}, exp_dir / "checkpoint.pth")


@pytest.fixture
def finished(tmp_path, fakes_env):
    """θ0, a per-language LTH row and a pathways row (2 seeds each), decoded and scored; pathways
    seed 1 gets one French word wrong, seed 2 is never decoded (an unfinished run)."""
    data_root = tmp_path / "dump" / "raw"
    write_test_sets(data_root, tmp_path / "audio", LANGS)
    (tmp_path / "base.yaml").write_text("encoder: emformer\n")
    (tmp_path / "lth.yaml").write_text("pruning_conf: {method: lth}\n")
    (tmp_path / "pw.yaml").write_text("pruning_conf: {method: pathways}\n")
    path = tmp_path / "repro.yaml"
    path.write_text(f"""
phases:
  - {{name: dense, config: {tmp_path}/base.yaml, exp: asr_dense, decode: false}}
  - {{name: lth, config: [{tmp_path}/base.yaml, {tmp_path}/lth.yaml], exp: asr_lth, init_from: dense,
     foreach_language: true, seeds: [1, 2]}}
  - {{name: pathways, config: [{tmp_path}/base.yaml, {tmp_path}/pw.yaml], exp: asr_pw, init_from: dense,
     init_masks_from: [lth], seeds: [1, 2]}}
""")
    exp = tmp_path / "exp"
    plan = phases.load_phases(path, exp, LANGS)
    write_reporter(exp / "asr_dense", 500, 2, 60.0)
    for seed in (1, 2):
        for lang, sparsity in (("en", 0.7), ("fr", 0.6)):
            masks = write_masked_checkpoint(exp / f"asr_lth_{lang}_s{seed}" / "valid.loss.ave.pth", {lang: sparsity})
            masks.save(exp / f"asr_lth_{lang}_s{seed}" / "masks.pwm")
            write_reporter(exp / f"asr_lth_{lang}_s{seed}", 200, 1, 30.0)
        write_masked_checkpoint(exp / f"asr_pw_s{seed}" / "valid.loss.ave.pth", {"en": 0.7, "fr": 0.6})
        write_reporter(exp / f"asr_pw_s{seed}", 100, 3, 20.0)
    done = [p for p in plan if p.name != "pathways_s2"]
    phase_eval.decode_phases(done, data_root, SETS, "tag", "valid.loss.ave.pth", module="fake_asr_inference")
    hyp = exp / "asr_pw_s1" / "decode_tag" / "mls_fr_test" / "text"
    hyp.write_text(hyp.read_text().replace("est sur le tapis", "est sous le tapis"))
    phase_eval.score_phases(done, exp, data_root, SETS, "tag", find_sclite(), "cmd", LANGS, str(path))
    papers = tmp_path / "papers.yaml"
    papers.write_text("""
rows:
  lth: {table: T1, label: LTH, langs: [en, fr], avg: 14.28}
comparisons:
  - {a: pathways, b: lth, paper: [13.75, 14.28], source: T1}
  - {a: lth, b: lap, paper: [14.28, 18.21], source: T1}
  - {a: pathways, b: lap, source: "ablation"}
""")
    return plan, papers, tmp_path


def test_run_cost_counts_iterations_and_times(tmp_path):
    write_reporter(tmp_path, 100, 3, 20.0)
    cost = repro_report.run_cost(tmp_path, accum_grad=2)
    assert (cost.steps, cost.train_s, cost.valid_s) == (150, 60.0, 3.0)
    assert cost.valid_loss == pytest.approx([10.0, 5.0, 10.0 / 3])
    assert repro_report.run_cost(tmp_path / "missing") is None


def test_rows_costs_comparisons_and_report(finished):
    plan, papers, root = finished
    out, json_dir, plot_dir = root / "REPRODUCTION.md", root / "json", root / "plots"
    out.write_text(f"# Reproduction\n\nDesign, by hand.\n\n{repro_report.BEGIN}\nold\n{repro_report.END}\n\n## Discussion\n")
    for _ in range(2):  # a second run replaces the generated part and keeps the rest
        repro_report.write_report(plan, LANGS, papers, out, json_dir, plot_dir, "tag", num_resamples=200)

    lth = json.loads((json_dir / "lth_s1.json").read_text())
    assert lth["steps"] == {"this_stage": 400, "all_stages": 400}  # two languages x 200
    assert lth["train_seconds"]["this_stage"] == pytest.approx(2 * 31.0)
    assert lth["wer_avg"] == 0.0 and set(lth["mask_iou"]) == {"en-fr"}
    assert [p["name"] for p in lth["phases"]] == ["lth_en_s1", "lth_fr_s1"]
    assert lth["phases"][0]["config"]["pruning_conf"]["method"] == "lth"
    pw = json.loads((json_dir / "pathways_s1.json").read_text())
    assert pw["steps"] == {"this_stage": 300, "all_stages": 700}, "the LTH runs its masks come from count"
    assert pw["train_seconds"]["all_stages"] == pytest.approx(63.0 + 62.0)
    fr_wer = 100.0 / 6  # one word of six
    assert pw["wer"]["mls_fr_test"] == {"lang": "fr", "wer": pytest.approx(fr_wer)}
    assert pw["wer_avg"] == pytest.approx(fr_wer / 2)
    assert 0.0 < pw["mask_iou"]["en-fr"] < 1.0
    assert pw["mask_iou_with_initial"] == {"en": 1.0, "fr": 1.0}, "the fake pathways run kept the LTH masks"
    assert lth["mask_iou_with_initial"] == {}
    assert not (json_dir / "pathways_s2.json").exists()

    comparisons = json.loads((json_dir / "comparisons.json").read_text())
    diff = comparisons[0]["report"]["comparisons"][0]["diff"]["avg"]
    assert diff["diff"] == pytest.approx(fr_wer / 2) and diff["low"] <= diff["diff"] <= diff["high"]
    assert comparisons[1]["report"] is None  # no lap row

    text = out.read_text()
    assert text.startswith("# Reproduction\n\nDesign, by hand.\n") and text.endswith("## Discussion\n")
    assert text.count(repro_report.BEGIN) == 1 and "\nold\n" not in text
    assert "Not finished: pathways (seed 2)." in text
    assert "Dense θ0 (shared by every row): 1000 steps" in text and "10.00, 5.00" in text
    assert "Finished: lth (2 seeds), pathways (1 seed)." in text
    assert "|lth|T1, LTH|14.28 (en+fr)|0.00 ± 0.00|0.00 ± 0.00|0.00 ± 0.00|2|" in text
    assert f"|pathways|-|-|0.00|{fr_wer:.2f}|{fr_wer / 2:.2f}|1|" in text
    assert "|400|400|1.0|" in text and "|300|700|2.1|" in text  # steps this / all stages, minutes
    assert "200 resamples" in text
    row = next(line for line in text.splitlines() if line.startswith("|pathways vs lth|"))
    assert row.endswith("|reversed|") or row.endswith("|not resolved|")
    assert "|lth vs lap|14.28, 18.21 (T1)|not run|" in text
    assert "|pathways vs lap|– (ablation)|not run|" in text, "a comparison beyond the papers has no paper values"
    for name in ("wer_per_row", "steps_per_row", "iou_lth_s1", "layer_sparsity_pathways_s1"):
        assert (plot_dir / f"{name}.png").stat().st_size > 0
        assert f"(plots/{name}.png)" in text


def test_nothing_finished_is_an_error(tmp_path):
    (tmp_path / "base.yaml").write_text("encoder: emformer\n")
    path = tmp_path / "p.yaml"
    path.write_text(f"phases:\n  - {{name: dense, config: {tmp_path}/base.yaml, exp: asr_dense}}\n")
    plan = phases.load_phases(path, tmp_path / "exp", LANGS)
    papers = tmp_path / "papers.yaml"
    papers.write_text("rows: {}\n")
    with pytest.raises(FileNotFoundError, match="no row of the phases file is decoded and scored"):
        repro_report.write_report(plan, LANGS, papers, tmp_path / "R.md", tmp_path, tmp_path, "tag")
    assert not (tmp_path / "R.md").exists()


def _report(plan, papers, root):
    out, json_dir, plot_dir = root / "REPRODUCTION.md", root / "json", root / "plots"
    repro_report.write_report(plan, LANGS, papers, out, json_dir, plot_dir, "tag", num_resamples=200)
    return out.read_text(), json_dir


def test_runs_come_back_from_their_json_when_exp_is_gone(finished):
    """A new machine has the committed JSON but no exp dirs: the report keeps every run, with the
    same per-utterance errors, bootstrap, IoU and the mask plots made earlier."""
    plan, papers, root = finished
    text, json_dir = _report(plan, papers, root)
    before = {p.name: json.loads(p.read_text()) for p in json_dir.glob("*.json")}
    assert before["lth_s1.json"]["utterances"]["mls_fr_test"]["ref_words"]  # recorded per utterance
    for name in ("asr_lth_en_s1", "asr_lth_fr_s1", "asr_lth_en_s2", "asr_lth_fr_s2", "asr_pw_s1"):
        shutil.rmtree(root / "exp" / name)
    again, _ = _report(plan, papers, root)
    after = {p.name: json.loads(p.read_text()) for p in json_dir.glob("*.json")}
    assert after == before, "read back and written again unchanged"
    assert again.split("Generated", 1)[1] == text.split("Generated", 1)[1]
    assert "Finished: lth (2 seeds), pathways (1 seed)." in again
    assert "(plots/iou_lth_s1.png)" in again, "the mask plots of the earlier report are kept"


def test_runs_from_a_retrained_theta0_are_never_mixed_with_archived_ones(finished):
    """θ0 retrained on another CPU ends elsewhere: its runs and the archived runs of the first θ0
    are refused together; in a json_dir of their own they make a report of their own."""
    plan, papers, root = finished
    text, json_dir = _report(plan, papers, root)
    assert json.loads((json_dir / "lth_s1.json").read_text())["theta0"] == "10.00/5.00"  # valid loss per epoch
    assert "validation loss per epoch: 10.00, 5.00." in text
    shutil.rmtree(root / "exp" / "asr_lth_en_s2")  # lth seed 2 now comes from its JSON (the first θ0)
    write_reporter(root / "exp" / "asr_dense", 500, 3, 60.0)  # θ0 retrained: 10.00/5.00/3.33
    with pytest.raises(ValueError, match=r"2 different dense θ0s \(θ0 10.00/5.00/3.33: lth_s1, pathways_s1; "
                                         r"θ0 10.00/5.00: lth_s2\)"):
        _report(plan, papers, root)
    other = root / "json_theta0_b"
    other.mkdir()
    out = root / "R_b.md"
    repro_report.write_report(plan, LANGS, papers, out, other, root / "plots_b", "tag", num_resamples=200)
    assert "Finished: lth (1 seed), pathways (1 seed)." in out.read_text()
    assert {json.loads(p.read_text())["theta0"] for p in other.glob("*_s*.json")} == {"10.00/5.00/3.33"}


def test_runs_without_per_utterance_errors_reuse_or_narrow_the_bootstrap(finished):
    """JSON written before per-utterance errors were recorded: the earlier bootstrap is kept when it
    covered exactly these runs; otherwise the bootstrap covers the runs that have them."""
    plan, papers, root = finished
    _, json_dir = _report(plan, papers, root)
    shutil.rmtree(root / "exp" / "asr_pw_s1")
    for name in ("lth_s1.json", "pathways_s1.json"):
        record = json.loads((json_dir / name).read_text())
        del record["utterances"]
        (json_dir / name).write_text(json.dumps(record))
    for name in ("asr_lth_en_s1", "asr_lth_fr_s1"):
        shutil.rmtree(root / "exp" / name)
    comparisons = json.loads((json_dir / "comparisons.json").read_text())
    kept = comparisons[0]["report"]
    assert kept["runs"] == {"pathways": ["pathways_s1"], "lth": ["lth_s1", "lth_s2"]}
    kept["marker"] = "the earlier report"
    (json_dir / "comparisons.json").write_text(json.dumps(comparisons))
    text, _ = _report(plan, papers, root)
    assert json.loads((json_dir / "comparisons.json").read_text())[0]["report"]["marker"] == "the earlier report"
    row = next(line for line in text.splitlines() if line.startswith("|pathways vs lth|"))
    assert "|1 / 1,2|" in row, row

    comparisons[0]["report"]["runs"]["lth"] = ["lth_s2"]  # made from other runs: not reused
    (json_dir / "comparisons.json").write_text(json.dumps(comparisons))
    _report(plan, papers, root)
    assert json.loads((json_dir / "comparisons.json").read_text())[0]["report"] is None, "pathways has no errors"


def test_verdict_needs_every_seed_on_the_intervals_side():
    assert repro_report._verdict(-2.0, -1.0, [-1.5, -0.2]) == "yes"
    assert repro_report._verdict(-2.0, -1.0, [-1.5, +0.2]) == "not resolved"
    assert repro_report._verdict(1.0, 2.0, [0.5]) == "reversed"
    assert repro_report._verdict(-1.0, 2.0, [0.5, 0.7]) == "not resolved"


def _run(row: str, seed: int, wer: float, sparsity: float) -> repro_report.RowRun:
    cost = repro_report.RunCost(300, 60.0, 0.0)
    return repro_report.RowRun(row, seed, [], {"mls_en_test": ("en", wer)}, {"en": sparsity} if sparsity else {},
                               cost, cost, {}, {}, {})


def test_per_seed_differences_and_wer_vs_sparsity(tmp_path):
    rows = {
        "dense": [_run("dense", s, w, 0.0) for s, w in ((1, 10.0), (2, 11.0))],
        "lap_50": [_run("lap_50", s, w, 0.5) for s, w in ((1, 12.0), (2, 13.0), (3, 14.0))],
        "lap": [_run("lap", 2, 20.0, 0.7)],
    }
    assert repro_report.per_seed_differences(rows, "lap_50", "dense") == {1: 2.0, 2: 2.0}
    assert repro_report.per_seed_differences(rows, "lap", "missing") == {}
    sweeps = {"LAP": ["dense", "lap_50", "lap", "lap_90"]}
    table = "\n".join(repro_report._sweep_table(rows, sweeps))
    assert "|LAP|10.50 ± 0.71 (2) at 0%|13.00 ± 1.00 (3) at 50%|20.00 (1) at 70%|lap_90: not run|" in table
    png = repro_report.plot_sweeps(rows, sweeps, tmp_path / "wer_vs_sparsity.png")
    assert png.stat().st_size > 0
    assert repro_report.plot_sweeps(rows, {"none": ["lap_90"]}, tmp_path / "x.png") is None
