"""A tiny Kaldi-style corpus of tone "words" for end-to-end tests of training and decoding.

Each character is a pure tone of its own frequency (0.12 s, with a short gap), so a small model
can learn the mapping exactly in a few hundred updates on a CPU. Two "languages" share the
characters; the language id only travels through ``utt2lang_id``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np
import soundfile

FS = 16000
TONES: Dict[str, float] = {"a": 350.0, "b": 650.0, "c": 1100.0, "d": 1750.0, "e": 2700.0}
LANGS = ["xx", "yy"]
UTTERANCES = {
    "spk1_utt1": ("xx", "ab"),
    "spk1_utt2": ("xx", "cad"),
    "spk2_utt3": ("yy", "eb"),
    "spk2_utt4": ("yy", "dcea"),
    "spk3_utt5": ("xx", "bed"),
    "spk3_utt6": ("yy", "ace"),
}
TOKENS = ["<blank>", "<unk>", *sorted(TONES), "<sos/eos>"]


def tone_word(word: str, seed: int, tone_s: float = 0.12, gap_s: float = 0.04) -> np.ndarray:
    """Waveform (samples,) of ``word``: one tone per character, light noise, 0.1 s silence around."""
    rng = np.random.default_rng(seed)
    pieces = [np.zeros(int(0.1 * FS))]
    t = np.arange(int(tone_s * FS)) / FS
    for ch in word:
        pieces.append(0.5 * np.sin(2 * np.pi * TONES[ch] * t))
        pieces.append(np.zeros(int(gap_s * FS)))
    pieces.append(np.zeros(int(0.1 * FS)))
    wav = np.concatenate(pieces)
    return (wav + 0.01 * rng.standard_normal(wav.shape)).astype(np.float32)


def write_corpus(root: Path) -> Dict[str, Path]:
    """Write wavs and Kaldi files under ``root``; return the paths of the lists."""
    root.mkdir(parents=True, exist_ok=True)
    wav_scp: List[str] = []
    text: List[str] = []
    lang_ids: List[str] = []
    for i, (utt, (lang, word)) in enumerate(sorted(UTTERANCES.items())):
        path = root / f"{utt}.wav"
        soundfile.write(path, tone_word(word, seed=i), FS)
        wav_scp.append(f"{utt} {path}")
        text.append(f"{utt} {word}")
        lang_ids.append(f"{utt} {LANGS.index(lang)}")
    files = {
        "wav.scp": root / "wav.scp",
        "text": root / "text",
        "utt2lang_id": root / "utt2lang_id",
        "tokens": root / "tokens.txt",
        "lang_list": root / "lang_list.txt",
    }
    files["wav.scp"].write_text("\n".join(wav_scp) + "\n")
    files["text"].write_text("\n".join(text) + "\n")
    files["utt2lang_id"].write_text("\n".join(lang_ids) + "\n")
    files["tokens"].write_text("\n".join(TOKENS) + "\n")
    files["lang_list"].write_text("\n".join(LANGS) + "\n")
    # speech_shape / text_shape for ESPnet's batch sampler
    shapes = [f"{utt} {len(tone_word(UTTERANCES[utt][1], 0))}" for utt in sorted(UTTERANCES)]
    (root / "speech_shape").write_text("\n".join(shapes) + "\n")
    tshapes = [f"{utt} {len(UTTERANCES[utt][1])},{len(TOKENS)}" for utt in sorted(UTTERANCES)]
    (root / "text_shape").write_text("\n".join(tshapes) + "\n")
    files["speech_shape"] = root / "speech_shape"
    files["text_shape"] = root / "text_shape"
    return files


TINY_CONFIG = """\
model: pathways_transducer
model_conf:
    ctc_weight: 0.3
frontend: default
frontend_conf:
    n_fft: 512
    win_length: 400
    hop_length: 160
    n_mels: 40
normalize: null
encoder: emformer
encoder_conf:
    output_size: 64
    num_layers: 2
    num_heads: 4
    ffn_dim: 128
    dropout: 0.0
    time_reduction_stride: 4
    segment_length: 4
    right_context_length: 1
    left_context_length: 8
predictor: lstm
predictor_conf:
    embed_dim: 32
    hidden_size: 64
    dropout: 0.0
joiner_conf:
    joint_size: 64
optim: adam
optim_conf:
    lr: 0.003
batch_type: unsorted
batch_size: 6
num_iters_per_epoch: 50
num_workers: 0
seed: 3
token_type: char
use_tensorboard: false
best_model_criterion:
-   - valid
    - loss
    - min
keep_nbest_models: 1
"""


def train_args(data: Dict[str, Path], config: Path, out_dir: Path, max_epoch: int, *extra: str) -> List[str]:
    """Command line of ``espnet_pathways.bin.asr_train`` on the tiny corpus (train = valid set)."""
    args = [
        "--config", str(config), "--ngpu", "0", "--max_epoch", str(max_epoch),
        "--token_list", str(data["tokens"]), "--lang_list", str(data["lang_list"]), "--output_dir", str(out_dir),
        "--train_shape_file", str(data["speech_shape"]), "--valid_shape_file", str(data["speech_shape"]),
    ]
    for split in ("train", "valid"):
        args += [
            f"--{split}_data_path_and_name_and_type", f"{data['wav.scp']},speech,sound",
            f"--{split}_data_path_and_name_and_type", f"{data['text']},text,text",
            f"--{split}_data_path_and_name_and_type", f"{data['utt2lang_id']},lang,text_int",
        ]
    return args + list(extra)
