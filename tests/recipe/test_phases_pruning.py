"""Pruning phases of the recipe: the phases-file keys (languages, foreach_language, init_masks_from,
decode, merged configs), language subsets, stage 11 with a fake trainer, stages 12-13 for several
phases (fake decoder, real sclite) and the results tables with sparsity read from checkpoint masks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from espnet_pathways.pruning import PruningConfig
from espnet_pathways.recipe import launch, phases, subsets
from espnet_pathways.recipe.stages import collect_stats, phase_eval, phase_results, train, phases as phases_cli
from espnet_pathways.recipe.mask_report import percent
from espnet_pathways.recipe.stages.results import checkpoint_stats
from espnet_pathways.recipe.sclite import find_sclite
from recipe_data import UTTS, read_lines, write_dump_and_char_tokens, write_masked_checkpoint, write_test_sets

RECIPE = Path(__file__).resolve().parents[2] / "egs2_mls_pathways" / "asr1"
LANGS = ["en", "fr"]


def write_phases(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ the phases file


TINY = """
phases:
  - {name: dense, config: base.yaml, exp: asr_dense}
  - {name: imp, config: [base.yaml, imp.yaml], exp: asr_imp, init_from: dense, foreach_language: true}
  - {name: ada, config: [base.yaml, ada.yaml], exp: asr_ada, init_from: imp, foreach_language: true,
     languages: [fr], init_masks_from: imp}
  - {name: pathways, config: [base.yaml, pw.yaml], exp: asr_pw, init_from: dense, init_masks_from: [imp]}
  - {name: solo, config: base.yaml, exp: asr_solo, languages: [fr, en], init_masks_from: [imp_fr], decode: false}
