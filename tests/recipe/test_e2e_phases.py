"""End to end: ``run.sh --phases_config`` on the CI-size corpus: dense (1 epoch) -> monolingual IMP
for en and fr (tiny schedule) -> ASR Pathways from the IMP masks -> decoding and scoring.

Select with ``pytest -m e2e`` (about 3 minutes on 2 CPU cores). Runs in the session's ``ci_recipe``
(conftest.py: stages 1-10 done, shared with test_e2e.py, its own exp names). Checks the language subsets, the
resolved init masks, which sets each phase decodes, that the sparsity in the per-phase and the
combined RESULTS.md equals the sparsity of the masks the runs saved, and that a second run skips
every phase, decode and score.
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from espnet_pathways.masks import MaskSet
from espnet_pathways.recipe.mask_report import percent
from test_recipe_shell import CI_LANGS as LANGS, CI_RECIPE_ARGS, CI_TEST_SETS as TEST_SETS, run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng (Debian package) is not installed"),
]

IMP = """# IMP to 70% in 4 optimizer steps (events at steps 0, 2, 4), 6 steps in all
pruning_conf: {method: imp, target_sparsity: 0.7, schedule: cubic, initial_sparsity: 0.3, num_events: 2, prune_interval: 2}
num_iters_per_epoch: 6
max_epoch: 1
"""
PATHWAYS = """pruning_conf: {method: pathways}
batch_type: folded
batch_size: 8
num_iters_per_epoch: 4
max_epoch: 1
"""
PHASES = """phases:
  - {{name: dense, config: conf/train_asr_emformer_demo.yaml, exp: asr_dense, args: [--max_epoch, "1"]}}
  - name: imp
    config: [conf/train_asr_emformer_demo.yaml, {root}/imp_tiny.yaml]
    exp: asr_imp
    init_from: dense
    foreach_language: true
  - name: pathways
    config: [conf/train_asr_emformer_demo.yaml, {root}/pathways_tiny.yaml]
    exp: asr_pathways
    init_from: dense
    init_masks_from: [imp]
"""
DECODE = "decode_streaming_asr_model_valid.loss.ave"


def test_run_sh_pruning_phases(ci_recipe, tmp_path):
    (tmp_path / "imp_tiny.yaml").write_text(IMP)
    (tmp_path / "pathways_tiny.yaml").write_text(PATHWAYS)
    phases_file = tmp_path / "phases.yaml"
    phases_file.write_text(PHASES.format(root=tmp_path))
    recipe = ci_recipe
    args = (*CI_RECIPE_ARGS, "--phases_config", str(phases_file))
    run(recipe, *args)
    exp = recipe / "exp"

    # stage 11: language subsets, merged configs, init masks
    for lang in LANGS:
        sub = recipe / "dump" / "raw" / f"train_{lang}"
        assert {l.split()[1] for l in (sub / "utt2category").read_text().splitlines()} == {lang}
        assert (exp / "asr_stats_raw_bpe_unigram64" / f"subset_{lang}" / "train" / "speech_shape").is_file()
        imp = exp / f"asr_imp_{lang}"
        for name in ("phase_config.yaml", "config.yaml", "masks.pwm", "train.done", "pruning/sparsity.md"):
            assert (imp / name).is_file(), (lang, name)
        conf = yaml.safe_load((imp / "config.yaml").read_text())
        assert conf["pruning_conf"]["languages"] == [lang] and conf["pruning_conf"]["method"] == "imp"
        assert conf["train_data_path_and_name_and_type"][0][0] == f"dump/raw/train_{lang}/wav.scp"
    pw_conf = yaml.safe_load((exp / "asr_pathways" / "config.yaml").read_text())
    assert pw_conf["pruning_conf"]["init_masks"] == [f"exp/asr_imp_{lang}/masks.pwm" for lang in LANGS]
    imp_masks = {lang: MaskSet.load(exp / f"asr_imp_{lang}" / "masks.pwm") for lang in LANGS}
    pw_masks = MaskSet.load(exp / "asr_pathways" / "masks.pwm")
    assert pw_masks.languages == LANGS
    for lang in LANGS:
        assert imp_masks[lang].languages == (lang,)
        assert imp_masks[lang].sparsity(lang) == pytest.approx(0.7, abs=0.01)
        assert all(bool((pw_masks[lang][n] == imp_masks[lang][lang][n]).all()) for n in pw_masks.names)  # fixed

    # stage 12: monolingual models only on their language, the pathway model on every language
    assert not (exp / "asr_dense" / DECODE).exists()  # not the last phase, not pruning: not decoded
    for lang in LANGS:
        assert sorted(p.name for p in (exp / f"asr_imp_{lang}" / DECODE).iterdir() if p.is_dir()) == [f"mls_{lang}_test"]
    assert sorted(p.name for p in (exp / "asr_pathways" / DECODE).iterdir() if p.is_dir()) == list(TEST_SETS)

    # stage 13: sparsity in RESULTS.md = sparsity of the saved masks (over P and over all parameters)
    total = json.loads((exp / "asr_pathways" / "pruning" / "stats.json").read_text())["total_params"]
    pw_md = (exp / "asr_pathways" / "RESULTS.md").read_text()
    for lang in LANGS:
        row = f"|{lang}|{lang}|{pw_masks.kept(lang)}|{percent(pw_masks.sparsity(lang))}|{percent(pw_masks.sparsity(lang, total))}|"
        assert row in pw_md, row
        m = imp_masks[lang]
        row = f"|{lang}|{lang}|{m.kept(lang)}|{percent(m.sparsity(lang))}|{percent(m.sparsity(lang, total))}|"
        assert row in (exp / f"asr_imp_{lang}" / "RESULTS.md").read_text(), row
    table = (exp / "RESULTS.md").read_text()
    imp_sp = sum(imp_masks[l].sparsity(l) for l in LANGS) / len(LANGS)
    assert "|imp|imp|-|no|monolingual|" in table and f"|{percent(imp_sp)}|" in table
    pw_sp = sum(pw_masks.sparsity(l) for l in LANGS) / len(LANGS)
    assert "|pathways|pathways|imp|no|multilingual|" in table and f"|{percent(pw_sp)}|" in table
    assert "|dense|" not in table.split("## Phases")[0]

    again = run(recipe, *args, "--stage", "11")
    for name in ("dense", "imp_en", "imp_fr", "pathways"):
        assert f"phase {name}: " in again.stderr and "is up to date; skipping" in again.stderr
    assert again.stderr.count("is up to date; skipping") >= 4 + 4  # 4 phases, 4 decoded sets
    assert again.stderr.count("scores are up to date") == 4
