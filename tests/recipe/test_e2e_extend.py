"""End to end: ``local/extend.sh`` on the CI-size corpus: en/fr dense -> LAP -> Dynamic ASR Pathways
(tiny schedules), then es added (merged token list, grown model and masks) and trained with the
existing languages frozen and adapting; the frozen run's en/fr hypotheses equal the base model's.

Tens of minutes on 2 CPU cores (48 min on a loaded VM), so it is marked ``long``: ``make test-long``
runs it; ``make test`` (CI) skips it. The growth and freeze themselves are tested in tests/tasks/test_extend.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from espnet_pathways.masks import MaskSet
from test_recipe_shell import make_recipe_copy, run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.long,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng (Debian package) is not installed"),
]

# tiny schedules: LAP 30% -> 50% (events at steps 0, 2, 4); Dynamic ASR Pathways at 50%, hard from step 4
TINY = {"num_iters_per_epoch": 6, "max_epoch": 1}
LAP = yaml.safe_dump({"pruning_conf": {"method": "lap", "target_sparsity": 0.5, "initial_sparsity": 0.3, "num_events": 2,
                                       "prune_interval": 2}, **TINY})
DPW = yaml.safe_dump({"pruning_conf": {"method": "dynamic_pathways", "target_sparsity": 0.5, "initial_sparsity": 0.5,
                                       "num_events": 1, "prune_interval": 2, "adapt_interval": 1},
                      "batch_type": "folded", "batch_size": 8, **TINY})
BASE = """phases:
  - {{name: dense, config: conf/train_asr_emformer_demo.yaml, exp: asr_dense, args: [--max_epoch, "1"]}}
  - {{name: lap, config: [conf/train_asr_emformer_demo.yaml, {root}/lap.yaml], exp: asr_lap, init_from: dense}}
  - name: dpw
    config: [conf/train_asr_emformer_demo.yaml, {root}/dpw.yaml]
    exp: asr_dpw
    init_from: dense
    init_masks_from: [lap]
"""
EXTEND = """phases:
  - name: extend_es_frozen
    config: [conf/train_asr_emformer_demo.yaml, exp/extend_es/overlay.yaml, {root}/dpw.yaml, conf/prune/extend_freeze.yaml]
    exp: asr_extend_es_frozen
    languages: [es]
    args: [--token_list, exp/extend_es/token_list/tokens.txt, --bpemodel, exp/extend_es/token_list]
  - name: extend_es_adapting
    config: [conf/train_asr_emformer_demo.yaml, exp/extend_es/overlay.yaml, {root}/dpw.yaml]
    exp: asr_extend_es_adapting
    args: [--token_list, exp/extend_es/token_list/tokens.txt, --bpemodel, exp/extend_es/token_list]
"""
DECODE = "decode_streaming_asr_model_valid.loss.ave"


def test_extend_sh_adds_a_language_and_freezes_the_others(tmp_path):
    for name, text in (("lap.yaml", LAP), ("dpw.yaml", DPW), ("base.yaml", BASE), ("extend.yaml", EXTEND)):
        (tmp_path / name).write_text(text.format(root=tmp_path))
    recipe = make_recipe_copy(tmp_path / "asr1")
    common = ("--corpus_size", "ci", "--nj", "2", "--inference_nj", "2")
    run(recipe, *common, "--langs", "en fr", "--test_sets", "mls_en_test mls_fr_test",
        "--phases_config", str(tmp_path / "base.yaml"), timeout=3600)
    env = {**os.environ, "MPLCONFIGDIR": os.environ.get("MPLCONFIGDIR", "/tmp/mpl"), "base_langs": "en fr",
           "base_exp": "exp/asr_dpw", "phases": str(tmp_path / "extend.yaml")}
    proc = subprocess.run(["local/extend.sh", *common, "--python", shutil.which("python") or "python"],
                          cwd=recipe, env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    exp = recipe / "exp"
    grown, frozen, adapting = (MaskSet.load(exp / d / "masks.pwm")
                               for d in ("extend_es/grown", "asr_extend_es_frozen", "asr_extend_es_adapting"))
    assert frozen.languages == adapting.languages == ("en", "fr", "es")
    for lang in ("en", "fr"):
        assert all(bool((frozen[lang][n] == grown[lang][n]).all()) for n in grown.names)
        base = (exp / "asr_dpw" / DECODE / f"mls_{lang}_test" / "text").read_text()
        assert (exp / "asr_extend_es_frozen" / DECODE / f"mls_{lang}_test" / "text").read_text() == base
    for phase in ("asr_extend_es_frozen", "asr_extend_es_adapting"):
        assert (exp / phase / DECODE / "mls_es_test" / "score_wer" / "result.txt").is_file()
    report = json.loads((exp / "extend_es" / "REPORT.json").read_text())  # the last step's report
    assert report["identical"]["frozen"] == {"mls_en_test": 1.0, "mls_fr_test": 1.0}
    assert set(report["new"]) == {"frozen", "adapting"}
    assert "## Adding es to a model of en, fr" in (exp / "extend_es" / "REPORT.md").read_text()
