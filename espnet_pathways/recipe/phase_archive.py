"""A finished training phase as one file: pack it on one machine, import it on another.

A dense θ0 retrained on another CPU ends elsewhere (float sums differ), so rows of one θ0 can be
added on another machine only from θ0's own weights. :func:`pack_phase` writes a tar holding the
phase's model file, ``config.yaml``, ``train.log`` and ESPnet's reporter (``checkpoint.pth`` without
model and optimizer state: steps, times and validation losses, which name the θ0 in the
reproduction report), with a manifest of the data it was trained on: SHA-256 of the files that
decide a phase's training (:func:`data_identity`: transcripts, language ids, token list, shapes;
not ``wav.scp``, whose paths are the machine's). Stage 11 with ``--import_phases dense=<tar>``
imports it (:func:`import_phase`) instead of training, after checking that the local files are
the same.

Usage (from the recipe dir)::

    python -m espnet_pathways.recipe.phase_archive --exp_dir exp/asr_dense \\
        --out reproduction/theta0_b/asr_dense.tar --train_dir dump/raw/train --valid_dir dump/raw/dev \\
        --token_dir data/token_list/char --stats_dir exp/asr_stats_raw_char
    ./run.sh ... --stage 11 --import_phases "dense=reproduction/theta0_b/asr_dense.tar"
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import torch

from espnet_pathways.utils.cli import run_cli
from espnet_pathways.utils.fileio import atomic_path
from espnet_pathways.utils.stamp import update_with_file

__all__ = ["MANIFEST", "CHECKPOINT", "data_identity", "pack_phase", "read_manifest", "import_phase", "parse_imports",
           "main"]

MANIFEST = "manifest.json"
CHECKPOINT = "checkpoint.pth"  # ESPnet's training checkpoint; an archive holds only its reporter
_FORMAT = 1
_COPIED = ("config.yaml", "train.log")  # archived as they are, besides the model file


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    update_with_file(h, path)
    return h.hexdigest()


def data_identity(files: Sequence[Path]) -> Dict[str, str]:
    """Path (as given, relative to the recipe dir) -> SHA-256 of the files that decide a phase's
    training, without ``wav.scp`` (absolute paths); a missing file raises FileNotFoundError."""
    out: Dict[str, str] = {}
    for path in files:
        path = Path(path)
        if path.name == "wav.scp":
            continue
        if not path.is_file():
            raise FileNotFoundError(f"missing {path} (run the stages before training first)")
        out[str(path)] = _sha256(path)
    return out


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644  # mtime 0, no owner: the same phase packs to the same bytes
    tar.addfile(info, io.BytesIO(data))


def pack_phase(exp_dir: Path, out: Path, model_file: str, identity: Mapping[str, str]) -> Path:
    """Write ``exp_dir``'s finished phase to the tar ``out`` (atomically); returns ``out``.

    Args:
        model_file: the checkpoint later phases start from (``valid.loss.ave.pth``; a link is followed).
        identity: :func:`data_identity` of the phase's data.
    """
    exp_dir = Path(exp_dir)
    for name in (model_file, *_COPIED, CHECKPOINT):
        if not (exp_dir / name).is_file():
            raise FileNotFoundError(f"{exp_dir / name}: missing; is the phase finished?")
    state = torch.load(exp_dir / CHECKPOINT, map_location="cpu", weights_only=False)
    if "reporter" not in state:
        raise ValueError(f"{exp_dir / CHECKPOINT}: no 'reporter' entry (not an ESPnet checkpoint)")
    reporter = io.BytesIO()
    torch.save({"reporter": state["reporter"]}, reporter)
    manifest = {"format": _FORMAT, "model_file": model_file, "exp_dir": exp_dir.name, "data": dict(identity)}
    with atomic_path(out) as tmp, tarfile.open(tmp, "w") as tar:
        _add(tar, MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"))
        _add(tar, model_file, (exp_dir / model_file).read_bytes())
        for name in _COPIED:
            _add(tar, name, (exp_dir / name).read_bytes())
        _add(tar, CHECKPOINT, reporter.getvalue())
    return Path(out)


def read_manifest(archive: Path) -> dict:
    """The manifest of a tar written by :func:`pack_phase` (ValueError: not one)."""
    try:
        with tarfile.open(archive) as tar:
            manifest = json.loads(tar.extractfile(MANIFEST).read().decode("utf-8"))
    except (tarfile.TarError, KeyError, json.JSONDecodeError, AttributeError) as e:
        raise ValueError(f"{archive}: not a phase archive ({e})") from e
    if manifest.get("format") != _FORMAT:
        raise ValueError(f"{archive}: archive format {manifest.get('format')!r}, expected {_FORMAT}")
    return manifest


def import_phase(
    archive: Path, exp_dir: Path, model_file: str, identity: Mapping[str, str], stale: Sequence[str] = ()
) -> None:
    """Put the phase of ``archive`` into ``exp_dir`` as if it had been trained there.

    Raises ValueError (and writes nothing) when the archive's model file is not ``model_file`` or
    its data differ from ``identity`` (:func:`data_identity` of the local phase's data). Files of
    ``exp_dir`` matching the glob patterns ``stale`` (a training's resume state) are removed first,
    so that a later training there starts afresh instead of resuming from the imported reporter.
    """
    archive, exp_dir = Path(archive), Path(exp_dir)
    manifest = read_manifest(archive)
    if manifest["model_file"] != model_file:
        raise ValueError(f"{archive}: holds {manifest['model_file']}, but the recipe's model file is {model_file}")
    theirs = manifest["data"]
    differ = sorted(name for name in set(theirs) | set(identity) if theirs.get(name) != identity.get(name))
    if differ:
        raise ValueError(
            f"{archive}: trained on other data than this recipe's: {', '.join(differ)} differ "
            "(generate the corpus with the options it was trained with)"
        )
    with tarfile.open(archive) as tar:
        members = {name: tar.extractfile(name).read() for name in (model_file, *_COPIED, CHECKPOINT)}
    exp_dir.mkdir(parents=True, exist_ok=True)
    for path in [p for pattern in stale for p in exp_dir.glob(pattern)]:
        path.unlink()
    for name, data in members.items():  # the rename replaces a link (valid.loss.ave.pth -> ...), not its target
        with atomic_path(exp_dir / name) as tmp:
            tmp.write_bytes(data)


def parse_imports(text: str) -> Dict[str, Path]:
    """``"dense=a.tar lap=b.tar"`` -> {"dense": Path("a.tar"), ...} (ValueError naming a bad item)."""
    out: Dict[str, Path] = {}
    for item in text.split():
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--import_phases: expected <phase>=<archive>, got {item!r}")
        if not Path(path).is_file():
            raise FileNotFoundError(f"--import_phases: {path}: no such archive (phase {name})")
        out[name] = Path(path)
    return out


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exp_dir", type=Path, required=True, help="the finished phase")
    parser.add_argument("--out", type=Path, required=True, help="the tar to write")
    parser.add_argument("--train_dir", type=Path, required=True)
    parser.add_argument("--valid_dir", type=Path, required=True)
    parser.add_argument("--token_dir", type=Path, required=True)
    parser.add_argument("--stats_dir", type=Path, required=True)
    parser.add_argument("--model_file", default="valid.loss.ave.pth")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)

    def work() -> None:
        from espnet_pathways.recipe.stages.train import TrainSetup  # noqa: PLC0415 (train imports us)

        setup = TrainSetup(train_dir=args.train_dir, valid_dir=args.valid_dir, token_dir=args.token_dir,
                           stats_dir=args.stats_dir, model_file=args.model_file)
        out = pack_phase(args.exp_dir, args.out, args.model_file, data_identity(setup.inputs()))
        print(f"{out}: {out.stat().st_size / 1e6:.1f} MB")

    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
