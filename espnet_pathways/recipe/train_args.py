"""Options shared by collect-stats (stage 10) and training (stage 11): data, tokens, features.

The training reads three entries per utterance: ``speech`` (``wav.scp``, ``sound``), ``text``
(``text``) and ``lang`` (``utt2lang_id`` as ``text_int``). Tokenisation uses the per-language
SentencePiece models of the token-list directory (``--bpemodel`` is that directory, so
``--token_type bpe`` whatever the models' unit).
"""

from __future__ import annotations

from pathlib import Path
from typing import List

from espnet_pathways.text.tokenizer import TOKEN_LIST_NAME

__all__ = ["DATA_ENTRIES", "data_files", "data_args", "token_args", "stats_files"]

# (file in the data dir, name, type) as given to --*_data_path_and_name_and_type.
DATA_ENTRIES = (("wav.scp", "speech", "sound"), ("text", "text", "text"), ("utt2lang_id", "lang", "text_int"))


def data_files(train_dir: Path, valid_dir: Path) -> List[Path]:
    """The files of :data:`DATA_ENTRIES` in both dirs (inputs of the stages' stamps)."""
    return [d / name for d in (train_dir, valid_dir) for name, _, _ in DATA_ENTRIES]


def data_args(train_dir: Path, valid_dir: Path) -> List[str]:
    """``--{train,valid}_data_path_and_name_and_type`` for every entry of :data:`DATA_ENTRIES`."""
    for path in data_files(train_dir, valid_dir):
        if not path.is_file():
            raise FileNotFoundError(f"missing file: {path} (run stages 3-4 first)")
    args: List[str] = []
    for mode, d in (("train", train_dir), ("valid", valid_dir)):
        for name, key, kind in DATA_ENTRIES:
            args += [f"--{mode}_data_path_and_name_and_type", f"{d / name},{key},{kind}"]
    return args


def token_args(token_dir: Path, lang_list: Path) -> List[str]:
    """Tokenisation and language options."""
    tokens = token_dir / TOKEN_LIST_NAME
    if not tokens.is_file():
        raise FileNotFoundError(f"missing token list: {tokens} (run stage 5 first)")
    if not lang_list.is_file():
        raise FileNotFoundError(f"missing language list: {lang_list}")
    return [
        "--use_preprocessor", "true",
        "--token_type", "bpe",
        "--bpemodel", str(token_dir),
        "--token_list", str(tokens),
        "--lang_list", str(lang_list),
    ]


def stats_files(stats_dir: Path, feats_normalize: str = "global_mvn") -> List[str]:
    """Shape files from stage 10 and the feature normalisation.

    Args:
        feats_normalize: ``global_mvn`` (uses stage 10's ``feats_stats.npz``), another ESPnet
            normalize choice (e.g. ``utterance_mvn``), or ``none`` (leave it to the config).
    """
    out: List[str] = []
    for mode in ("train", "valid"):
        for name in ("speech_shape", "text_shape.bpe"):
            path = stats_dir / mode / name
            if not path.is_file():
                raise FileNotFoundError(f"missing {path} (run stage 10 first)")
            out += [f"--{mode}_shape_file", str(path)]
    if feats_normalize == "none":
        return out
    if feats_normalize != "global_mvn":
        return out + ["--normalize", feats_normalize]
    feats = stats_dir / "train" / "feats_stats.npz"
    if not feats.is_file():
        raise FileNotFoundError(f"missing {feats} (run stage 10 first)")
    return out + ["--normalize", "global_mvn", "--normalize_conf", f"stats_file={feats}"]
