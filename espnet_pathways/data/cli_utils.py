"""Small helpers shared by the data command lines."""

from __future__ import annotations

import argparse
import logging

__all__ = ["str2bool", "setup_logging"]


def str2bool(value: str) -> bool:
    """Parse ``true/false`` (also ``1/0``, ``yes/no``) for argparse."""
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def setup_logging(level: str) -> None:
    """Timestamped log lines on stderr."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