"""


def test_foreach_language_expansion_and_references(tmp_path):
    plan = phases.load_phases(write_phases(tmp_path / "p.yaml", TINY), tmp_path / "exp", LANGS)
    assert [p.name for p in plan] == ["dense", "imp_en", "imp_fr", "ada_fr", "pathways", "solo"]
    by = {p.name: p for p in plan}
    assert by["imp_fr"].exp_dir == tmp_path / "exp" / "asr_imp_fr"
    assert by["imp_fr"].languages == ("fr",) and by["imp_fr"].group == "imp" and by["imp_fr"].init_from == "dense"
    # merged configs go to <exp>/phase_config.yaml; stage 10 uses the first file
    assert by["imp_en"].config == tmp_path / "exp" / "asr_imp_en" / phases.MERGED_CONFIG
    assert by["imp_en"].sources == (Path("base.yaml"), Path("imp.yaml")) and by["imp_en"].base_config == Path("base.yaml")
    assert by["dense"].config == Path("base.yaml") and by["dense"].languages == ()
    # inside a per-language group, a group name means the same language's phase
    assert by["ada_fr"].init_from == "imp_fr" and by["ada_fr"].init_masks_from == ("imp_fr",)
    # outside, init_masks_from a group means all of its phases
    assert by["pathways"].init_masks_from == ("imp_en", "imp_fr")
    assert by["solo"].languages == ("fr", "en") and by["solo"].decode is False
    assert "phases[2] (ada) [fr]" in by["ada_fr"].origin


@pytest.mark.parametrize(
    "text, match",
    [
        ("- {name: a, config: c.yaml, exp: x, language: [en]}", r"phases\[0\]: unknown key\(s\) \['language'\]"),
        ("- {name: a, config: c.yaml, exp: x, init_masks_from: [b]}\n- {name: b, config: c.yaml, exp: y}",
         r"phases\[0\] \(a\): init_masks_from 'b' is not an earlier phase \(it is defined later"),
        ("- {name: a, config: c.yaml, exp: x, init_masks_from: nope}", "init_masks_from 'nope' is not an earlier phase"),
        ("- {name: a, config: c.yaml, exp: x, init_from: a}", "init_from 'a' names the phase itself"),
        ("- {name: a, config: c.yaml, exp: x, languages: [de]}", r"phases\[0\] \(a\): languages: 'de' is not in the language list"),
        ("- {name: a, config: c.yaml, exp: x, languages: [en, en]}", "'languages' repeats a name"),
        ("- {name: a, config: c.yaml, exp: x, languages: []}", "'languages' must be a name or a non-empty list"),
        ("- {name: a, config: c.yaml, exp: x, decode: 'yes'}", "'decode' must be true or false"),
        ("- {name: a, config: [], exp: x}", "'config' must be a file name or a non-empty list"),
        ("- {name: a, config: c.yaml, exp: x, foreach_language: true}\n- {name: b, config: c.yaml, exp: y, init_from: a}",
         r"init_from 'a' names 2 phases \(a_en, a_fr\)"),
        ("- {name: a, config: c.yaml, exp: x, foreach_language: true}\n- {name: a_fr, config: c.yaml, exp: y}",
         "phase name 'a_fr' used twice"),
        ("- {name: a, config: c.yaml, exp: x, foreach_language: true}\n- {name: b, config: c.yaml, exp: x_en}",
         "experiment dir .*x_en used by an earlier phase"),
    ],
)
def test_phases_file_errors_name_file_and_key(tmp_path, text, match):
    path = write_phases(tmp_path / "bad.yaml", "phases:\n" + "".join(f"  {line}\n" for line in text.splitlines()))
    with pytest.raises(ValueError, match=match) as err:
        phases.load_phases(path, tmp_path, LANGS)
    assert str(path) in str(err.value)


def test_foreach_language_needs_a_language_list(tmp_path):
    path = write_phases(tmp_path / "p.yaml", "phases:\n  - {name: a, config: c.yaml, exp: x, foreach_language: true}\n")
    with pytest.raises(ValueError, match="foreach_language needs 'languages' or the recipe's language list"):
        phases.load_phases(path, tmp_path)
    assert [p.name for p in phases.load_phases(path, tmp_path, ["nl"])] == ["a_nl"]


def test_merged_config_is_written_once(tmp_path):
    (tmp_path / "base.yaml").write_text("encoder: emformer\nencoder_conf: {num_layers: 4, output_size: 144}\nmax_epoch: 30\n")
    (tmp_path / "over.yaml").write_text("encoder_conf: {num_layers: 2}\nmax_epoch: 3\npruning_conf: {method: imp}\n")
    path = write_phases(
        tmp_path / "p.yaml",
        f"phases:\n  - {{name: a, config: [{tmp_path}/base.yaml, {tmp_path}/over.yaml], exp: x}}\n",
    )
    (phase,) = phases.load_phases(path, tmp_path / "exp")
    assert phase.write_config() == phase.config
    doc = yaml.safe_load(phase.config.read_text())
    assert doc == {"encoder": "emformer", "encoder_conf": {"num_layers": 2, "output_size": 144}, "max_epoch": 3,
                   "pruning_conf": {"method": "imp"}}
    assert phase.config.read_text().startswith("# Written by espnet_pathways.recipe.phases")
    mtime = phase.config.stat().st_mtime_ns
    phase.write_config()
    assert phase.config.stat().st_mtime_ns == mtime  # unchanged contents are not rewritten
    assert phase.method_name == "imp" and phase.method.rewinds is False
    (tmp_path / "over.yaml").write_text("- not a mapping\n")
    assert phase.write_config() == phase.config  # a phase reads its configs once
    with pytest.raises(ValueError, match="over.yaml: expected a YAML mapping"):
        phases.load_phases(path, tmp_path / "exp")[0].write_config()


def test_shipped_phase_files_and_prune_configs(monkeypatch, tmp_path):
    """Every shipped phases file loads, every pruning phase's merged config is a valid pruning_conf
    (with the overrides the recipe adds) that ESPnet's parser accepts, and the schedules fit in the
    first epoch."""
    from espnet_pathways.tasks.asr import PathwaysASRTask

    parser = PathwaysASRTask.get_parser()
    monkeypatch.chdir(RECIPE)
    langs = ["en", "fr", "it", "nl"]
    expected = {
        "demo_pathways.yaml": ["dense", "lth", "pathways_lth", "lap", "dynamic_pathways_lap"],
        "table1.yaml": ["dense", "lap", "imp", "lth", "pathways_imp", "pathways_lth", "adaptive_imp", "adaptive_lth"],
        "repro.yaml": ["dense", "dense_continued", "lap", "lth", "pathways_lth", "adaptive_lth", "pathways_lap",
                       "dynamic_lth", "dynamic_lap", "imp", "pathways_imp", "adaptive_imp", "dense_mono",
                       "dynamic_lth_norezero", "dynamic_lap_norezero", "pathways_lth_1200", "dense_continued_1200",
                       "lap_50", "lth_50", "pathways_lth_50", "dynamic_lth_50", "dynamic_lth_50_to_70",
                       "lap_80", "lth_80", "pathways_lth_80", "dynamic_lth_80",
                       "lap_90", "lth_90", "pathways_lth_90", "dynamic_lth_90",
                       "lap_20", "lth_20", "dynamic_lap_50_to_70", "dynamic_lap_20_to_70", "dynamic_lth_20_to_70"],
    }
    mask_only = {"lth_50", "lth_80", "lth_90", "lap_20", "lth_20"}  # provide masks, never decoded
    for name, groups in expected.items():
        plan = phases.load_phases(Path("conf/phases") / name, Path("exp"), langs)
        by_name = {p.name: p for p in plan}
        assert list(dict.fromkeys(p.group for p in plan)) == groups
        decoded = [p.name for p in plan if p.group not in mask_only]  # dense: decode: true
        assert [p.name for p in phases.decoded_phases(plan)] == decoded
        for phase in plan:
            conf = phase.config_dict
            assert conf["encoder"] == "emformer", phase.name
            if phase.group.startswith("dense"):
                assert "pruning_conf" not in conf
                continue
            pruning = dict(conf["pruning_conf"])
            if phase.languages and pruning["method"] != "lap":
                pruning["languages"] = list(phase.languages)
            if phase.init_masks_from:
                pruning["init_masks"] = [str(p) for p in phase.init_masks_from]
            overrides = [a for k in ("init_masks", "languages") if k in pruning
                         for a in ("--pruning_conf", f"{k}={json.dumps(pruning[k])}")]
            args = list(phase.args)  # the phase's own --pruning_conf key=value overrides
            for flag, value in zip(args, args[1:]):
                if flag == "--pruning_conf":
                    key, text = value.split("=", 1)
                    pruning[key] = yaml.safe_load(text)
            pc = PruningConfig.from_dict(pruning)
            merged = tmp_path / f"{name}_{phase.name}.yaml"
            merged.write_text(yaml.safe_dump(conf))
            parsed = parser.parse_args(["--config", str(merged), "--output_dir", "o", *args, *overrides])
            assert parsed.pruning_conf == pruning and parsed.num_iters_per_epoch == conf["num_iters_per_epoch"]
            swept = phase.group.endswith(("_20", "_50", "_80", "_90"))  # the WER-vs-sparsity rows and Table 2's starts
            assert pc.target_sparsity == (float("0." + phase.group[-2:]) if swept else 0.7) or pc.method == "pathways"
            if pc.prunes:
                assert pc.hard_from() <= conf["num_iters_per_epoch"], phase.name
            if pc.method in ("pathways", "dynamic_pathways"):
                assert conf["batch_type"] == "folded" and not phase.languages
            if pc.method in ("imp", "lth", "adaptive_imp", "adaptive_lth"):
                assert len(phase.languages) == 1
            if phase.seed is not None:  # a seeded row's masks come from the same seed's phases
                assert all(by_name[n].seed in (None, phase.seed) for n in phase.init_masks_from), phase.name


def test_pruning_args(tmp_path):
    (tmp_path / "base.yaml").write_text("encoder: emformer\n")
    (tmp_path / "imp.yaml").write_text("pruning_conf: {method: imp, target_sparsity: 0.7}\n")
    (tmp_path / "lap.yaml").write_text("pruning_conf: {method: lap, target_sparsity: 0.7}\n")
    (tmp_path / "pw.yaml").write_text("pruning_conf: {method: pathways}\n")
    (tmp_path / "fr_only.yaml").write_text("pruning_conf: {method: imp, languages: [fr]}\n")
    t = tmp_path
    path = write_phases(tmp_path / "p.yaml", f"""
