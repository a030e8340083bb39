"""Print a field of the training phases (:mod:`espnet_pathways.recipe.phases`), one line each.

Usage (stage 10 of ``asr.sh`` asks for the first phase's config)::

    python -m espnet_pathways.recipe.stages.phases --phases_config conf/phases.yaml --expdir exp \\
        --langs "en fr" --which last --field exp
    # one phase: --train_config conf/train.yaml --asr_exp exp/asr_x instead of --phases_config
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from espnet_pathways.recipe.phases import add_phases_arguments, decoded_phases, phases_from_args
from espnet_pathways.utils.cli import run_cli


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Print a field of the training phases, one line each.")
    add_phases_arguments(parser)
    parser.add_argument("--which", choices=("first", "last", "all", "decode"), default="last")
    parser.add_argument("--field", choices=("exp", "config", "name"), default="exp",
                        help="config: the phase's (first) config file")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)

    def work() -> None:
        _, phases = phases_from_args(args)
        if args.which == "decode":
            chosen = decoded_phases(phases)
        else:
            chosen = {"first": phases[:1], "last": phases[-1:], "all": phases}[args.which]
        attr = {"exp": "exp_dir", "config": "base_config", "name": "name"}[args.field]
        sys.stdout.write("".join(f"{getattr(p, attr)}\n" for p in chosen))

    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
