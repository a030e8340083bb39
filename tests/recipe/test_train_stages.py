"""Stages 10-11: collect stats and training phases (with a fake training entry point), launchers."""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import numpy as np
import pytest

from espnet_pathways.recipe import launch, phases
from espnet_pathways.recipe.stages import collect_stats, train, phases as phases_cli
from recipe_data import read_lines, write_dump_and_char_tokens
from test_progress import ESPNET_LOG

MODULE = "fake_asr_train"


@pytest.fixture
def prepared(tmp_path, fakes_env):
    """dump/raw/{train,dev}, a token list and a training config."""
    dirs, token_dir = write_dump_and_char_tokens(tmp_path)
    config = tmp_path / "train.yaml"
    config.write_text("encoder: emformer\nbatch_type: folded\n")
    return dirs["train"], dirs["dev"], token_dir, config


def test_collect_stats_aggregates_jobs(prepared, tmp_path):
    train_dir, dev_dir, token_dir, config = prepared
    stats = tmp_path / "exp" / "asr_stats"
    assert collect_stats.collect_stats(train_dir, dev_dir, token_dir, config, stats, nj=2, module=MODULE)
    assert len(list((stats / "logdir").glob("stats.*.log"))) == 2
    n_tokens = len(read_lines(token_dir / "tokens.txt"))
    keys = sorted(line.split()[0] for line in read_lines(train_dir / "wav.scp"))
    assert [line.split()[0] for line in read_lines(stats / "train" / "speech_shape")] == keys
    assert all(line.endswith(f",{n_tokens}") for line in read_lines(stats / "train" / "text_shape.bpe"))
    assert int(np.load(stats / "train" / "feats_stats.npz")["count"]) == len(keys)
    call = json.loads(read_lines(stats / "logdir" / "stats.1" / "calls.jsonl")[0])
    assert call[call.index("--bpemodel") + 1] == str(token_dir)
    assert call[call.index("--token_type") + 1] == "bpe"
    assert f"{train_dir}/utt2lang_id,lang,text_int" in call
    assert not collect_stats.collect_stats(train_dir, dev_dir, token_dir, config, stats, nj=2, module=MODULE)


def test_collect_stats_bad_inputs(prepared, tmp_path):
    train_dir, dev_dir, token_dir, config = prepared
    with pytest.raises(FileNotFoundError, match="missing token list"):
        collect_stats.collect_stats(train_dir, dev_dir, tmp_path / "none", config, tmp_path / "s", module=MODULE)
    (dev_dir / "utt2lang_id").unlink()
    with pytest.raises(FileNotFoundError, match="utt2lang_id"):
        collect_stats.collect_stats(train_dir, dev_dir, token_dir, config, tmp_path / "s", module=MODULE)


@pytest.fixture
def setup(prepared, tmp_path):
    train_dir, dev_dir, token_dir, config = prepared
    stats = tmp_path / "exp" / "asr_stats"
    collect_stats.collect_stats(train_dir, dev_dir, token_dir, config, stats, module=MODULE)
    return train.TrainSetup(train_dir=train_dir, valid_dir=dev_dir, token_dir=token_dir, stats_dir=stats,
                            asr_args=("--max_epoch", "1"), module=MODULE), config


def test_single_phase_trains_then_skips(setup, tmp_path):
    ts, config = setup
    exp = tmp_path / "exp" / "asr_demo"
    plan = phases.single_phase(config, exp)
    opts = launch.LaunchOptions(python=sys.executable)
    assert train.run_phases(ts, plan, opts) == [exp]
    calls = read_lines(exp / "calls.jsonl")
    argv = json.loads(calls[0])
    assert argv[argv.index("--output_dir") + 1] == str(exp)
    assert argv[argv.index("--resume") + 1] == "true"
    assert argv[-4:] == ["--max_epoch", "1", "--ngpu", "0"]
    assert "--train_shape_file" in argv and argv[argv.index("--normalize") + 1] == "global_mvn"
    assert (exp / "train.log").read_text().startswith("# ")
    train.run_phases(ts, plan, opts)
    assert len(read_lines(exp / "calls.jsonl")) == 1  # skipped
    config.write_text("encoder: emformer\nbatch_type: folded\nmax_epoch: 2\n")
    train.run_phases(ts, plan, opts)
    assert len(read_lines(exp / "calls.jsonl")) == 2  # config changed: resumed