phases:
  - {{name: dense, config: {t}/base.yaml, exp: d}}
  - {{name: imp, config: [{t}/base.yaml, {t}/imp.yaml], exp: imp, foreach_language: true}}
  - {{name: lap, config: [{t}/base.yaml, {t}/lap.yaml], exp: lap, languages: [fr]}}
  - {{name: pw, config: [{t}/base.yaml, {t}/pw.yaml], exp: pw, init_masks_from: [imp, lap]}}
  - {{name: bad_dense, config: {t}/base.yaml, exp: bd, init_masks_from: [imp]}}
  - {{name: clash, config: [{t}/base.yaml, {t}/fr_only.yaml], exp: cl, languages: [en]}}
""")
    plan = {p.name: p for p in phases.load_phases(path, tmp_path / "exp", LANGS)}
    assert plan["dense"].pruning_args(list(plan.values())) == []
    assert plan["imp_fr"].pruning_args(list(plan.values())) == ["--pruning_conf", 'languages=["fr"]']
    assert plan["lap"].pruning_args(list(plan.values())) == []  # one shared mask "*"
    with pytest.raises(FileNotFoundError, match=r"phases\[3\] \(pw\): init_masks_from: phase 'imp_en' left no .*masks.pwm"):
        plan["pw"].pruning_args(list(plan.values()))
    for name in ("imp_en", "imp_fr", "lap"):
        plan[name].masks_file.parent.mkdir(parents=True)
        plan[name].masks_file.write_bytes(b"m")
    args = plan["pw"].pruning_args(list(plan.values()))
    assert args[0] == "--pruning_conf" and args[1].startswith("init_masks=")
    assert yaml.safe_load(args[1].split("=", 1)[1]) == [str(plan[n].masks_file) for n in ("imp_en", "imp_fr", "lap")]
    with pytest.raises(ValueError, match=r"\(bad_dense\): init_masks_from needs a config with pruning_conf"):
        plan["bad_dense"].pruning_args(list(plan.values()))
    with pytest.raises(ValueError, match=r"\(clash\): languages \['en'\] differ from pruning_conf.languages \['fr'\]"):
        plan["clash"].pruning_args(list(plan.values()))


def test_cli_override_merges_into_the_configs_pruning_conf(tmp_path):
    """ESPnet's NestedDictAction updates the YAML's pruning_conf key by key (no replacement), so
    the recipe can pass init_masks and languages on the command line."""
    from espnet_pathways.tasks.asr import PathwaysASRTask

    config = tmp_path / "c.yaml"
    config.write_text("pruning_conf: {method: pathways, target_sparsity: 0.7, prune_interval: 50}\n")
    args = PathwaysASRTask.get_parser().parse_args([
        "--config", str(config), "--output_dir", str(tmp_path / "o"),
        "--pruning_conf", 'init_masks=["a/masks.pwm", "b/masks.pwm"]', "--pruning_conf", 'languages=["no", "fr"]',
    ])
    assert args.pruning_conf == {"method": "pathways", "target_sparsity": 0.7, "prune_interval": 50,
                                 "init_masks": ["a/masks.pwm", "b/masks.pwm"], "languages": ["no", "fr"]}


def test_decode_selection(tmp_path):
    (tmp_path / "dense.yaml").write_text("encoder: emformer\n")
    (tmp_path / "prune.yaml").write_text("pruning_conf: {method: lth}\n")
    t = tmp_path
    path = write_phases(tmp_path / "p.yaml", f"""
