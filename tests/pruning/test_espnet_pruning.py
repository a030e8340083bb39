"""Pruning through ESPnet's own trainer (``python -m espnet_pathways.bin.asr_train``) on a tiny
tone corpus: events, outputs, n-best averaging, --resume, a stock ESPnet model, 2-process DDP."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from asr_tiny_corpus import TINY_CONFIG, UTTERANCES, train_args, write_corpus
from espnet_pathways.bin import asr_train
from espnet_pathways.masks import MaskSet, prunable_parameters
from espnet_pathways.masks.history import MaskHistory
from espnet_pathways.tasks.asr import PathwaysASRTask
from toy import write_masks

ADAPTIVE = {
    "method": "adaptive_imp", "target_sparsity": 0.6, "schedule": "cubic", "initial_sparsity": 0.2,
    "num_events": 2, "prune_interval": 8, "adapt_interval": 3,
}


def _config(tmp: Path, name: str, pruning: dict, **overrides) -> Path:
    conf = yaml.safe_load(TINY_CONFIG)
    conf.update({"num_iters_per_epoch": 12, "keep_nbest_models": 2, "pruning_conf": pruning, **overrides})
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_pruning")
    return root, write_corpus(root / "data")


@pytest.fixture(scope="module")
def dense(corpus):
    """θ0: a dense model trained for one epoch."""
    root, files = corpus
    config = _config(root, "dense", {})
    torch.set_num_threads(1)
    asr_train.main(train_args(files, config, root / "dense", 1))
    return root / "dense" / "1epoch.pth"


@pytest.fixture(scope="module")
def adaptive_run(corpus, dense):
    root, files = corpus
    config = _config(root, "adaptive", ADAPTIVE)
    out = root / "adaptive"
    asr_train.main(train_args(files, config, out, 2, "--init_param", str(dense)))
    return out


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def test_run_writes_sparse_models_masks_and_reports(adaptive_run):
    masks = MaskSet.load(adaptive_run / "masks.pwm")
    assert masks.languages == ("*",)
    assert masks.sparsity("*") == pytest.approx(0.6, abs=2e-3)
    for name in ("sparsity.md", "stats.json", "layer_sparsity.png", "sparsity_schedule.png", "pathway_iou.png"):
        assert (adaptive_run / "pruning" / name).is_file(), name
    history = MaskHistory(adaptive_run / "pruning" / "mask_history.pwh")  # written by ESPnet's trainer run
    assert history.records[-1].kind == "freeze" and history.maskset(-1) == masks
    last = _state(adaptive_run / "2epoch.pth")
    assert int(last["pathway_pruning.step"]) == 24
    assert bool(last["pathway_pruning.frozen"]), "masks must be fixed at the end (hard_from = 24)"
    averaged = _state(adaptive_run / "valid.loss.ave.pth")
    for name in masks.names:
        assert bool((averaged[name][~masks["*"][name]] == 0).all()), f"averaged {name} violates the final mask"


def test_decoding_config_rebuilds_the_masked_model(adaptive_run):
    model, _ = PathwaysASRTask.build_model_from_file(
        adaptive_run / "config.yaml", adaptive_run / "valid.loss.ave.pth", "cpu"
    )
    assert model.pathway_masks.maskset() == MaskSet.load(adaptive_run / "masks.pwm")


def test_resume_after_a_stop_gives_the_same_masks_and_model(corpus, dense, adaptive_run, tmp_path):
    root, files = corpus
    config = _config(root, "adaptive", ADAPTIVE)
    out = tmp_path / "stopped"
    killed = ("--pruning_conf", "allow_short_schedule=true")  # 12 of the schedule's 24 steps: "killed" after epoch 1
    asr_train.main(train_args(files, config, out, 1, "--init_param", str(dense), *killed))
    asr_train.main(train_args(files, config, out, 2, "--init_param", str(dense), "--resume", "true"))
    resumed, uninterrupted = _state(out / "2epoch.pth"), _state(adaptive_run / "2epoch.pth")
    assert resumed.keys() == uninterrupted.keys()
    for key in resumed:
        assert torch.equal(resumed[key], uninterrupted[key]), key
    assert MaskSet.load(out / "masks.pwm") == MaskSet.load(adaptive_run / "masks.pwm")
    history = "pruning/mask_history.pwh"  # the resumed step dropped what the checkpoint had not seen
    assert (out / history).read_bytes() == (adaptive_run / history).read_bytes()


def test_stock_espnet_conformer_monolingual_imp(corpus, tmp_path):
    root, files = corpus
    conformer = {
        "model": "espnet", "model_conf": {"ctc_weight": 0.5},
        "encoder": "conformer", "encoder_conf": {"output_size": 32, "attention_heads": 2, "linear_units": 64,
                                                "num_blocks": 2, "input_layer": "conv2d", "cnn_module_kernel": 5},
        "decoder": "transformer", "decoder_conf": {"attention_heads": 2, "linear_units": 64, "num_blocks": 1},
    }
    imp = {"method": "imp", "languages": ["xx"], "target_sparsity": 0.5, "schedule": "geometric", "rate": 0.3,
           "prune_interval": 4}
    conf = yaml.safe_load(TINY_CONFIG)
    for key in ("predictor", "predictor_conf", "joiner_conf"):
        conf.pop(key)
    conf.update(conformer, num_iters_per_epoch=12, keep_nbest_models=1, pruning_conf=imp)
    config = tmp_path / "conformer.yaml"
    config.write_text(yaml.safe_dump(conf))
    args = [a for a in train_args(files, config, tmp_path / "exp", 1)]
    keep = [i for i, a in enumerate(args) if "utt2lang_id" in a]
    for i in sorted(keep + [k - 1 for k in keep], reverse=True):
        args.pop(i)  # monolingual data: no language entry, the "xx" pathway is active throughout
    asr_train.main(args)
    masks = MaskSet.load(tmp_path / "exp" / "masks.pwm")
    assert masks.languages == ("xx",) and masks.sparsity("xx") == pytest.approx(0.5, abs=2e-3)
    assert any(n.startswith("encoder.encoders.0.feed_forward") for n in masks.names)

    # the mask file plugs into a freshly built model of the same config
    fresh, _ = PathwaysASRTask.build_model_from_file(tmp_path / "exp" / "config.yaml", None, "cpu")
    fresh.pathway_masks.set_masks(masks)
    for name, param in prunable_parameters(fresh).items():
        assert bool((param[~masks["xx"][name]] == 0).all())


def _ddp_train(args: list) -> str:
    """Run ``asr_train`` in 2 processes (gloo); return its log, failing with its tail."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           "-m", "espnet_pathways.bin.asr_train", *args, "--multiprocessing_distributed", "false",
           "--dist_backend", "gloo"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    return log


