"""End to end: ``run.sh`` stages 1-13 on the CI-size embedded corpus with the demo model, one epoch.

Select with ``pytest -m e2e`` (about 3 minutes on 2 CPU cores). Stages 1-10 ran in the session's
``ci_recipe`` (conftest.py), with the same arguments: this run finds them up to date and trains,
decodes and scores. Checks that every stage leaves its outputs, that sclite's reports parse, that
RESULTS.md has a row per test set, and that a second ``--stage 10`` run skips every stage.
"""

from __future__ import annotations

import shutil

import pytest

from espnet_pathways.recipe.sclite import parse_result
from test_recipe_shell import CI_RECIPE_ARGS, CI_TEST_SETS as TEST_SETS, run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng (Debian package) is not installed"),
]


def test_run_sh_stages_1_to_13(ci_recipe):
    recipe = ci_recipe
    first = run(recipe, *CI_RECIPE_ARGS)
    assert first.stderr.count("up to date") >= 3, first.stderr[-3000:]  # stages 1-10 of ci_recipe are reused

    token_dir = recipe / "data" / "token_list" / "bpe_unigram64"
    assert {p.name for p in token_dir.iterdir()} >= {"en.model", "fr.model", "tokens.txt"}
    stats = recipe / "exp" / "asr_stats_raw_bpe_unigram64"
    for mode in ("train", "valid"):
        for name in ("feats_stats.npz", "speech_shape", "text_shape.bpe"):
            assert (stats / mode / name).is_file(), (mode, name)
    exp = recipe / "exp" / "asr_train_asr_emformer_demo_raw_bpe_unigram64"
    for name in ("config.yaml", "valid.loss.ave.pth", "train.log", "train.done"):
        assert (exp / name).exists(), name
    decode_dir = exp / "decode_streaming_asr_model_valid.loss.ave"
    for test_set in TEST_SETS:
        n_utts = len((recipe / "dump" / "raw" / test_set / "wav.scp").read_text().splitlines())
        for name in ("text", "token", "token_int", "score"):
            assert len((decode_dir / test_set / name).read_text().splitlines()) == n_utts, (test_set, name)
        for sub in ("score_wer", "score_cer"):
            for name in ("ref.trn", "hyp.trn", "result.txt"):
                assert (decode_dir / test_set / sub / name).is_file(), (test_set, sub, name)
            summary = parse_result(decode_dir / test_set / sub / "result.txt")
            assert summary.snt == n_utts and summary.wrd > 0
    results = (exp / "RESULTS.md").read_text()
    for test_set in TEST_SETS:
        assert f"|{test_set}|{test_set.split('_')[1]}|" in results
    assert "|**average** (mls_*_test)|2 langs|" in results
    assert "streaming latency: 200 ms" in results and "sparsity:" in results and "- command: `" in results

    again = run(recipe, *CI_RECIPE_ARGS, "--stage", "10")
    assert again.stderr.count("up to date") >= 3, again.stderr[-3000:]
    assert "scores are up to date" in again.stderr
