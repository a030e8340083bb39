"""Add a language to a trained pathways model: grown config, checkpoint and masks.

Usage::

    python -m espnet_pathways.tasks.extend --asr_train_config exp/asr_dpw/config.yaml \\
        --asr_model_file exp/asr_dpw/valid.loss.ave.pth --token_list data/token_list/char_es/tokens.txt \\
        --lang es --init_mask exp/asr_lap/masks.pwm --out_dir exp/asr_dpw_grown_es

writes ``<out_dir>/{config.yaml, model.pth, masks.pwm, extend.json}``, then train with
``--config <out_dir>/config.yaml --init_param <out_dir>/model.pth`` and ``pruning_conf``
``{method: dynamic_pathways, init_masks: [<out_dir>/masks.pwm], new_languages: [es], freeze_existing: ...}``.

What grows (token ids: :func:`espnet_pathways.text.token_list.extend_pieces`; rows:
:mod:`espnet_pathways.asr.transducer.grow`):

- every per-token tensor (joiner output layer, predictor embedding, CTC head) gets the new tokens'
  rows, freshly initialised; existing rows keep their exact values (``<sos/eos>``'s row moves with
  its id to the end);
- the masks: each existing language's mask is False on the new rows (it never emits the new
  tokens: ``model_conf.lang_vocab_size`` keeps each existing language's output to the vocabulary it
  was trained with, so its decoding cannot be changed by the new rows, their biases included); the
  new language's mask is ``--init_mask`` (its own mask, or the shared ``"*"`` mask of LAP, on the old
  or the grown tensors; True on the new rows), or all True without one;
- ``lang_list`` gets the new language last; ``token_list`` is the merged list; a per-language
  ``bpemodel`` directory becomes the merged list's directory; ``pruning_conf`` is dropped (the
  extension run brings its own).

The checkpoint holds no mask or engine buffers (the run loads its masks from ``init_masks`` and
starts its own schedule), so any pruning run can start from it with ``--init_param``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import yaml

from espnet_pathways.asr.transducer.grow import grow_rows, grow_vocab_state, row_map
from espnet_pathways.asr.transducer.model import VOCAB_TENSORS
from espnet_pathways.data.languages import get_language
from espnet_pathways.masks import SHARED, MaskMismatchError, MaskSet
from espnet_pathways.masks.layout import ATTR
from espnet_pathways.pruning.engine import ENGINE_ATTR
from espnet_pathways.tasks.asr import TRANSDUCER_MODEL
from espnet_pathways.text.token_list import read_token_list
from espnet_pathways.utils.cli import run_cli
from espnet_pathways.utils.fileio import atomic_dir

__all__ = ["extend_model", "grow_masks", "new_language_mask", "main"]

PathLike = Union[str, Path]


def _load_state(path: Path) -> Dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"--asr_model_file: checkpoint not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # an ESPnet checkpoint.pth
    return state


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"--asr_train_config: config not found: {path}")
    with path.open(encoding="utf-8") as f:
        config = yaml.safe_load(f)
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a YAML mapping")
    if config.get("model") != TRANSDUCER_MODEL:
        raise ValueError(f"{path}: model: {config.get('model')!r}; only {TRANSDUCER_MODEL!r} models can grow a language")
    for key in ("token_list", "lang_list"):
        if not isinstance(config.get(key), list):
            raise ValueError(f"{path}: {key}: expected the list a training run stores, got {config.get(key)!r}")
    return config


def grow_masks(masks: MaskSet, rows: Sequence[int], size: int, fill: bool) -> MaskSet:
    """``masks`` with the per-token tensors grown to ``size`` rows (old row i at ``rows[i]``), new rows ``fill``."""
    grown = {}
    for lang in masks.languages:
        grown[lang] = {}
        for name, mask in masks[lang].items():
            if name in VOCAB_TENSORS:
                new = torch.full((size - mask.size(0), *mask.shape[1:]), fill, dtype=torch.bool)
                mask = grow_rows(mask, rows, size, new)
            grown[lang][name] = mask
    return MaskSet(grown, method=masks.method)


def new_language_mask(
    path: Optional[PathLike], lang: str, old: MaskSet, grown: MaskSet, rows: Sequence[int], size: int
) -> Dict[str, torch.Tensor]:
    """The new language's initial mask over the grown tensors: from ``path`` (its own mask or the
    shared ``"*"`` one, on the old or the grown tensors; True on the new rows), or all True.

    Raises:
        MaskMismatchError: the file fits neither layout (naming it and the first tensor).
        ValueError: the file holds neither ``lang`` nor ``"*"``.
    """
    if path is None:
        logging.warning("no --init_mask: %s starts with an all-True mask (give its LTH or LAP mask as init_masks)", lang)
        return {n: torch.ones(s, dtype=torch.bool) for n, s in grown.shapes.items()}
    loaded = MaskSet.load(path)
    key = lang if lang in loaded.languages else SHARED if SHARED in loaded.languages else None
    if key is None:
        raise ValueError(f"--init_mask {path}: holds languages {list(loaded.languages)}, neither {lang!r} nor {SHARED!r}")
    if loaded.shapes == grown.shapes:
        return loaded[key]
    if loaded.shapes != old.shapes:
        problem = old.first_mismatch(loaded[key]) or grown.first_mismatch(loaded[key]) or "other tensors"
        raise MaskMismatchError(f"--init_mask {path} fits neither the trained model nor the grown one: {problem}")
    return grow_masks(loaded.select([key]), rows, size, True)[key]


def extend_model(
    config_path: PathLike,
    model_path: PathLike,
    token_list_path: PathLike,
    lang: str,
    out_dir: PathLike,
    init_mask: Optional[PathLike] = None,
    seed: int = 0,
) -> Dict[str, Path]:
    """Write the grown ``config.yaml``, ``model.pth``, ``masks.pwm`` and ``extend.json`` into ``out_dir``
    (replaced as a whole; module docstring). Returns their paths.

    Raises:
        ValueError: ``lang`` already in the model's ``lang_list`` or not an MLS language; the token
            list drops or moves a token of the model; the checkpoint has no pathway masks.
        MaskMismatchError: the checkpoint's masks or ``init_mask`` do not fit.
    """
    config_path, model_path, token_list_path, out_dir = map(Path, (config_path, model_path, token_list_path, out_dir))
    config = _read_config(config_path)
    get_language(lang)
    old_langs: List[str] = list(config["lang_list"])
    if lang in old_langs:
        raise ValueError(f"{config_path}: lang_list: language {lang!r} is already in the model {old_langs}")
    old_tokens, new_tokens = list(config["token_list"]), read_token_list(token_list_path)
    rows = row_map(old_tokens, new_tokens, str(token_list_path))
    state = _load_state(model_path)
    masks = MaskSet.from_state_dict(state)
    if masks is None:
        raise ValueError(f"{model_path}: no pathway masks ({ATTR}.masks.*): not a pathways model")
    problem = masks.first_mismatch(state)
    if problem:
        raise MaskMismatchError(f"{model_path}: its masks do not fit its weights: {problem}")
    params = {k: v for k, v in state.items() if not k.startswith((f"{ATTR}.", f"{ENGINE_ATTR}."))}
    grown_state = grow_vocab_state(params, old_tokens, new_tokens, seed=seed, source=str(token_list_path))
    grown = grow_masks(masks, rows, len(new_tokens), False)
    grown = grown.replace(lang, new_language_mask(init_mask, lang, masks, grown, rows, len(new_tokens)))
    problem = grown.first_mismatch(grown_state)
    if problem:
        raise MaskMismatchError(f"the grown masks do not fit the grown model: {problem}")

    new_config = {k: v for k, v in config.items() if k != "pruning_conf"}
    new_config["token_list"] = new_tokens
    new_config["lang_list"] = old_langs + [lang]
    model_conf = dict(config.get("model_conf") or {})
    sizes = dict(model_conf.get("lang_vocab_size") or {})
    for old in old_langs:
        sizes.setdefault(old, len(old_tokens) - 1)
    model_conf["lang_vocab_size"] = sizes
    new_config["model_conf"] = model_conf
    bpemodel = config.get("bpemodel")
    if bpemodel and Path(bpemodel).is_dir():
        token_dir = token_list_path.parent
        if not (token_dir / f"{lang}.model").is_file():
            raise FileNotFoundError(f"{token_list_path}: no {lang}.model next to it (the new language's tokenizer)")
        new_config["bpemodel"] = str(token_dir)
    record = {
        "from_config": str(config_path), "from_model": str(model_path), "token_list": str(token_list_path),
        "lang": lang, "init_mask": None if init_mask is None else str(init_mask), "seed": seed,
        "old_vocab_size": len(old_tokens), "vocab_size": len(new_tokens),
        "new_tokens": new_tokens[len(old_tokens) - 1 : -1],
        "sparsity": {l: round(grown.sparsity(l), 6) for l in grown.languages},
    }
    with atomic_dir(out_dir) as tmp:
        (tmp / "config.yaml").write_text(yaml.safe_dump(new_config, sort_keys=False, allow_unicode=True), encoding="utf-8")
        torch.save(grown_state, tmp / "model.pth")
        grown.save(tmp / "masks.pwm", extra={"extended_with": lang})
        (tmp / "extend.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    logging.info("%s: %s added, %d new tokens, sparsity %s", out_dir, lang, len(record["new_tokens"]), record["sparsity"])
    return {name: out_dir / name for name in ("config.yaml", "model.pth", "masks.pwm", "extend.json")}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--asr_train_config", type=Path, required=True, help="the trained run's config.yaml")
    parser.add_argument("--asr_model_file", type=Path, required=True, help="its model (.pth), with pathway masks")
    parser.add_argument("--token_list", type=Path, required=True, help="merged tokens.txt (extend_token_list_dir)")
    parser.add_argument("--lang", required=True, help="the language to add")
    parser.add_argument("--init_mask", type=Path, default=None, help="its initial mask: a mask file with it or '*'")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="seed of the new rows' initialisation")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    return run_cli(lambda: extend_model(args.asr_train_config, args.asr_model_file, args.token_list, args.lang,
                                        args.out_dir, args.init_mask, args.seed))


if __name__ == "__main__":
    sys.exit(main())
