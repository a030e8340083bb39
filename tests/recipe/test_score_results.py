"""Stage 13: scoring decoded sets with sclite and writing RESULTS.md."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from espnet_pathways.recipe.stages import results, score
from espnet_pathways.recipe.sclite import find_sclite

SETS = {
    "mls_en_test": ("en", {"en_1_a": "the cat sat", "en_1_b": "on the mat"}, {"en_1_a": "the cat sat", "en_1_b": "on a mat"}),
    "mls_fr_test": ("fr", {"fr_2_a": "le chat", "fr_2_b": "est là"}, {"fr_2_a": "le chat", "fr_2_b": ""}),
}
CONFIG = {
    "encoder": "emformer",
    "encoder_conf": {"time_reduction_stride": 6, "segment_length": 4, "right_context_length": 1},
    "frontend_conf": {"fs": "16k", "hop_length": 160},
}


def _write(path, table):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(table.items())), encoding="utf-8")


@pytest.fixture
def experiment(tmp_path):
    data_root, exp = tmp_path / "dump" / "raw", tmp_path / "exp" / "asr_x"
    decode_dir = exp / "decode_streaming_asr_model_valid.loss.ave"
    for name, (lang, ref, hyp) in SETS.items():
        _write(data_root / name / "text", ref)
        _write(data_root / name / "utt2spk", {k: k.rsplit("_", 1)[0] for k in ref})
        _write(data_root / name / "utt2lang", {k: lang for k in ref})
        _write(decode_dir / name / "text", hyp)
    weight = torch.ones(4, 5)
    weight[:2] = 0.0  # 10 of 20 zero
    state = {"encoder.w": weight, "encoder.b": torch.zeros(5), "normalize.mean": torch.zeros(80),
             "decoder.num_batches_tracked": torch.tensor(3)}
    torch.save(state, exp / "valid.loss.ave.pth")
    (exp / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    info = {"model_file": str(exp / "valid.loss.ave.pth"), "train_config": str(exp / "config.yaml"),
            "inference_config": "conf/decode_streaming.yaml", "inference_args": "", "sets": {}}
    (decode_dir / results.DECODE_INFO_JSON).write_text(json.dumps(info))
    return data_root, exp, decode_dir


def test_score_and_results(experiment):
    data_root, exp, decode_dir = experiment
    cmd = "./asr.sh --stage 13 --langs 'en fr'"
    md_path = score.score_decode_dir(decode_dir, data_root, list(SETS), find_sclite(), cmd)
    assert md_path == exp / "RESULTS.md"
    for name in SETS:
        for sub in ("score_wer", "score_cer"):
            for f in ("ref.trn", "hyp.trn", "result.txt"):
                assert (decode_dir / name / sub / f).is_file()
    assert (decode_dir / "mls_en_test" / "score_wer" / "hyp.trn").read_text().splitlines()[1] == "on a mat\t(en_1-en_1_b)"
    scoring = json.loads((decode_dir / "scoring.json").read_text())
    assert scoring["command"] == cmd
    assert scoring["sets"]["mls_en_test"]["wer"]["err"] == pytest.approx(16.7)
    assert scoring["sets"]["mls_fr_test"]["wer"]["n_del"] == 2
    md = md_path.read_text()
    assert f"- command: `{cmd}`" in md
    assert "|mls_en_test|en|2|6|83.3|16.7|0.0|0.0|16.7|50.0|" in md
    assert "|mls_fr_test|fr|2|4|50.0|0.0|50.0|0.0|50.0|50.0|" in md
    assert "|**average** (mls_*_test)|2 langs|4|10|66.7|8.3|25.0|0.0|33.3|50.0|" in md  # WER (macro average)
    assert "### CER" in md
    assert "sparsity: 60.00% of all weights (15 / 25 zero), 50.00% of weight matrices" in md
    assert "streaming latency: 300 ms (segment 240 ms + right context 60 ms)" in md


def test_rescoring_is_skipped_and_updates_on_change(experiment):
    data_root, exp, decode_dir = experiment
    score.score_decode_dir(decode_dir, data_root, list(SETS), find_sclite(), "a")
    result = decode_dir / "mls_en_test" / "score_wer" / "result.txt"
    mtime = result.stat().st_mtime_ns
    score.score_decode_dir(decode_dir, data_root, list(SETS), find_sclite(), "b")
    assert result.stat().st_mtime_ns == mtime
    _write(decode_dir / "mls_en_test" / "text", SETS["mls_en_test"][1])
    score.score_decode_dir(decode_dir, data_root, list(SETS), find_sclite(), "c")
    assert "|mls_en_test|en|2|6|100.0|0.0|0.0|0.0|0.0|0.0|" in (exp / "RESULTS.md").read_text()


def test_missing_hypothesis(experiment):
    data_root, exp, decode_dir = experiment
    _write(decode_dir / "mls_fr_test" / "text", {"fr_2_a": "le chat"})
    with pytest.raises(ValueError, match=r"1 missing \(e.g. \['fr_2_b'\]\)"):
        score.score_decode_dir(decode_dir, data_root, list(SETS), find_sclite(), "")
    assert not (exp / "RESULTS.md").exists()


def test_mixed_language_set(experiment):
    data_root, _, decode_dir = experiment
    _write(data_root / "mls_en_test" / "utt2lang", {"en_1_a": "en", "en_1_b": "fr"})
    with pytest.raises(ValueError, match="must hold one language"):
        score.score_decode_dir(decode_dir, data_root, list(SETS), find_sclite(), "")


def test_score_cli_missing_decode(experiment, tmp_path):
    data_root, _, _ = experiment
    argv = ["--decode_dir", str(tmp_path / "nope"), "--data_root", str(data_root), "--test_sets", "mls_en_test"]
    assert score.main(argv) == 1


def test_checkpoint_stats(tmp_path):
    path = tmp_path / "m.pth"
    torch.save({"a.weight": torch.tensor([[0.0, 1.0], [0.0, 2.0]]), "a.bias": torch.tensor([0.0, 1.0]),
                "mask.en": torch.zeros(2, 2), "steps": torch.tensor(4)}, path)
    s = results.checkpoint_stats(path)
    assert (s["params"], s["zeros"], s["matrix_params"], s["matrix_zeros"]) == (6, 3, 4, 2)
    assert s["size_mb"] == pytest.approx(24 / 1e6) and s["nonzero_mb"] == pytest.approx(12 / 1e6)
    with pytest.raises(FileNotFoundError):
        results.checkpoint_stats(tmp_path / "none.pth")


def test_streaming_latency():
    assert results.streaming_latency(CONFIG) == {"segment_ms": 240.0, "right_context_ms": 60.0, "latency_ms": 300.0}
    default_frontend = {"encoder_conf": {"time_reduction_stride": 4, "segment_length": 8}}
    assert results.streaming_latency(default_frontend)["latency_ms"] == pytest.approx(256.0)  # hop 128 @ 16 kHz
    assert results.streaming_latency({"encoder_conf": {"output_size": 256}}) is None
    with pytest.raises(ValueError, match="segment_length = 'x'"):
        results.streaming_latency({"encoder_conf": {"segment_length": "x"}})


def test_results_without_scores(tmp_path):
    with pytest.raises(FileNotFoundError, match="run stage 13 first"):
        results.write_results_md(tmp_path)
    assert results.main(["--asr_exp", str(tmp_path)]) == 1


# --lang auto decodings of SETS: (hypotheses, chosen languages)
AUTO = {
    "mls_en_test": ({"en_1_a": "the cat sat", "en_1_b": "on a mat"}, {"en_1_a": "en", "en_1_b": "en"}),
    "mls_fr_test": ({"fr_2_a": "la chatte", "fr_2_b": ""}, {"fr_2_a": "en", "fr_2_b": "fr"}),
}


def test_lid_eval_adds_a_language_identification_table_and_nothing_else(experiment):
    data_root, exp, decode_dir = experiment
    plain = score.score_decode_dir(decode_dir, data_root, list(SETS), find_sclite(), "cmd").read_text()
    scoring = (decode_dir / "scoring.json").read_text()
    for name, (hyp, langs) in AUTO.items():
        _write(decode_dir / name / results.LID_SUBDIR / "text", hyp)
        _write(decode_dir / name / results.LID_SUBDIR / results.LID_FILE, langs)
    md = score.score_decode_dir(decode_dir, data_root, list(SETS), find_sclite(), "cmd", lid_eval=True).read_text()
    assert (decode_dir / "scoring.json").read_text() == scoring
    assert md.startswith(plain)  # the section is appended; the rest is byte-identical
    added = md[len(plain):]
    assert "### Language identification (`--lang auto`)" in added
    assert "|mls_en_test|en|2|100.0|16.7|16.7|" in added and added.count("|en 2|") == 1
    assert "|mls_fr_test|fr|2|50.0|50.0|100.0|" in added and "|en 1, fr 1|" in added
    assert "|**average** (mls_*_test)|2 langs|4|75.0|33.3|58.3|" in added
    lid = json.loads((decode_dir / results.LID_JSON).read_text())["sets"]["mls_fr_test"]
    assert (lid["snt"], lid["correct"], lid["chosen"], lid["wer"]["n_err"]) == (2, 1, {"en": 1, "fr": 1}, 4)
    # scoring again without --lid_eval drops the section: RESULTS.md is exactly the plain one again
    again = score.score_decode_dir(decode_dir, data_root, list(SETS), find_sclite(), "cmd").read_text()
    assert again == plain and not (decode_dir / results.LID_JSON).exists()


def test_lid_eval_needs_every_language(experiment):
    data_root, _, decode_dir = experiment
    for name, (hyp, langs) in AUTO.items():
        _write(decode_dir / name / results.LID_SUBDIR / "text", hyp)
        _write(decode_dir / name / results.LID_SUBDIR / results.LID_FILE, {k: v for k, v in list(langs.items())[:1]})
    with pytest.raises(ValueError, match=r"lang_auto/lang: no language for 1 utterance\(s\)"):
        score.score_decode_dir(decode_dir, data_root, list(SETS), find_sclite(), "", lid_eval=True)
    (decode_dir / "mls_en_test" / results.LID_SUBDIR / results.LID_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="run stage 12 with --lid_eval true"):
        score.score_decode_dir(decode_dir, data_root, list(SETS), find_sclite(), "", lid_eval=True)
