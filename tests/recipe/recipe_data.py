"""Helpers of the recipe tests: tiny Kaldi data dirs with real FLAC files, fake entry points."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence, Tuple

import numpy as np
import soundfile
import torch
import yaml
from torch import nn

from espnet_pathways.masks import MaskSet, attach, magnitude_masks, prunable_parameters
from espnet_pathways.recipe.stages.filter_data import filter_data_dir
from espnet_pathways.recipe.stages.format_data import format_data_dir
from espnet_pathways.text import SpmOptions, build_token_list_dir

FS = 16000
FAKES = Path(__file__).parent / "fakes"

# utt id -> (speaker, language, seconds, text)
UTTS: Dict[str, Tuple[str, str, float, str]] = {
    "en_1_10_000001": ("en_1", "en", 0.50, "the cat sat"),
    "en_1_10_000002": ("en_1", "en", 0.80, "on the mat"),
    "en_2_11_000001": ("en_2", "en", 0.05, "too short"),
    "fr_3_12_000001": ("fr_3", "fr", 0.60, "le chat"),
    "fr_3_12_000002": ("fr_3", "fr", 1.20, "est sur le tapis"),
    "fr_4_13_000001": ("fr_4", "fr", 0.70, ""),
}


def write_data_dir(
    path: Path, audio_dir: Path, utts: Dict[str, Tuple[str, str, float, str]] = UTTS, fs: int = FS
) -> Path:
    """Write a data dir (wav.scp, text, utt2spk, utt2lang, utt2category) and its FLAC files."""
    path.mkdir(parents=True, exist_ok=True)
    audio_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = {name: [] for name in ("wav.scp", "text", "utt2spk", "utt2lang", "utt2category")}
    for utt in sorted(utts):
        spk, lang, seconds, text = utts[utt]
        wav = audio_dir / f"{utt}.flac"
        soundfile.write(wav, (0.1 * rng.standard_normal(int(seconds * fs))).astype("float32"), fs)
        files["wav.scp"].append(f"{utt} {wav}")
        files["text"].append(f"{utt} {text}".rstrip())
        files["utt2spk"].append(f"{utt} {spk}")
        files["utt2lang"].append(f"{utt} {lang}")
        files["utt2category"].append(f"{utt} {lang}")
    for name, lines in files.items():
        (path / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def write_test_sets(data_root: Path, audio_dir: Path, langs: Sequence[str]) -> None:
    """``<data_root>/mls_<lang>_test`` of :data:`UTTS` (utterances with text) for each language."""
    for lang in langs:
        write_data_dir(data_root / f"mls_{lang}_test", audio_dir, {u: v for u, v in UTTS.items() if v[1] == lang and v[3]})


def write_lang_list(path: Path, langs: Sequence[str] = ("en", "fr")) -> Path:
    path.write_text("".join(f"{lang}\n" for lang in langs), encoding="utf-8")
    return path


def write_dump_and_char_tokens(root: Path, langs: Sequence[str] = ("en", "fr")) -> Tuple[Dict[str, Path], Path]:
    """Stages 1-5 on :data:`UTTS` under ``root``: ``raw/{train,dev}`` (formatted, filtered) and a
    per-language character token list; returns ({"train": dir, "dev": dir}, token list dir)."""
    lang_list = write_lang_list(root / "lang_list.txt", langs)
    dirs = {}
    for name in ("train", "dev"):
        src = write_data_dir(root / "data" / name, root / "audio" / name)
        format_data_dir(src, root / "org" / name, lang_list)
        filter_data_dir(root / "org" / name, root / "raw" / name, FS, 0.1, 2.0)
        dirs[name] = root / "raw" / name
    texts = {lang: [v[3] for v in UTTS.values() if v[1] == lang and v[3]] for lang in langs}
    token_dir = root / "token_list" / "char"
    build_token_list_dir(texts, list(langs), {l: SpmOptions(model_type="char") for l in langs}, token_dir)
    return dirs, token_dir


def read_lines(path: Path) -> list:
    return path.read_text(encoding="utf-8").splitlines()




def write_masked_checkpoint(path: Path, masks: dict) -> MaskSet:
    """A real state dict with masks ``{lang: sparsity}`` attached the way the engine attaches them
    (re-masked weights), and a ``config.yaml`` beside it; returns the masks (None: dense)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 4))
    params = prunable_parameters(model)
    maskset = MaskSet({lang: magnitude_masks(params, s) for lang, s in masks.items()}) if masks else None
    if maskset is not None:
        handle = attach(model, maskset)
        handle.activate(maskset.languages[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    (path.parent / "config.yaml").write_text(yaml.safe_dump(
        {"encoder": "emformer", "encoder_conf": {"segment_length": 4, "time_reduction_stride": 4},
         **({"pruning_conf": {"method": "pathways" if len(masks) > 1 else "adaptive_imp"}} if masks else {})}))
    return maskset