phases:
  - {{name: dense, config: {t}/dense.yaml, exp: d}}
  - {{name: dense2, config: {t}/dense.yaml, exp: d2, decode: true}}
  - {{name: lth, config: [{t}/dense.yaml, {t}/prune.yaml], exp: l, foreach_language: true}}
  - {{name: lth_off, config: {t}/prune.yaml, exp: lo, decode: false}}
  - {{name: last, config: {t}/dense.yaml, exp: z}}
""")
    plan = phases.load_phases(path, tmp_path / "exp", LANGS)
    assert [p.name for p in phases.decoded_phases(plan)] == ["dense2", "lth_en", "lth_fr", "last"]


def test_phases_cli_fields(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("encoder: emformer\n")
    path = write_phases(tmp_path / "p.yaml", f"""
phases:
  - {{name: a, config: [{tmp_path}/c.yaml, x.yaml], exp: asr_a, foreach_language: true}}
""")
    assert phases_cli.main(["--phases_config", str(path), "--expdir", "exp", "--langs", "en fr", "--which", "all"]) == 0
    assert capsys.readouterr().out == "exp/asr_a_en\nexp/asr_a_fr\n"
    assert phases_cli.main(["--phases_config", str(path), "--expdir", "exp", "--langs", "en fr",
                        "--which", "first", "--field", "config"]) == 0
    assert capsys.readouterr().out == f"{tmp_path}/c.yaml\n"
    assert phases_cli.main(["--phases_config", str(path), "--expdir", "exp", "--which", "last"]) == 1  # no languages


# ------------------------------------------------------------------ language subsets and stage 11


@pytest.fixture
def prepared(tmp_path, fakes_env):
    """dump/raw/{train,dev} (en + fr), token list, stats (fake collect-stats) and a train setup."""
    dirs, token_dir = write_dump_and_char_tokens(tmp_path, LANGS)
    base = tmp_path / "base.yaml"
    base.write_text("encoder: emformer\nbatch_type: numel\nmax_epoch: 30\n")
    (tmp_path / "imp.yaml").write_text("pruning_conf: {method: imp, target_sparsity: 0.7}\nmax_epoch: 2\n")
    (tmp_path / "pw.yaml").write_text("pruning_conf: {method: pathways}\nbatch_type: folded\n")
    stats = tmp_path / "exp" / "asr_stats"
    collect_stats.collect_stats(dirs["train"], dirs["dev"], token_dir, base, stats, module="fake_asr_train")
    setup = train.TrainSetup(train_dir=dirs["train"], valid_dir=dirs["dev"], token_dir=token_dir, stats_dir=stats,
                             module="fake_asr_train")
    return setup, tmp_path


def test_language_subset(prepared):
    setup, root = prepared
    out = root / "raw" / "train_fr"
    assert subsets.language_subset(setup.train_dir, ["fr"], out)
    fr = sorted(u for u, v in UTTS.items() if v[1] == "fr" and v[3])
    for name in ("wav.scp", "text", "utt2spk", "utt2lang", "utt2lang_id", "utt2category", "utt2num_samples"):
        assert [line.split()[0] for line in read_lines(out / name)] == fr, name
    assert {line.split()[1] for line in read_lines(out / "utt2category")} == {"fr"}
    assert {line.split()[1] for line in read_lines(out / "utt2lang_id")} == {"1"}  # ids of the full list
    assert read_lines(out / "lang_list.txt") == LANGS
    assert read_lines(out / "spk2utt") == [f"fr_3 {' '.join(fr)}"]
    assert read_lines(out / "text") == [line for line in read_lines(setup.train_dir / "text") if line.startswith("fr_")]
    assert not subsets.language_subset(setup.train_dir, ["fr"], out)  # up to date
    with pytest.raises(ValueError, match=r"lang_list.txt: no language 'de'"):
        subsets.language_subset(setup.train_dir, ["de"], root / "raw" / "train_de")
    # the shapes follow the subsets; statistics are the full set's
    assert subsets.language_subset(setup.valid_dir, ["fr"], root / "raw" / "dev_fr")
    shapes = setup.stats_dir / "subset_fr"
    assert subsets.shape_subset(setup.stats_dir, out, root / "raw" / "dev_fr", shapes)
    assert [line.split()[0] for line in read_lines(shapes / "train" / "speech_shape")] == fr
    assert [line.split()[0] for line in read_lines(shapes / "valid" / "text_shape.bpe")] == fr
    assert (shapes / "train" / "feats_stats.npz").read_bytes() == (setup.stats_dir / "train" / "feats_stats.npz").read_bytes()
    assert not subsets.shape_subset(setup.stats_dir, out, root / "raw" / "dev_fr", shapes)
    # every language: the full dirs
    assert subsets.phase_data(setup.train_dir, setup.valid_dir, setup.stats_dir, ["fr", "en"]) == (
        setup.train_dir, setup.valid_dir, setup.stats_dir)


def _argv(exp: Path, call: int = 0) -> list:
    return json.loads(read_lines(exp / "calls.jsonl")[call])


def _opt(argv: list, name: str) -> list:
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


def test_pruning_phases_in_stage_11(prepared):
    setup, root = prepared
    path = write_phases(root / "p.yaml", f"""