EVENT = re.compile(r"pruning event (\d+)/3 at step (\d+) .* masks ([0-9a-f]{8}) \(identical on 2 ranks\)")


def test_two_process_ddp_keeps_masks_identical(corpus, dense, tmp_path):
    root, files = corpus
    pruning = {"method": "imp", "target_sparsity": 0.5, "schedule": "cubic", "num_events": 2, "prune_interval": 4}
    config = _config(root, "ddp", pruning, batch_size=6)
    out = tmp_path / "ddp"
    log = _ddp_train(train_args(files, config, out, 1, "--init_param", str(dense)))
    events = [(int(e), int(s)) for e, s, _ in EVENT.findall(log)]
    assert events == [(1, 0), (2, 4), (3, 8)], log[-3000:]
    masks = MaskSet.load(out / "masks.pwm")
    assert masks.sparsity("*") == pytest.approx(0.5, abs=2e-3)
    assert masks.digest() == EVENT.findall(log)[-1][2]

    # the same run in one process: the 2-process run splits each batch, so it matches up to float noise
    single = tmp_path / "single"
    asr_train.main(train_args(files, config, single, 1, "--init_param", str(dense)))
    expected = MaskSet.load(single / "masks.pwm")
    both = MaskSet({"ddp": masks["*"], "single": expected["*"]})
    assert both.overlap()[1][0, 1] > 0.98


def _replicated_corpus(files: dict, root: Path, times: int) -> dict:
    """The tiny corpus with every utterance ``times`` times (ids ``r<k>_<utt>``) and an
    ``utt2category`` next to its wav.scp: enough batches per language for language runs."""
    root.mkdir()
    out = dict(files)
    for name in ("wav.scp", "text", "utt2lang_id", "speech_shape", "text_shape"):
        lines = files[name].read_text().splitlines()
        (root / name).write_text("".join(f"r{k}_{line}\n" for k in range(times) for line in lines))
        out[name] = root / name
    langs = {utt: lang for utt, (lang, _) in UTTERANCES.items()}
    (root / "utt2category").write_text("".join(f"r{k}_{u} {langs[u]}\n" for k in range(times) for u in sorted(langs)))
    return out


@pytest.mark.parametrize("method", ["pathways", "dynamic_pathways"])
def test_two_process_ddp_pathways_with_adam_and_accumulation(corpus, dense, tmp_path, method):
    """ESPnet's trainer, 2 gloo processes, Adam, accum_grad 2: every optimizer step is monolingual
    (the language runs), the masks stay identical on both ranks, weights outside a language's pathway
    (and the free zone) never move on its steps: outside every mask they stay 0."""
    root, files = corpus
    data = _replicated_corpus(files, tmp_path / "data", times=4)  # 12 utterances per language
    model, _ = PathwaysASRTask.build_model_from_file(root / "dense" / "config.yaml", dense, "cpu")
    paths, init = write_masks(tmp_path, {"xx": 0.5, "yy": 0.5}, model=model)
    pruning = {"method": method, "init_masks": paths}
    if method == "dynamic_pathways":
        pruning.update(schedule="cubic", initial_sparsity=0.5, target_sparsity=0.6, num_events=1, prune_interval=3,
                       adapt_interval=1)
    config = _config(root, f"ddp_{method}", pruning, batch_type="folded", fold_length=[800000], batch_size=2,
                     accum_grad=2, num_iters_per_epoch=8)
    out = tmp_path / "exp"
    log = _ddp_train(train_args(data, config, out, 2, "--init_param", str(dense)))
    assert "accumulated batches of languages" not in log, "a step mixed languages"
    if method == "dynamic_pathways":
        assert "(identical on 2 ranks)" in log
        assert "adaptation at step" in log
    last = _state(out / "2epoch.pth")
    steps = last["pathway_pruning.pathway_steps"]
    assert int(steps.sum()) == int(last["pathway_pruning.step"]) == 8, "each step trained one language"
    assert bool((steps > 0).all()), "both languages were trained"
    masks = MaskSet.load(out / "masks.pwm")
    if method == "pathways":
        assert masks == init
    union = {n: masks["xx"][n] | masks["yy"][n] for n in masks.names}
    for name in masks.names:
        assert bool((last[name][~union[name]] == 0).all()), name