def test_phases_chain_with_init(setup, tmp_path):
    ts, config = setup
    spec = tmp_path / "phases.yaml"
    spec.write_text(
        f"phases:\n  - {{name: dense, config: {config}, exp: asr_dense}}\n"
        f"  - {{name: lth, config: {config}, exp: asr_lth, init_from: dense, args: [--prune, lth]}}\n"
    )
    plan = phases.load_phases(spec, tmp_path / "exp")
    train.run_phases(ts, plan, launch.LaunchOptions())
    argv = json.loads(read_lines(tmp_path / "exp" / "asr_lth" / "calls.jsonl")[0])
    assert argv[argv.index("--init_param") + 1] == str(tmp_path / "exp" / "asr_dense" / "valid.loss.ave.pth")
    assert argv[argv.index("--prune") + 1] == "lth"


def test_failed_or_incomplete_training(setup, tmp_path, monkeypatch):
    ts, config = setup
    exp = tmp_path / "exp" / "asr_fail"
    monkeypatch.setenv("FAKE_TRAIN_FAIL", "1")
    with pytest.raises(RuntimeError, match="(?s)train.log.*training failed on purpose"):
        train.run_phases(ts, phases.single_phase(config, exp), launch.LaunchOptions())
    assert not (exp / train.STAMP).exists()
    monkeypatch.delenv("FAKE_TRAIN_FAIL")
    other = train.TrainSetup(**{**ts.__dict__, "model_file": "valid.acc.ave.pth"})
    with pytest.raises(FileNotFoundError, match="left no .*valid.acc.ave.pth"):
        train.run_phases(other, phases.single_phase(config, exp), launch.LaunchOptions())


@pytest.mark.parametrize(
    "yaml_text, match",
    [
        ("phases: []\n", "non-empty list"),
        ("phases:\n  - {name: a, config: c.yaml}\n", "missing key 'exp'"),
        ("phases:\n  - {name: a, config: c.yaml, exp: x, lr: 1}\n", r"unknown key\(s\) \['lr'\]"),
        ("phases:\n  - {name: a, config: c.yaml, exp: x}\n  - {name: a, config: c.yaml, exp: y}\n", "used twice"),
        ("phases:\n  - {name: a, config: c.yaml, exp: x}\n  - {name: b, config: c.yaml, exp: x}\n", "used by an earlier"),
        ("phases:\n  - {name: a, config: c.yaml, exp: x, init_from: b}\n", "not an earlier phase"),
    ],
)
def test_phases_file_errors(tmp_path, yaml_text, match):
    spec = tmp_path / "p.yaml"
    spec.write_text(yaml_text)
    with pytest.raises(ValueError, match=match):
        phases.load_phases(spec, tmp_path)


def test_phases_cli_prints_fields(tmp_path, capsys):
    spec = tmp_path / "p.yaml"
    spec.write_text("phases:\n  - {name: a, config: a.yaml, exp: x}\n  - {name: b, config: b.yaml, exp: y}\n")
    assert phases_cli.main(["--phases_config", str(spec), "--expdir", "exp", "--which", "last"]) == 0
    assert capsys.readouterr().out == "exp/y\n"
    assert phases_cli.main(["--phases_config", str(spec), "--expdir", "exp", "--which", "first", "--field", "config"]) == 0
    assert capsys.readouterr().out == "a.yaml\n"