phases:
  - {{name: dense, config: {root}/base.yaml, exp: asr_dense}}
  - {{name: imp, config: [{root}/base.yaml, {root}/imp.yaml], exp: asr_imp, init_from: dense, foreach_language: true}}
  - {{name: pathways, config: [{root}/base.yaml, {root}/pw.yaml], exp: asr_pw, init_from: dense, init_masks_from: imp}}
""")
    exp = root / "exp"
    plan = phases.load_phases(path, exp, LANGS)
    train.run_phases(setup, plan, launch.LaunchOptions(python=sys.executable))
    dense = _argv(exp / "asr_dense")
    assert f"{setup.train_dir}/wav.scp,speech,sound" in _opt(dense, "--train_data_path_and_name_and_type")
    assert "--pruning_conf" not in dense
    for lang in LANGS:
        argv = _argv(exp / f"asr_imp_{lang}")
        assert f"{root}/raw/train_{lang}/wav.scp,speech,sound" in _opt(argv, "--train_data_path_and_name_and_type")
        assert f"{root}/raw/dev_{lang}/utt2lang_id,lang,text_int" in _opt(argv, "--valid_data_path_and_name_and_type")
        assert _opt(argv, "--train_shape_file")[0] == str(setup.stats_dir / f"subset_{lang}" / "train" / "speech_shape")
        assert _opt(argv, "--lang_list") == [f"{root}/raw/train_{lang}/lang_list.txt"]
        assert _opt(argv, "--init_param") == [str(exp / "asr_dense" / "valid.loss.ave.pth")]
        assert _opt(argv, "--pruning_conf") == [f'languages=["{lang}"]']
        assert _opt(argv, "--config") == [str(exp / f"asr_imp_{lang}" / "phase_config.yaml")]
        assert yaml.safe_load((exp / f"asr_imp_{lang}" / "config.yaml").read_text())["max_epoch"] == 2
        assert (root / "raw" / f"train_{lang}" / "utt2category").is_file()
    pw = _argv(exp / "asr_pw")
    masks = [str(exp / f"asr_imp_{lang}" / "masks.pwm") for lang in LANGS]
    assert _opt(pw, "--pruning_conf") == ["init_masks=" + json.dumps(masks)]
    assert f"{setup.train_dir}/wav.scp,speech,sound" in _opt(pw, "--train_data_path_and_name_and_type")

    train.run_phases(setup, plan, launch.LaunchOptions(python=sys.executable))  # everything is up to date
    for d in ("asr_dense", "asr_imp_en", "asr_imp_fr", "asr_pw"):
        assert len(read_lines(exp / d / "calls.jsonl")) == 1, d
    (exp / "asr_pw" / "checkpoint.pth").write_bytes(b"state of the finished run")
    (exp / "asr_pw" / "3epoch.pth").write_bytes(b"snapshot")
    (exp / "asr_imp_fr" / "masks.pwm").write_bytes(b"other masks")  # new masks: the pathway phase reruns
    train.run_phases(setup, plan, launch.LaunchOptions(python=sys.executable))
    assert len(read_lines(exp / "asr_pw" / "calls.jsonl")) == 2
    assert len(read_lines(exp / "asr_imp_fr" / "calls.jsonl")) == 1
    # ... afresh: ESPnet's --resume would otherwise continue the run of the old masks
    assert not (exp / "asr_pw" / "checkpoint.pth").exists() and not (exp / "asr_pw" / "3epoch.pth").exists()

    # an interrupted run (no stamp) of the same inputs keeps its resume state
    (exp / "asr_pw" / "checkpoint.pth").write_bytes(b"state of the interrupted run")
    (exp / "asr_pw" / train.STAMP).unlink()
    train.run_phases(setup, plan, launch.LaunchOptions(python=sys.executable))
    assert len(read_lines(exp / "asr_pw" / "calls.jsonl")) == 3
    assert (exp / "asr_pw" / "checkpoint.pth").read_bytes() == b"state of the interrupted run"


def test_train_main_checks_languages_against_lang_list(prepared, caplog):
    setup, root = prepared
    path = write_phases(root / "p.yaml", f"phases:\n  - {{name: a, config: {root}/base.yaml, exp: x, languages: [it]}}\n")
    argv = ["--train_dir", str(setup.train_dir), "--valid_dir", str(setup.valid_dir), "--token_dir",
            str(setup.token_dir), "--stats_dir", str(setup.stats_dir), "--phases_config", str(path),
            "--expdir", str(root / "exp"), "--train_module", "fake_asr_train"]
    assert train.main(argv) == 1
    assert f"{path}: phases[0] (a): languages: 'it' is not in the language list ['en', 'fr']" in caplog.text


# ------------------------------------------------------------------ stages 12-13 and results


@pytest.fixture
def decoded(tmp_path, fakes_env):
    data_root = tmp_path / "dump" / "raw"
    write_test_sets(data_root, tmp_path / "audio", LANGS)
    base = tmp_path / "base.yaml"
    base.write_text("encoder: emformer\n")
    (tmp_path / "ada.yaml").write_text("pruning_conf: {method: adaptive_imp}\n")
    (tmp_path / "pw.yaml").write_text("pruning_conf: {method: pathways}\n")
    path = write_phases(tmp_path / "p.yaml", f"""
