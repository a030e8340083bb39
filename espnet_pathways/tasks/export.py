"""Export one language of a pathways model as a standalone ESPnet model, and pack it as ESPnet does.

Usage::

    from espnet_pathways.tasks.export import export_language, write_archive
    from espnet2.main_funcs.pack_funcs import unpack

    export_language("exp/x/config.yaml", "exp/x/valid.loss.ave.pth", "fr", "exp/x/export_fr")
    write_archive("exp/x/export_fr", "exp/x/export_fr.zip")          # or .tar.gz, .tgz, .tar
    files = unpack("exp/x/export_fr.zip", "unpacked")  # {"asr_train_config": ..., "asr_model_file": ...}
    Speech2Text(**files)                               # no lang: the model has no masks

    pack_checkpoint("exp/x/valid.loss.ave.pth", "exp/x/model.pws")                  # every pathway, union-packed
    pack_checkpoint("exp/x/valid.loss.ave.pth", "exp/x/fr.pws", lang="fr", fp16=True)
    unpack_checkpoint("exp/x/model.pws", "exp/x/model.pth")

The exported folder holds ``config.yaml`` (the training config with ``pruning_conf: {}``, so no masks
are attached when it is built; everything else kept), ``model.pth`` (θ ⊙ m_lang: the language's mask
baked into plain weights, without the ``pathway_masks.*`` and ``pathway_pruning.*`` buffers),
``tokens.txt``, and copies of the files the config names (:data:`PATH_KEYS`: BPE model(s), the
normalisation statistics, a ``lang_list`` file) with the config pointing at them.

The archive is laid out as ``espnet2.bin.pack`` lays out a packed model: ``meta.yaml`` (``files``:
``asr_model_file``; ``yaml_files``: ``asr_train_config``) and the members under the folder's name;
inside it the config names the members by their archive names, which ``espnet2``'s ``unpack`` rewrites
to where it extracts them (directories, e.g. a folder of per-language BPE models, are members too).
"""

from __future__ import annotations

import io
import shutil
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch
import yaml

from espnet_pathways.masks.layout import ATTR, mask_key
from espnet_pathways.masks.maskset import MaskSet
from espnet_pathways.masks.prunable import prunable_parameters
from espnet_pathways.masks.sparse_checkpoint import load_sparse, save_sparse
from espnet_pathways.pruning import ENGINE_ATTR
from espnet_pathways.tasks.registry import load_model
from espnet_pathways.utils.fileio import atomic_dir, atomic_path
from espnet_pathways.utils.lang_list import lang_code_to_id

__all__ = ["PATH_KEYS", "CONFIG", "MODEL", "TOKENS", "pathway_state", "read_config", "export_language", "write_archive",
           "pack_checkpoint", "unpack_checkpoint"]

PATH_KEYS: Dict[Tuple[str, ...], str] = {
    ("token_list",): "tokens.txt",
    ("bpemodel",): "bpe",
    ("lang_list",): "lang_list.txt",
    ("normalize_conf", "stats_file"): "feats_stats.npz",
}
"""Config entries that name a file (or a folder) the model needs -> its name in the exported folder."""
CONFIG, MODEL, TOKENS = "config.yaml", "model.pth", "tokens.txt"
PathLike = Union[str, Path]


def pathway_state(state: Mapping[str, torch.Tensor], lang: str, where: str) -> Tuple[Dict[str, torch.Tensor], Dict]:
    """θ ⊙ m_lang of a checkpoint with pathway masks, without the masks' and the engine's buffers.

    Returns:
        (state dict, {name: BoolTensor} the mask applied).
    Raises:
        ValueError: ``where`` (the checkpoint) has no pathway masks; KeyError: no pathway for ``lang``.
    """
    masks = MaskSet.from_state_dict(state)
    if masks is None:
        raise ValueError(f"{where}: the checkpoint has no pathway masks ({ATTR}.*): nothing to export per language")
    key = mask_key(masks.languages, lang)
    if key is None:
        raise KeyError(f"{where}: language {lang!r} has no pathway (masks of: {', '.join(masks.languages)})")
    out = {k: v for k, v in state.items() if not k.startswith((f"{ATTR}.", f"{ENGINE_ATTR}."))}
    for name, mask in masks[key].items():
        out[name] = out[name].masked_fill(~mask, 0.0)
    return out, masks[key]


