"""Atomic outputs: all or nothing, with ordinary permissions."""

import os

import pytest

from espnet_pathways.utils.fileio import atomic_dir, atomic_path, atomic_write_text


def test_atomic_path_renames_on_success_only(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
    atomic_write_text(target, "done")
    assert target.read_text() == "done"
    assert os.stat(target).st_mode & 0o044, "output must be readable like a plain open() file"


def test_atomic_dir_replaces_existing_only_when_complete(tmp_path):
    target = tmp_path / "data"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "a").write_text("2")
            raise RuntimeError("crash")
    assert (target / "a").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    with atomic_dir(target) as tmp:
        (tmp / "b").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert os.stat(target).st_mode & 0o055