phases:
  - {{name: dense, config: {base}, exp: asr_dense, decode: true}}
  - {{name: ada, config: [{base}, {tmp_path}/ada.yaml], exp: asr_ada, init_from: dense, foreach_language: true}}
  - {{name: pathways, config: [{base}, {tmp_path}/pw.yaml], exp: asr_pw, init_masks_from: [ada]}}
""")
    exp = tmp_path / "exp"
    plan = phases.load_phases(path, exp, LANGS)
    masks = {
        "dense": write_masked_checkpoint(exp / "asr_dense" / "valid.loss.ave.pth", {}),
        "ada_en": write_masked_checkpoint(exp / "asr_ada_en" / "valid.loss.ave.pth", {"en": 0.7}),
        "ada_fr": write_masked_checkpoint(exp / "asr_ada_fr" / "valid.loss.ave.pth", {"fr": 0.6}),
        "pathways": write_masked_checkpoint(exp / "asr_pw" / "valid.loss.ave.pth", {"en": 0.7, "fr": 0.5}),
    }
    sets = ["mls_en_test", "mls_fr_test"]
    phase_eval.decode_phases(plan, data_root, sets, "tag", "valid.loss.ave.pth", module="fake_asr_inference")
    return plan, exp, data_root, sets, masks


def test_decode_phases_selects_sets_and_languages(decoded):
    plan, exp, data_root, sets, _ = decoded
    assert [(p.name, s) for p, s in phase_eval.eval_plan(plan, data_root, sets)] == [
        ("dense", sets), ("ada_en", ["mls_en_test"]), ("ada_fr", ["mls_fr_test"]), ("pathways", sets)]
    assert sorted(p.name for p in (exp / "asr_ada_fr" / "decode_tag").iterdir()) == [
        "decode_info.json", "mls_fr_test"]
    argv = json.loads((exp / "asr_pw" / "decode_tag" / "mls_fr_test" / "logdir" / "output.1" / "argv.json").read_text())["argv"]
    assert argv[argv.index("--lang") + 1] == "fr"
    assert argv[argv.index("--asr_model_file") + 1] == str(exp / "asr_pw" / "valid.loss.ave.pth")
    assert argv[argv.index("--asr_train_config") + 1] == str(exp / "asr_pw" / "config.yaml")


def test_score_phases_writes_sparsity_from_masks_and_table(decoded):
    plan, exp, data_root, sets, masks = decoded
    # one wrong word for the French adaptive model: WER 1/6 words = 16.67%
    hyp = exp / "asr_ada_fr" / "decode_tag" / "mls_fr_test" / "text"
    hyp.write_text(hyp.read_text().replace("est sur le tapis", "est sous le tapis"))
    table = phase_eval.score_phases(plan, exp, data_root, sets, "tag", find_sclite(), "./run.sh --stage 13",
                                    LANGS, "p.yaml")
    assert table == exp / "RESULTS.md"
    total = checkpoint_stats(exp / "asr_pw" / "valid.loss.ave.pth")["params"]
    assert total == sum(p.numel() for p in nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 4)).parameters())
    pw = (exp / "asr_pw" / "RESULTS.md").read_text()
    m = masks["pathways"]
    for lang in LANGS:
        assert f"|{lang}|{lang}|{m.kept(lang)}|{percent(m.sparsity(lang))}|{percent(m.sparsity(lang, total))}|" in pw
    union = 1 - sum(int(x.sum()) for x in m.union().values()) / m.num_prunable
    assert "|**union** (model)|en+fr|" in pw and percent(union) in pw
    assert "### Pathway sparsity" not in (exp / "asr_dense" / "RESULTS.md").read_text()  # dense: unchanged
    fr = (exp / "asr_ada_fr" / "RESULTS.md").read_text()
    assert f"|fr|fr|{masks['ada_fr'].kept('fr')}|{percent(masks['ada_fr'].sparsity('fr'))}|" in fr

    md = table.read_text()
    assert "## WER on mls_*_test" in md
    assert "|phase|method|init masks|mask can change?|training data|EN|FR|Avg.|sparsity (prunable)|sparsity (all params)|command|" in md
    ada_sp = (masks["ada_en"].sparsity("en") + masks["ada_fr"].sparsity("fr")) / 2
    ada_all = (masks["ada_en"].sparsity("en", total) + masks["ada_fr"].sparsity("fr", total)) / 2
    fr_wer = 100 / 6
    assert (f"|ada|adaptive_imp|-|yes|monolingual|0.00|{fr_wer:.2f}|{fr_wer / 2:.2f}|{percent(ada_sp)}|"
            f"{percent(ada_all)}|`./run.sh --stage 13`|") in md
    pw_sp = (m.sparsity("en") + m.sparsity("fr")) / 2
    assert f"|pathways|pathways|ada|no|multilingual|0.00|0.00|0.00|{percent(pw_sp)}|" in md
    assert "|dense|dense|-|/|multilingual|0.00|0.00|0.00|0.00%|0.00%|" in md
    assert md.index("|dense|") < md.index("|ada|") < md.index("|pathways|")
    assert f"|ada|`{exp / 'asr_ada_en'}`, `{exp / 'asr_ada_fr'}`|" in md
    table.unlink()  # the table alone, from the scored phases
    assert phase_results.write_results_table(plan, exp, "tag", LANGS, "p.yaml") == table
    assert table.read_text() == md


def test_phase_eval_cli_errors(decoded, caplog):
    plan, exp, data_root, sets, _ = decoded
    path = exp.parent / "p.yaml"
    common = ["--phases_config", str(path), "--expdir", str(exp), "--langs", "en fr", "--data_root", str(data_root),
              "--inference_tag", "tag"]
    assert phase_eval.main(["score", *common, "--test_sets", ""]) == 1
    assert "no test set given" in caplog.text
    assert phase_eval.main(["score", *common, "--test_sets", "mls_en_test", "--sclite", find_sclite()]) == 0
    md = (exp / "RESULTS.md").read_text()
    assert "|EN|Avg.|" in md and "|ada|adaptive_imp|-|yes|monolingual|0.00|0.00|" in md  # ada_fr not decoded on en


def test_rows_off_the_target_sparsity_are_marked(decoded):
    """A French run that stopped at 60% (its schedule was cut short) beside English at the 70% target."""
    plan, exp, data_root, sets, masks = decoded
    for lang in LANGS:
        config = exp / f"asr_ada_{lang}" / "config.yaml"
        doc = yaml.safe_load(config.read_text())
        config.write_text(yaml.safe_dump({**doc, "pruning_conf": {**doc["pruning_conf"], "target_sparsity": 0.7}}))
    md = phase_eval.score_phases(plan, exp, data_root, sets, "tag", find_sclite(), "cmd", LANGS, "p.yaml").read_text()
    ada_sp = (masks["ada_en"].sparsity("en") + masks["ada_fr"].sparsity("fr")) / 2
    assert f"|{percent(ada_sp)} †|" in md.split("|ada|")[1].splitlines()[0]
    assert "† pathway sparsity more than 1 percentage point off pruning_conf.target_sparsity: ada (target 70.00%)" in md
    for group in ("dense", "pathways"):  # no target: dense; fixed pathways keep their initial masks
        assert "†" not in md.split(f"|{group}|")[1].splitlines()[0]
    fr = (exp / "asr_ada_fr" / "RESULTS.md").read_text()
    assert "|mls_fr_test †|fr|" in fr and "target_sparsity: pathway fr (target 70.00%)" in fr
    assert "†" not in (exp / "asr_ada_en" / "RESULTS.md").read_text()


# ------------------------------------------------------------------ seeds


SEEDED = """
phases:
  - {name: dense, config: base.yaml, exp: asr_dense}
  - {name: lth, config: [base.yaml, imp.yaml], exp: asr_lth, init_from: dense, foreach_language: true, seeds: [1, 2]}
  - {name: pathways, config: [base.yaml, pw.yaml], exp: asr_pw, init_from: dense, init_masks_from: lth, seeds: [1, 2]}
  - {name: all_masks, config: [base.yaml, pw.yaml], exp: asr_all, init_from: dense, init_masks_from: lth}
