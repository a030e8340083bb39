"""Completion stamps and the parallel job runner."""

from __future__ import annotations

import sys

import pytest

from espnet_pathways.recipe import jobs
from espnet_pathways.utils import stamp


def test_fingerprint_follows_params_and_file_contents(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("x")
    fp = stamp.fingerprint({"k": 1}, [f])
    assert fp == stamp.fingerprint({"k": 1}, [f])
    assert fp != stamp.fingerprint({"k": 2}, [f])
    f.write_text("y")
    assert fp != stamp.fingerprint({"k": 1}, [f])
    assert stamp.fingerprint({}, [tmp_path / "missing"]) != stamp.fingerprint({}, [])


def test_is_done(tmp_path):
    s = tmp_path / ".done"
    assert not stamp.is_done(s, "abc")
    stamp.write_stamp(s, "abc", {"step": "x"})
    assert stamp.is_done(s, "abc") and not stamp.is_done(s, "abd")
    s.write_text("{broken")
    assert not stamp.is_done(s, "abc")


def test_write_stamp_removes_its_stale_tmp(tmp_path):
    (tmp_path / "..done.abcd1234.tmp").write_text("{half")  # a killed write of the stamp
    (tmp_path / ".text.abcd1234.tmp").write_text("half")  # another output's: the step's own business
    stamp.write_stamp(tmp_path / ".done", "abc", {"step": "x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".done", ".text.abcd1234.tmp"]


def test_run_parallel_logs_and_failures(tmp_path):
    ok = [sys.executable, "-c", "print('hello')"]
    bad = [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]
    jobs.run_parallel([ok, ok], [tmp_path / "1.log", tmp_path / "2.log"])
    assert (tmp_path / "1.log").read_text().splitlines()[1] == "hello"
    with pytest.raises(RuntimeError, match=r"(?s)1 of 2 job\(s\) failed: .*b.log \(exit 3\).*boom"):
        jobs.run_parallel([ok, bad], [tmp_path / "a.log", tmp_path / "b.log"])
    with pytest.raises(ValueError, match="2 commands but 1 logs"):
        jobs.run_parallel([ok, ok], [tmp_path / "x.log"])


def test_run_parallel_calls_watch_while_waiting_and_at_the_end(tmp_path):
    seen = []
    log = tmp_path / "w.log"
    cmd = [sys.executable, "-c", "import time; print('a', flush=True); time.sleep(0.5); print('b')"]
    jobs.run_parallel([cmd], [log], watch=lambda: seen.append(log.read_text()), interval_s=0.05)
    assert len(seen) >= 3 and seen[-1].endswith("a\nb\n")  # the last call sees the whole log
