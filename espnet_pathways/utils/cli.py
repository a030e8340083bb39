"""Shared bits of the command-line entry points: logging set-up, boolean flags, error exit."""

from __future__ import annotations

import argparse
import logging
from typing import Callable

__all__ = ["LOG_FORMAT", "str2bool", "run_cli"]

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"

# Errors that mean "bad input or failed step": logged as one line, exit status 1.
_EXPECTED_ERRORS = (OSError, ValueError, KeyError, RuntimeError)


def str2bool(value: str) -> bool:
    """``true``/``false`` (any case) as a bool, for ``argparse``."""
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def run_cli(work: Callable[[], object]) -> int:
    """Run ``work`` with ESPnet-like log lines on stderr; log an expected error as one line and
    return 1, else return 0."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        work()
    except _EXPECTED_ERRORS as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        logging.error("%s", msg)
        return 1
    return 0
