"""Stage 12: split, parallel decoding jobs (a fake inference entry point), merge, resume."""

from __future__ import annotations

import json

import pytest

from espnet_pathways.recipe.stages import decode
from espnet_pathways.recipe.stages.format_data import format_data_dir
from recipe_data import UTTS, read_lines, write_data_dir, write_lang_list


@pytest.fixture
def setup(tmp_path, fakes_env):
    langs = write_lang_list(tmp_path / "lang_list.txt")
    data_root = tmp_path / "dump" / "raw"
    for lang in ("en", "fr"):
        utts = {u: v for u, v in UTTS.items() if v[1] == lang}
        src = write_data_dir(tmp_path / "data" / f"mls_{lang}_test", tmp_path / "audio", utts)
        format_data_dir(src, data_root / f"mls_{lang}_test", langs)
    exp = tmp_path / "exp" / "asr_x"
    exp.mkdir(parents=True)
    (exp / "config.yaml").write_text("encoder: emformer\n")
    (exp / "valid.loss.ave.pth").write_bytes(b"model")
    conf = tmp_path / "decode_streaming.yaml"
    conf.write_text("beam_size: 4\n")
    opts = decode.DecodeOptions(
        model_file=exp / "valid.loss.ave.pth", train_config=exp / "config.yaml", inference_config=conf,
        inference_args=("--beam_size", "2"), module="fake_asr_inference", nj=2,
    )
    return opts, data_root, exp / "decode_streaming_asr_model_valid.loss.ave"


def test_decode_sets_merges_jobs(setup):
    opts, data_root, decode_dir = setup
    decode.decode_sets(opts, data_root, ["mls_en_test", "mls_fr_test"], decode_dir)
    for name, lang in (("mls_en_test", "en"), ("mls_fr_test", "fr")):
        keys = sorted(u for u, v in UTTS.items() if v[1] == lang)
        for f in ("text", "token", "token_int", "score"):
            assert [line.split()[0] for line in read_lines(decode_dir / name / f)] == keys
        logdir = decode_dir / name / "logdir"
        assert sorted(p.name for p in logdir.glob("keys.*.scp")) == ["keys.1.scp", "keys.2.scp"]
        argv = json.loads((logdir / "output.1" / "argv.json").read_text())["argv"]
        assert argv[argv.index("--lang") + 1] == lang
        assert argv[argv.index("--config") + 1] == str(opts.inference_config)
        assert argv[-2:] == ["--beam_size", "2"]
    assert "en_1_10_000001 the cat sat" in read_lines(decode_dir / "mls_en_test" / "text")
    info = json.loads((decode_dir / "decode_info.json").read_text())
    assert info["sets"] == {"mls_en_test": "en", "mls_fr_test": "fr"}
    assert info["model_file"] == str(opts.model_file)


def test_decode_resume_and_redo(setup):
    opts, data_root, decode_dir = setup
    assert decode.decode_set(opts, data_root / "mls_en_test", decode_dir / "mls_en_test")
    assert not decode.decode_set(opts, data_root / "mls_en_test", decode_dir / "mls_en_test")
    opts.inference_config.write_text("beam_size: 8\n")
    assert decode.decode_set(opts, data_root / "mls_en_test", decode_dir / "mls_en_test")


def test_failed_job_names_its_log(setup, monkeypatch):
    opts, data_root, decode_dir = setup
    monkeypatch.setenv("FAKE_FAIL_KEY", "fr_3_12_000002")
    with pytest.raises(RuntimeError, match=r"(?s)1 of 2 job\(s\) failed: .*asr_inference.1.log.*cannot decode fr_3_12_000002"):
        decode.decode_set(opts, data_root / "mls_fr_test", decode_dir / "mls_fr_test")
    assert not (decode_dir / "mls_fr_test" / "text").exists()
    assert not (decode_dir / "mls_fr_test" / "decode.done").exists()


def test_missing_model_and_config(setup, tmp_path):
    opts, _, _ = setup
    with pytest.raises(FileNotFoundError, match="missing model file"):
        decode.DecodeOptions(model_file=tmp_path / "none.pth", train_config=opts.train_config)
    with pytest.raises(FileNotFoundError, match="missing inference config"):
        decode.DecodeOptions(opts.model_file, opts.train_config, inference_config=tmp_path / "none.yaml")