def test_launch_commands(tmp_path):
    cmd = launch.launch_command("m", ["--a", "1"], launch.LaunchOptions(python="py"))
    assert cmd == ["py", "-m", "m", "--a", "1", "--ngpu", "0"]
    cmd = launch.launch_command("m", [], launch.LaunchOptions(python="py", ngpu=4))
    assert cmd[-4:] == ["--ngpu", "4", "--multiprocessing_distributed", "true"]
    cmd = launch.launch_command("m", ["--a"], launch.LaunchOptions(python="py", num_procs=2))
    assert cmd == ["py", "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "2",
                   "-m", "m", "--a", "--ngpu", "0", "--multiprocessing_distributed", "false", "--dist_backend", "gloo"]
    opts = launch.LaunchOptions(python="py", ngpu=8, num_nodes=2, launcher="torchrun", node_rank=1, master_addr="h0")
    cmd = launch.launch_command("m", [], opts)
    assert cmd[3:11] == ["--nnodes", "2", "--node_rank", "1", "--master_addr", "h0", "--master_port", "29500"]
    assert cmd[cmd.index("--nproc_per_node") + 1] == "8"
    assert cmd[-4:] == ["--ngpu", "1", "--multiprocessing_distributed", "false"]
    opts = launch.LaunchOptions(python="py", ngpu=4, num_nodes=3, launcher="slurm", init_file=tmp_path / "init")
    cmd = launch.launch_command("m", [], opts)
    assert cmd[:6] == ["srun", "--export=ALL", "--nodes", "3", "--ntasks-per-node", "1"]
    assert cmd[-1] == f"file://{tmp_path / 'init'}" and "--dist_launcher" in cmd


@pytest.mark.parametrize(
    "kwargs, match",
    [({"num_nodes": 2}, "needs --launcher"), ({"num_nodes": 2, "launcher": "torchrun"}, "--master_addr"),
     ({"launcher": "mpi"}, "launcher must be"), ({"num_procs": 0}, "num_procs >= 1"),
     ({"launcher": "slurm"}, "init_file")],
)
def test_launch_option_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        launch.LaunchOptions(**kwargs)


def test_batch_type_resolution(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("batch_type: numel\n")
    kind = lambda *args: phases.single_phase(config, tmp_path)[0].run_options(args).batch_type  # noqa: E731
    assert kind("--a", "1") == "numel"
    assert kind("--batch_type", "sorted", "--batch_type", "folded") == "folded"
    assert kind("--batch_type=unsorted") == "unsorted"
    config.write_text("max_epoch: 1\n")
    assert kind() == "folded"


@pytest.mark.parametrize("pruning, warned", [
    ("", False),  # dense multilingual training may mix languages
    ("pruning_conf: {method: lap}\n", False),  # LAP wants mixed batches
    ("pruning_conf: {method: pathways}\n", True),
    ("pruning_conf: {method: dynamic_pathways}\n", True),
])
def test_mixed_language_batches_are_warned_for_methods_that_need_monolingual_ones(
        setup, tmp_path, caplog, pruning, warned):
    ts, config = setup
    config.write_text("batch_type: numel\n" + pruning)
    train.run_phases(ts, phases.single_phase(config, tmp_path / "exp" / "w"), launch.LaunchOptions())
    assert ("batch_type numel ignores utt2category" in caplog.text) == warned


# a training entry point that logs what ESPnet logs (and its thread count), then does what the fake does
LOGGING_TRAIN = f"""\
import os, sys
import fake_asr_train
print("OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", ""), flush=True)
print(open({str(ESPNET_LOG)!r}).read(), file=sys.stderr, flush=True)
sys.exit(fake_asr_train.main())
"""


@pytest.fixture
def logging_setup(setup, tmp_path, monkeypatch):
    """``setup`` whose training module logs the lines of a real ESPnet training (2 epochs of 6 steps)."""
    ts, config = setup
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "logging_train.py").write_text(LOGGING_TRAIN)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path / 'mods'}:{os.environ['PYTHONPATH']}")
    args = ("--max_epoch", "2", "--num_iters_per_epoch", "6")
    return dataclasses.replace(ts, module="logging_train", asr_args=args), config