"""


def test_seeds_expand_after_languages_and_resolve_to_the_same_seed(tmp_path):
    plan = phases.load_phases(write_phases(tmp_path / "p.yaml", SEEDED), tmp_path / "exp", LANGS)
    by = {p.name: p for p in plan}
    assert [p.name for p in plan] == ["dense", "lth_en_s1", "lth_en_s2", "lth_fr_s1", "lth_fr_s2",
                                      "pathways_s1", "pathways_s2", "all_masks"]
    assert by["lth_fr_s2"].exp_dir == tmp_path / "exp" / "asr_lth_fr_s2"
    assert by["lth_fr_s2"].args == ("--seed", "2") and by["lth_fr_s2"].seed == 2 and by["lth_fr_s2"].group == "lth"
    assert by["lth_fr_s2"].init_from == "dense", "the unseeded θ0 is shared by every seed"
    assert by["pathways_s2"].init_masks_from == ("lth_en_s2", "lth_fr_s2")
    assert by["all_masks"].init_masks_from == ("lth_en_s1", "lth_en_s2", "lth_fr_s1", "lth_fr_s2")
    assert by["dense"].seed is None and by["dense"].args == ()
    assert "[fr, seed 2]" in by["lth_fr_s2"].origin


def test_selecting_seeds_and_entries_keeps_what_they_start_from(tmp_path):
    plan = phases.load_phases(write_phases(tmp_path / "p.yaml", SEEDED), tmp_path / "exp", LANGS)
    names = lambda **kw: [p.name for p in phases.select_phases(plan, **kw)]  # noqa: E731
    assert names() == [p.name for p in plan]
    assert names(seeds=[2], groups=["pathways"]) == ["dense", "lth_en_s2", "lth_fr_s2", "pathways_s2"]
    assert names(seeds=[1], groups=["lth"]) == ["dense", "lth_en_s1", "lth_fr_s1"]
    # an unseeded phase is kept with any seed, and so is every seed's phase it takes masks from
    assert names(seeds=[2], groups=["all_masks"]) == ["dense", "lth_en_s1", "lth_en_s2", "lth_fr_s1", "lth_fr_s2",
                                                      "all_masks"]
    with pytest.raises(ValueError, match="--seeds: no phase has seed 3"):
        phases.select_phases(plan, seeds=[3])
    with pytest.raises(ValueError, match="--groups: no phases-file entry is named 'pathway'"):
        phases.select_phases(plan, groups=["pathway"])
    args = argparse.Namespace(seeds="1 x", groups="")
    with pytest.raises(ValueError, match="--seeds: expected non-negative integers, got 'x'"):
        phases.selected(plan, args)


@pytest.mark.parametrize("seeds, match", [("[]", "non-empty list"), ("[1, 1]", "repeats a seed"),
                                          ("[-1]", "non-negative"), ("3", "non-empty list"), ("[true]", "integers")])
def test_bad_seeds_are_refused(tmp_path, seeds, match):
    path = write_phases(tmp_path / "p.yaml", f"phases:\n  - {{name: a, config: c.yaml, exp: x, seeds: {seeds}}}\n")
    with pytest.raises(ValueError, match=rf"phases\[0\] \(a\): 'seeds' .*{match}"):
        phases.load_phases(path, tmp_path, LANGS)


def test_seeded_rows_show_mean_and_sd(tmp_path, fakes_env):
    data_root = tmp_path / "dump" / "raw"
    write_test_sets(data_root, tmp_path / "audio", LANGS)
    (tmp_path / "base.yaml").write_text("encoder: emformer\n")
    (tmp_path / "pw.yaml").write_text("pruning_conf: {method: pathways}\n")
    path = write_phases(tmp_path / "p.yaml", f"""
