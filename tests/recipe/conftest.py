"""Fixtures of the recipe tests (helpers live in recipe_data.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict

import pytest

from recipe_data import FAKES, write_data_dir, write_lang_list


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "e2e: end-to-end run of the recipe (run.sh stages 1-13, CI-size corpus, a few minutes)"
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return write_data_dir(tmp_path / "data" / "train", tmp_path / "audio")


@pytest.fixture
def lang_list(tmp_path: Path) -> Path:
    return write_lang_list(tmp_path / "lang_list.txt")


@pytest.fixture
def fakes_env(monkeypatch) -> Dict[str, str]:
    """PYTHONPATH that makes the fake entry points in tests/recipe/fakes importable by subprocesses."""
    env_path = os.pathsep.join(p for p in (str(FAKES), os.environ.get("PYTHONPATH", "")) if p)
    monkeypatch.setenv("PYTHONPATH", env_path)
    return {"PYTHONPATH": env_path}