def _get(config: dict, keys: Tuple[str, ...]):
    for key in keys:
        config = config.get(key) if isinstance(config, dict) else None
    return config


def _set(config: dict, keys: Tuple[str, ...], value) -> None:
    for key in keys[:-1]:
        config = config[key]
    config[keys[-1]] = value


def read_config(path: PathLike) -> dict:
    """A training ``config.yaml`` as a dict (a clear error for a missing or malformed file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config not found: {path}")
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not an ESPnet training config (no mapping)")
    return config


def _checked_lang(config: dict, config_path: PathLike, lang: str) -> None:
    """``lang`` must be a code of the config's ``lang_list`` (when it has one), as for decoding."""
    if isinstance(config.get("lang_list"), list):
        lang_code_to_id(lang, config["lang_list"], where=f"{config_path}: --lang")


def _load_state(model_path: PathLike) -> Dict[str, torch.Tensor]:
    if not Path(model_path).is_file():
        raise FileNotFoundError(f"model file not found: {model_path}")
    return torch.load(model_path, map_location="cpu", weights_only=False)


def export_language(config_path: PathLike, model_path: PathLike, lang: str, out_dir: PathLike) -> Path:
    """Write language ``lang``'s pathway of a multilingual checkpoint as a standalone model folder.

    Args:
        config_path: the training run's ``config.yaml``.
        model_path: a checkpoint of that run holding pathway masks.
        lang: a code of the config's ``lang_list`` (a set with only a shared mask ``"*"`` uses it).
        out_dir: the folder to write (replaced atomically); the config names its files by
            ``out_dir``'s path as given.

    Returns:
        the exported ``config.yaml``.
    """
    config = read_config(config_path)
    _checked_lang(config, config_path, lang)
    state, _ = pathway_state(_load_state(model_path), lang, str(model_path))
    out_dir = Path(out_dir)
    config["pruning_conf"] = {}
    with atomic_dir(out_dir) as tmp:
        for keys, name in PATH_KEYS.items():
            source = _get(config, keys)
            if not isinstance(source, str):
                continue
            if not Path(source).exists():
                raise FileNotFoundError(f"{config_path}: {'.'.join(keys)} names {source}, which does not exist")
            if Path(source).is_dir():
                shutil.copytree(source, tmp / name)
            else:
                shutil.copyfile(source, tmp / name)
            _set(config, keys, str(out_dir / name))
        if isinstance(config.get("token_list"), list):
            (tmp / TOKENS).write_text("".join(f"{t}\n" for t in config["token_list"]), encoding="utf-8")
        torch.save(state, tmp / MODEL)
        (tmp / CONFIG).write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out_dir / CONFIG


def _archive_config(config: dict, folder: Path, root: str) -> dict:
    """The config with every :data:`PATH_KEYS` entry inside ``folder`` named by its archive member."""
    config = dict(config)
    for keys in PATH_KEYS:
        value = _get(config, keys)
        if not isinstance(value, str):
            continue
        try:
            relative = Path(value).resolve().relative_to(folder.resolve())
        except ValueError:
            raise ValueError(f"{folder / CONFIG}: {'.'.join(keys)} names {value}, outside {folder}") from None
        if len(keys) > 1:
            config[keys[0]] = dict(config[keys[0]])
        _set(config, keys, f"{root}/{relative.as_posix()}")
    return config


def _members(folder: Path, root: str, config_bytes: bytes) -> List[Tuple[str, Optional[bytes]]]:
    """(archive name, bytes; None for a directory) of every entry of ``folder``, meta.yaml first."""
    meta = {
        "files": {"asr_model_file": f"{root}/{MODEL}"},
        "yaml_files": {"asr_train_config": f"{root}/{CONFIG}"},
        "timestamp": time.time(),
        "python": sys.version,
        "torch": str(torch.__version__),
    }
    try:
        import espnet

        meta["espnet"] = espnet.__version__
    except ImportError:
        pass
    members: List[Tuple[str, Optional[bytes]]] = [("meta.yaml", yaml.safe_dump(meta).encode("utf-8"))]
    for path in sorted(folder.rglob("*")):
        name = f"{root}/{path.relative_to(folder).as_posix()}"
        if path.is_dir():
            members.append((name, None))
        elif path == folder / CONFIG:
            members.append((name, config_bytes))
        else:
            members.append((name, path.read_bytes()))
    return members