def test_training_shows_progress_lines_and_keeps_the_full_log(logging_setup, tmp_path, caplog):
    ts, config = logging_setup
    exp = tmp_path / "exp" / "asr_progress"
    with caplog.at_level("INFO"):
        train.run_phases(ts, phases.single_phase(config, exp), launch.LaunchOptions(python=sys.executable))
    lines = [r.getMessage() for r in caplog.records if r.module == "progress"]
    assert len(lines) == 8  # 6 reports and 2 epoch results
    assert lines[0].startswith("phase train: 2/12 steps (16.7%), epoch 1/2, loss 29.571, elapsed ")
    assert lines[-1].startswith("phase train: 12/12 steps (100.0%), epoch 2/2 done, train loss 7.039, valid loss 6.173")
    assert lines[-1].endswith(", ETA 0s")
    assert "1epoch:train:3-4batch: iter_time=0.003" in (exp / "train.log").read_text()


def test_training_processes_and_threads_follow_the_cores(logging_setup, tmp_path, caplog, monkeypatch):
    ts, config = logging_setup
    monkeypatch.setattr(launch, "available_cores", lambda: 4)
    exp = tmp_path / "exp" / "asr_threads"
    with caplog.at_level("INFO"):
        train.run_phases(ts, phases.single_phase(config, exp), launch.LaunchOptions(python=sys.executable))
    assert "OMP_NUM_THREADS=4" in read_lines(exp / "train.log")  # 1 process (given), threads: the 4 cores
    assert "(1 process(es) x 4 thread(s))" in caplog.text
    opts = launch.LaunchOptions(python=sys.executable, num_threads=2)
    train.run_phases(ts, phases.single_phase(config, tmp_path / "exp" / "t2"), opts)
    assert "OMP_NUM_THREADS=2" in read_lines(tmp_path / "exp" / "t2" / "train.log")


@pytest.mark.parametrize("cores, batch, given, split", [
    (1, 16, {}, (1, 1)),
    (2, 16, {}, (2, 1)),  # the demo on 2 cores: 2 processes of 8 utterances
    (6, 16, {}, (4, 1)),  # 6 does not divide 16
    (12, 16, {}, (8, 1)),
    (32, 16, {}, (8, 4)),  # at most 8 processes, the other cores as threads
    (4, 6, {}, (3, 1)),
    (4, None, {}, (4, 1)),  # batch_bins: any split of the cores
    (8, 16, {"num_procs": 1}, (1, 8)),
    (8, 16, {"num_threads": 2}, (4, 2)),
    (8, 16, {"num_procs": 3, "num_threads": 5}, (3, 5)),
])
def test_cpu_split_rule(cores, batch, given, split):
    assert launch.cpu_split(cores, batch, **given) == split


def test_launch_options_resolve():
    opts = launch.LaunchOptions(python="py", num_procs=None).resolve(16, cores=2)
    assert (opts.num_procs, opts.num_threads, opts.env()) == (2, 1, {"OMP_NUM_THREADS": "1"})
    assert launch.launch_command("m", [], opts)[:3] == ["py", "-m", "torch.distributed.run"]
    gpu = launch.LaunchOptions(ngpu=4, num_procs=None).resolve(16, cores=32)  # ESPnet spawns the 4 processes
    assert (gpu.num_procs, gpu.num_threads) == (1, 1)
    with pytest.raises(ValueError, match="resolve"):
        launch.launch_command("m", [], launch.LaunchOptions(num_procs=None))


def test_train_cli_num_procs_and_threads():
    base = ["--train_dir", "t", "--valid_dir", "v", "--token_dir", "k", "--stats_dir", "s"]
    args = train.get_parser().parse_args(base)
    assert args.num_procs is None and args.num_threads is None  # auto
    args = train.get_parser().parse_args(base + ["--num_procs", "auto", "--num_threads", "3"])
    assert args.num_procs is None and args.num_threads == 3
    with pytest.raises(SystemExit):
        train.get_parser().parse_args(base + ["--num_threads", "0"])


def test_run_options_from_config_phase_args_and_extra_args(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("max_epoch: 6\nbatch_size: 16\n")
    phase = phases.Phase(name="p", config=config, exp_dir=tmp_path / "exp", args=("--accum_grad", "2"))
    assert phase.run_options(["--num_iters_per_epoch", "500"]) == phases.RunOptions("folded", 16, 2, 6, 500)
    assert phase.run_options(["--max_epoch", "2"]).num_iters_per_epoch is None  # from the log
    assert phase.run_options(["--batch_type", "numel"]).batch_size is None
