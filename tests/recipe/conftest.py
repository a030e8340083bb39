"""Fixtures of the recipe tests (helpers live in recipe_data.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict

import pytest

from recipe_data import FAKES, write_data_dir, write_lang_list
from test_recipe_shell import CI_RECIPE_ARGS, make_recipe_copy, run


LONG_TESTS_ENV = "PATHWAYS_LONG_TESTS"  # =1: also run the tests marked long (not in make test / CI)


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "e2e: end-to-end run of the recipe (run.sh stages 1-13, CI-size corpus, a few minutes)"
    )
    config.addinivalue_line(
        "markers", f"long: a recipe run of tens of minutes on 2 cores; runs only with {LONG_TESTS_ENV}=1 (make test-long)"
    )


def pytest_collection_modifyitems(config, items) -> None:
    if os.environ.get(LONG_TESTS_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"long recipe run: set {LONG_TESTS_ENV}=1 (make test-long)")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


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


@pytest.fixture(scope="session")
def ci_recipe(tmp_path_factory) -> Path:
    """A recipe dir after ``run.sh`` stages 1-10 with ``CI_RECIPE_ARGS`` (corpus, dumps, token lists,
    statistics), made once per session: the e2e tests train in it under their own exp names, and
    their runs find stages 1-10 up to date."""
    recipe = make_recipe_copy(tmp_path_factory.mktemp("ci_recipe") / "asr1")
    run(recipe, *CI_RECIPE_ARGS, "--stop_stage", "10")
    return recipe