def _archive_mode(path: Path) -> Tuple[str, str]:
    """("tar" | "zip", tarfile write mode) from the suffix, as ``espnet2``'s Archiver detects it."""
    name = path.name
    for suffixes, mode in ((".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz"), (".tar.bz2", "w:bz2"),
                           (".tbz2", "w:bz2"), (".tar.xz", "w:xz"), (".txz", "w:xz")):  # fmt: skip
        if name.endswith(suffixes):
            return "tar", mode
    if name.endswith(".zip"):
        return "zip", "w"
    raise ValueError(f"{path}: unknown archive type (use .zip, .tar, .tar.gz, .tgz, .tar.bz2 or .tar.xz)")


def write_archive(folder: PathLike, archive: PathLike) -> Path:
    """Pack an exported folder (:func:`export_language`) into ``archive`` as ``espnet2.bin.pack`` does.

    ``espnet2.main_funcs.pack_funcs.unpack(archive, out)`` extracts it and returns
    ``{"asr_train_config": ..., "asr_model_file": ...}`` with the config's paths rewritten into ``out``.
    """
    folder, archive = Path(folder), Path(archive)
    kind, mode = _archive_mode(archive)
    root = folder.resolve().name
    config = _archive_config(read_config(folder / CONFIG), folder, root)
    members = _members(folder, root, yaml.safe_dump(config, allow_unicode=True, sort_keys=False).encode("utf-8"))
    with atomic_path(archive) as tmp:
        if kind == "zip":
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as out:
                for name, data in members:
                    out.writestr(name + "/" if data is None else name, data or b"")
        else:
            with tarfile.open(tmp, mode) as out:
                for name, data in members:
                    info = tarfile.TarInfo(name)
                    info.mtime = int(time.time())
                    if data is None:
                        info.type, info.mode = tarfile.DIRTYPE, 0o755
                        out.addfile(info)
                    else:
                        info.size, info.mode = len(data), 0o644
                        out.addfile(info, io.BytesIO(data))
    return archive


def pack_checkpoint(
    model_path: PathLike,
    out: PathLike,
    config_path: Optional[PathLike] = None,
    lang: Optional[str] = None,
    fp16: bool = False,
) -> Path:
    """Write a checkpoint as a packed sparse checkpoint (:mod:`espnet_pathways.masks.sparse_checkpoint`).

    Args:
        model_path: an ESPnet checkpoint (``*.pth``).
        out: the ``.pws`` file to write.
        config_path: its training config; needed for a checkpoint without pathway masks (e.g. an
            exported model), whose prunable tensors are then stored sparse (kept: the non-zero weights).
        lang: store only this language's pathway (θ ⊙ m_lang, as :func:`export_language` writes
            it); default: the whole model, the union of its pathways once plus every mask.
        fp16: store float values as float16 (lossy).
    """
    state = _load_state(model_path)
    config = read_config(config_path) if config_path is not None else None
    extra: Dict[str, object] = {"source": str(model_path)}
    support = None
    if lang is not None:
        if config is not None:
            _checked_lang(config, config_path, lang)
        state, support = pathway_state(state, lang, str(model_path))
        extra["lang"] = lang
    elif MaskSet.from_state_dict(state) is None:
        if config_path is None:
            raise ValueError(f"{model_path}: no pathway masks; give --asr_train_config to find its prunable tensors")
        model, _ = load_model(config_path, None, "cpu")
        missing = [name for name in prunable_parameters(model) if name not in state]
        if missing:
            raise KeyError(f"{model_path}: no tensor {missing[0]!r} of the model built from {config_path}")
        support = {name: torch.zeros(p.shape, dtype=torch.bool) for name, p in prunable_parameters(model).items()}
    return save_sparse(out, state, support, fp16=fp16, extra=extra)


def unpack_checkpoint(sparse_path: PathLike, out: PathLike) -> Path:
    """Write the state dict of a packed sparse checkpoint as an ordinary ``torch.save`` file."""
    state = load_sparse(sparse_path).state
    with atomic_path(out) as tmp:
        torch.save(state, tmp)
    return Path(out)
