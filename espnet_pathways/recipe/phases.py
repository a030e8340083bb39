"""The training phases of stage 11: each has a config and an experiment dir, run in order.

Without a phases file there is one phase (``--train_config`` into ``--asr_exp``). A phases file
(YAML) lists several, e.g. dense training, then pruning, then pathway training::

    phases:
      - name: dense
        config: conf/train_asr_emformer_demo.yaml
        exp: asr_dense                 # relative to --expdir
      - name: lth70
        config: conf/prune_lth70.yaml
        exp: asr_lth70
        init_from: dense               # --init_param <expdir>/asr_dense/<model_file>
        args: [--max_epoch, "3"]       # extra training options of this phase

Usage (prints the experiment dir(s), for the stage script)::

    python -m espnet_pathways.recipe.phases --phases_config conf/phases.yaml --expdir exp --which last --field exp
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Tuple

import yaml

from espnet_pathways.recipe.cli import run_cli

__all__ = ["Phase", "load_phases", "single_phase", "main"]

_KEYS = {"name", "config", "exp", "init_from", "args"}


@dataclass(frozen=True)
class Phase:
    """One training run: ``config`` into ``exp_dir``, optionally initialised from an earlier phase."""

    name: str
    config: Path
    exp_dir: Path
    init_from: Optional[str] = None
    args: Tuple[str, ...] = ()


def single_phase(train_config: Path, asr_exp: Path) -> List[Phase]:
    """The phase list when no phases file is given."""
    return [Phase(name="train", config=Path(train_config), exp_dir=Path(asr_exp))]


def _field(entry: dict, key: str, where: str, kind: type) -> Any:
    if key not in entry:
        raise ValueError(f"{where}: missing key {key!r}")
    value = entry[key]
    if not isinstance(value, kind) or value == "":
        raise ValueError(f"{where}: {key!r} must be a non-empty {kind.__name__}, got {value!r}")
    return value


def load_phases(path: Path, expdir: Path) -> List[Phase]:
    """Read and check a phases file (unique names and dirs, ``init_from`` names an earlier phase)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing phases file: {path}")
    with path.open(encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("phases"), list) or not doc["phases"]:
        raise ValueError(f"{path}: expected a non-empty list under 'phases'")
    phases: List[Phase] = []
    for i, entry in enumerate(doc["phases"]):
        where = f"{path}: phases[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping, got {entry!r}")
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; allowed {sorted(_KEYS)}")
        name = _field(entry, "name", where, str)
        config = Path(_field(entry, "config", where, str))
        exp_dir = Path(expdir) / _field(entry, "exp", where, str)
        init_from = entry.get("init_from")
        args = entry.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, (str, int, float)) for a in args):
            raise ValueError(f"{where}: 'args' must be a list of strings")
        if any(p.name == name for p in phases):
            raise ValueError(f"{where}: phase name {name!r} used twice")
        if any(p.exp_dir == exp_dir for p in phases):
            raise ValueError(f"{where}: experiment dir {exp_dir} used by an earlier phase")
        if init_from is not None and not any(p.name == init_from for p in phases):
            raise ValueError(f"{where}: init_from {init_from!r} is not an earlier phase")
        phases.append(Phase(name, config, exp_dir, init_from, tuple(str(a) for a in args)))
    return phases


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Print a field of the training phases, one line each.")
    parser.add_argument("--phases_config", type=Path, required=True)
    parser.add_argument("--expdir", type=Path, required=True)
    parser.add_argument("--which", choices=("first", "last", "all"), default="last")
    parser.add_argument("--field", choices=("exp", "config", "name"), default="exp")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)

    def work() -> None:
        phases = load_phases(args.phases_config, args.expdir)
        chosen = {"first": phases[:1], "last": phases[-1:], "all": phases}[args.which]
        attr = {"exp": "exp_dir", "config": "config", "name": "name"}[args.field]
        sys.stdout.write("".join(f"{getattr(p, attr)}\n" for p in chosen))

    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
