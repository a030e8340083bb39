"""Atomic outputs: all or nothing, with ordinary permissions; leftovers of killed writers are removable."""

import os
import subprocess
import sys

import pytest

from espnet_pathways.utils.fileio import atomic_dir, atomic_path, atomic_write_text, remove_stale_tmp


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


KILLED_WRITER = """
import os, sys
from espnet_pathways.utils.fileio import atomic_dir, atomic_path
with atomic_path(sys.argv[1]) as tmp, atomic_dir(sys.argv[2]) as tmp_dir:
    tmp.write_text("half")
    (tmp_dir / "a").write_text("half")
    os._exit(9)  # killed: no cleanup runs
"""


def test_remove_stale_tmp_removes_only_own_leftovers(tmp_path):
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path / "out.txt"), str(tmp_path / "data")])
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert len(leftovers) == 2 and all(n.endswith(".tmp") for n in leftovers)
    others = [".other.abcd1234.tmp", ".out.txt.abc.tmp", "out.txt.abcd1234.tmp", ".out.txt.abcd1234.tmp.bak", "out.txt"]
    for name in others:
        (tmp_path / name).write_text("keep")
    assert sorted(p.name for p in remove_stale_tmp(tmp_path, ["out.txt", "data"])) == leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)
    assert remove_stale_tmp(tmp_path / "missing", ["out.txt"]) == []