def test_cli(setup, tmp_path):
    opts, data_root, decode_dir = setup
    def argv(test_set):
        return ["--asr_exp", str(opts.model_file.parent), "--model_file", "valid.loss.ave.pth", "--data_root",
                str(data_root), "--test_sets", test_set, "--decode_dir", str(decode_dir),
                "--inference_module", "fake_asr_inference", "--inference_nj", "3"]

    assert decode.main(argv("mls_en_test")) == 0
    assert len(list((decode_dir / "mls_en_test" / "logdir").glob("keys.*.scp"))) == 3
    assert decode.main(argv("mls_nl_test")) == 1


def test_decode_sets_show_progress_lines(setup, caplog):
    opts, data_root, decode_dir = setup
    sets = ["mls_en_test", "mls_fr_test"]
    with caplog.at_level("INFO"):
        decode.decode_sets(opts, data_root, sets, decode_dir)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("decoding: ")]
    assert len(lines) == 2
    assert lines[0].startswith("decoding: 3/6 utterances (50.0%), 1/2 sets (mls_en_test), elapsed ")
    assert lines[1].startswith("decoding: 6/6 utterances (100.0%), 2/2 sets (mls_fr_test), elapsed ")
    assert lines[1].endswith(", ETA 0s")
    caplog.clear()
    shared = decode.decode_progress(data_root, sets * 2)  # as phase_eval counts over several phases
    with caplog.at_level("INFO"):
        decode.decode_sets(opts, data_root, sets, decode_dir, shared)
    assert "decoding: 0/6 utterances (0.0%), 2/4 sets (mls_fr_test up to date), elapsed 0s, ETA ?" in caplog.text


def test_lid_eval_decodes_each_set_again_with_lang_auto(setup, monkeypatch):
    opts, data_root, decode_dir = setup
    opts = decode.DecodeOptions(**{**opts.__dict__, "module": "fake_asr_inference_lid"})
    monkeypatch.setenv("FAKE_WRONG_LANG", "fr_3_12_000002")
    decode.decode_sets(opts, data_root, ["mls_en_test", "mls_fr_test"], decode_dir, lid_eval=True,
                       lid_args=("--lid_chunks", "2"))  # fmt: skip
    auto = decode_dir / "mls_fr_test" / "lang_auto"
    keys = sorted(u for u, v in UTTS.items() if v[1] == "fr")
    assert [line.split()[0] for line in read_lines(auto / "text")] == keys
    assert read_lines(auto / "lang") == [f"{k} {'it' if k == 'fr_3_12_000002' else 'fr'}" for k in keys]
    argv = json.loads((auto / "logdir" / "output.1" / "argv.json").read_text())["argv"]
    assert argv[argv.index("--lang") + 1] == "auto"
    assert argv[-4:] == ["--beam_size", "2", "--lid_chunks", "2"]
    assert "fr_3_12_000002 est sur le tapis" in read_lines(decode_dir / "mls_fr_test" / "text")  # the true-language run
    assert json.loads((decode_dir / "decode_info.json").read_text())["lid_args"] == "--lid_chunks 2"
    auto_opts = decode.DecodeOptions(**{**opts.__dict__, "inference_args": (*opts.inference_args, "--lid_chunks", "2")})
    assert not decode.decode_set(auto_opts, data_root / "mls_fr_test", auto, auto=True)  # up to date
    assert decode.decode_set(opts, data_root / "mls_fr_test", auto, auto=True)  # other options: decoded again


def test_without_lid_eval_nothing_changes(setup):
    opts, data_root, decode_dir = setup
    decode.decode_sets(opts, data_root, ["mls_en_test"], decode_dir)
    stamp = (decode_dir / "mls_en_test" / "decode.done").read_text()
    info = json.loads((decode_dir / "decode_info.json").read_text())
    assert not (decode_dir / "mls_en_test" / "lang_auto").exists()
    assert "lid_args" not in info and '"lang"' not in stamp


def test_lang_auto_job_without_languages_is_an_error(setup, monkeypatch):
    opts, data_root, decode_dir = setup
    opts = decode.DecodeOptions(**{**opts.__dict__, "module": "fake_asr_inference_lid"})
    monkeypatch.setenv("FAKE_NO_LANG", "1")
    with pytest.raises(FileNotFoundError, match=r"output.1/1best_recog/lang: the decoding job wrote no language"):
        decode.decode_set(opts, data_root / "mls_en_test", decode_dir / "x", auto=True)
    assert not (decode_dir / "x" / "decode.done").exists()
