"""Fixtures for the data tests: a generated ci corpus (once per session) and tiny synthetic MLS releases."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from espnet_pathways.data.languages import get_language
from espnet_pathways.data.mini_mls import generate_mini_mls
from fake_mls_release import FakeRelease, write_fake_release

CI_LANGS = ("en", "fr", "it", "nl")


@pytest.fixture(scope="session")
def ci_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The ci-size generated corpus (seed 0, nj 1) and the generator's summary."""
    root = tmp_path_factory.mktemp("mini_mls") / "corpus"
    summary = generate_mini_mls(root, size="ci", langs=CI_LANGS, seed=0, nj=1)
    return root, summary


@pytest.fixture(scope="session")
def _fake_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """en (flac) + fr (opus only) releases, written once and copied per test."""
    root = tmp_path_factory.mktemp("fake_template") / "mls"
    write_fake_release(root, "en")
    write_fake_release(root, "fr", opus=True)
    return root


@pytest.fixture()
def fake_release_writer():
    """:func:`write_fake_release`, for tests that build their own layouts."""
    return write_fake_release


@pytest.fixture()
def fake_mls(_fake_template: Path, tmp_path: Path) -> dict[str, FakeRelease]:
    """A fresh copy of the template: ``{"en": flac release, "fr": opus release}``."""
    root = tmp_path / "mls"
    shutil.copytree(_fake_template, root)
    out = {}
    for code, opus in (("en", False), ("fr", True)):
        lang = get_language(code)
        release = FakeRelease(root, code, root / (lang.mls_opus_dir if opus else lang.mls_dir), "opus" if opus else "flac")
        out[code] = release
    _fill_ids(out)
    return out


def _fill_ids(releases: dict[str, FakeRelease]) -> None:
    """Recompute ids, folds and 9hr set from the files of a copied release."""
    for release in releases.values():
        for split in ("train", "dev", "test"):
            text = release.transcripts(split).read_text(encoding="utf-8")
            release.ids[split] = [line.split("\t")[0] for line in text.splitlines()]
        train_dir = release.folder / "train" / "limited_supervision"
        release.one_hour = [(train_dir / "1hr" / str(f) / "handles.txt").read_text().split() for f in range(6)]
        release.nine_hour = (train_dir / "9hr" / "handles.txt").read_text().split()