phases:
  - {{name: pathways, config: [{tmp_path}/base.yaml, {tmp_path}/pw.yaml], exp: asr_pw, seeds: [1, 2, 3]}}
""")
    exp = tmp_path / "exp"
    plan = phases.load_phases(path, exp, LANGS)
    for seed in (1, 2, 3):
        write_masked_checkpoint(exp / f"asr_pw_s{seed}" / "valid.loss.ave.pth", {"en": 0.7, "fr": 0.7})
    sets = ["mls_en_test", "mls_fr_test"]
    phase_eval.decode_phases(plan, data_root, sets, "tag", "valid.loss.ave.pth", module="fake_asr_inference")
    # seed 2 gets one French word wrong (WER 1/6), seed 3 two (2/6); seeds 1 exact
    for seed, wrong in ((2, "est sous le tapis"), (3, "est sous le lit")):
        hyp = exp / f"asr_pw_s{seed}" / "decode_tag" / "mls_fr_test" / "text"
        hyp.write_text(hyp.read_text().replace("est sur le tapis", wrong))
    md = phase_eval.score_phases(plan, exp, data_root, sets, "tag", find_sclite(), "cmd", LANGS, "p.yaml").read_text()
    fr = [0.0, 100 / 6, 200 / 6]
    avg = [w / 2 for w in fr]  # English is exact for every seed
    row = next(line for line in md.splitlines() if line.startswith("|pathways (3 seeds)|"))
    sd = lambda v: (sum((x - sum(v) / 3) ** 2 for x in v) / 2) ** 0.5  # noqa: E731
    assert f"|0.00 ± 0.00|{sum(fr) / 3:.2f} ± {sd(fr):.2f}|{sum(avg) / 3:.2f} ± {sd(avg):.2f}|" in row
