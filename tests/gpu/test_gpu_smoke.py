"""Every pruning method through ESPnet's trainer on one GPU (``--ngpu 1``), then decoding on it.

Skipped without CUDA (as torchaudio's CUDA tests are); ``bench/gpu_smoke.sh`` runs this file and
the CUDA cases of the isolation property tests on a machine with a GPU. A dense θ0 is trained for
one epoch; each method then trains 2 epochs from it with Adam and ``accum_grad 2`` on monolingual
language runs, and its averaged model is decoded on the GPU. After training, weights outside the
union of the pathways are exactly 0, the masks have the configured sparsity and every pathway
steps only its own language. ``GPU_SMOKE_DEVICE=cpu`` runs the same checks on the CPU (to check the
test itself where there is no GPU).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import soundfile
import torch
import yaml

from asr_tiny_corpus import LANGS, TINY_CONFIG, UTTERANCES, train_args, write_corpus
from espnet_pathways.asr.inference import Speech2Text
from espnet_pathways.bin import asr_train
from espnet_pathways.masks import MaskSet, magnitude_masks, prunable_parameters
from espnet_pathways.tasks.asr import PathwaysASRTask

DEVICE = os.environ.get("GPU_SMOKE_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="no GPU")

SCHEDULE = {"target_sparsity": 0.5, "schedule": "cubic", "initial_sparsity": 0.2, "num_events": 1,
            "prune_interval": 2}
METHODS = {
    "imp": {"languages": ["xx"]},
    "lth": {"languages": ["xx"]},
    "lap": {},
    "adaptive_imp": {"languages": ["xx"], "adapt_interval": 1},
    "adaptive_lth": {"languages": ["xx"], "adapt_interval": 1},
    "pathways": None,  # fixed masks from files: no schedule
    "dynamic_pathways": {"initial_sparsity": 0.5, "target_sparsity": 0.6, "adapt_interval": 1},
}


def _write_config(root: Path, name: str, pruning: dict) -> Path:
    conf = yaml.safe_load(TINY_CONFIG)
    conf.update({"num_iters_per_epoch": 8, "keep_nbest_models": 2, "batch_type": "folded", "fold_length": [800000],
                 "batch_size": 1, "accum_grad": 2, "pruning_conf": pruning})
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(conf))
    return path


def _one_language(files: dict, root: Path, lang: str) -> dict:
    """The corpus lists restricted to ``lang``'s utterances (a monolingual method's training data)."""
    root.mkdir(exist_ok=True)
    out = dict(files)
    for name in ("wav.scp", "text", "utt2lang_id", "speech_shape", "text_shape"):
        lines = [line for line in files[name].read_text().splitlines() if UTTERANCES[line.split()[0]][0] == lang]
        out[name] = root / name
        out[name].write_text("\n".join(lines) + "\n")
    return out


def _gpu_train(files: dict, config: Path, out: Path, epochs: int, *extra: str) -> None:
    asr_train.main(train_args(files, config, out, epochs, *extra) + ["--ngpu", "1" if DEVICE == "cuda" else "0"])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(root, corpus files, dense θ0 checkpoint, per-language mask files of θ0 at 50%)."""
    root = tmp_path_factory.mktemp("gpu_smoke")
    files = write_corpus(root / "data")
    (root / "data" / "utt2category").write_text("".join(f"{u} {l}\n" for u, (l, _) in sorted(UTTERANCES.items())))
    _gpu_train(files, _write_config(root, "dense", {}), root / "dense", 1)
    dense = root / "dense" / "1epoch.pth"
    model, _ = PathwaysASRTask.build_model_from_file(root / "dense" / "config.yaml", dense, "cpu")
    params = prunable_parameters(model)
    paths = []
    for i, lang in enumerate(LANGS):  # two different 50% masks: magnitude of θ0 and of a perturbed θ0
        gen = torch.Generator().manual_seed(i)
        perturbed = {n: p.detach() + 0.05 * i * torch.randn(p.shape, generator=gen) for n, p in params.items()}
        path = root / f"masks_{lang}.pwm"
        MaskSet({lang: magnitude_masks(perturbed, 0.5)}, method="lth").save(path)
        paths.append(str(path))
    return root, files, dense, paths


@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_trains_and_decodes_on_one_gpu(setup, method):
    root, files, dense, mask_paths = setup
    extra = METHODS[method]
    pruning = {"method": method, "init_masks": mask_paths} if extra is None else {"method": method, **SCHEDULE, **extra}
    if method == "dynamic_pathways":
        pruning["init_masks"] = mask_paths
    if pruning.get("languages"):
        files = _one_language(files, root / f"data_{method}", pruning["languages"][0])
    out = root / method
    _gpu_train(files, _write_config(root, method, pruning), out, 2, "--init_param", str(dense))

    masks = MaskSet.load(out / "masks.pwm")
    target = {"pathways": 0.5, "dynamic_pathways": 0.6}.get(method, 0.5)
    for lang in masks.languages:
        assert masks.sparsity(lang) == pytest.approx(target, abs=0.01), lang
    state = torch.load(out / "2epoch.pth", map_location="cpu", weights_only=False)
    union = masks.union()
    for name in masks.names:
        assert bool((state[name][~union[name]] == 0).all()), f"{name}: a weight outside every pathway moved"
    if "pathway_pruning.pathway_steps" in state and len(masks.languages) > 1:
        assert int(state["pathway_pruning.pathway_steps"].sum()) == int(state["pathway_pruning.step"])

    s2t = Speech2Text(out / "config.yaml", out / "valid.loss.ave.pth", device=DEVICE, beam_size=1, streaming=True)
    wav, _ = soundfile.read(str(root / "data" / "spk1_utt1.wav"), dtype="float32")
    lang = masks.languages[0] if masks.languages[0] in LANGS else "xx"
    best = s2t(torch.from_numpy(wav), lang=lang)[0]
    assert set(best.text) <= set("abcde") and len(best.token_int) == len(best.tokens)
