"""Splitting key lists for parallel jobs and merging the jobs' 1best_recog outputs."""

from __future__ import annotations

import pytest

from espnet_pathways.recipe.stages import merge_decode, split_decode


@pytest.mark.parametrize("n, nj, sizes", [(10, 3, [4, 3, 3]), (2, 4, [1, 1]), (5, 1, [5]), (6, 6, [1] * 6)])
def test_split_list_balanced_and_ordered(n, nj, sizes):
    parts = split_decode.split_list(list(range(n)), nj)
    assert [len(p) for p in parts] == sizes
    assert [x for p in parts for x in p] == list(range(n))


def test_split_list_errors():
    with pytest.raises(ValueError, match="nj must be >= 1"):
        split_decode.split_list([1], 0)
    with pytest.raises(ValueError, match="empty key list"):
        split_decode.split_list([], 2)


def test_split_scp(tmp_path):
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"u{i} /a/u{i}.flac\n" for i in range(5)))
    assert split_decode.split_scp(scp, 2, tmp_path / "log") == [tmp_path / "log" / f"keys.{j}.scp" for j in (1, 2)]
    assert (tmp_path / "log" / "keys.1.scp").read_text() == "u0 /a/u0.flac\nu1 /a/u1.flac\nu2 /a/u2.flac\n"
    assert (tmp_path / "log" / "keys.2.scp").read_text() == "u3 /a/u3.flac\nu4 /a/u4.flac\n"


def _job(root, j, rows, files=merge_decode.RECOG_FILES):
    d = root / f"output.{j}" / "1best_recog"
    d.mkdir(parents=True)
    for name in files:
        (d / name).write_text("".join(f"{k} {v}\n".rstrip(" \n") + "\n" for k, v in rows.items()))
    return d.parent


def test_merge_sorted_with_empty_hypothesis(tmp_path):
    a = _job(tmp_path, 1, {"u2": "b c", "u0": "a"})
    b = _job(tmp_path, 2, {"u1": ""})
    out = tmp_path / "set"
    assert merge_decode.merge_outputs([a, b], out, ["u0", "u1", "u2"]) == list(merge_decode.RECOG_FILES)
    assert (out / "text").read_text() == "u0 a\nu1 \nu2 b c\n"


def test_merge_optional_files(tmp_path):
    a = _job(tmp_path, 1, {"u0": "a"}, files=("text",))
    assert merge_decode.merge_outputs([a], tmp_path / "set", ["u0"]) == ["text"]
    b = _job(tmp_path, 2, {"u1": "a"}, files=("text", "score"))
    with pytest.raises(FileNotFoundError, match="score missing from 1 of 2 jobs"):
        merge_decode.merge_outputs([a, b], tmp_path / "set2", ["u0", "u1"])


def test_merge_errors(tmp_path):
    a = _job(tmp_path, 1, {"u0": "a"})
    b = _job(tmp_path, 2, {"u0": "a"})
    with pytest.raises(ValueError, match="key 'u0' was also decoded by another job"):
        merge_decode.merge_outputs([a, b], tmp_path / "s", ["u0"])
    with pytest.raises(ValueError, match=r"1 key\(s\) not decoded \(e.g. \['u9'\]\)"):
        merge_decode.merge_outputs([a], tmp_path / "s", ["u0", "u9"])
    with pytest.raises(FileNotFoundError, match="did not finish"):
        merge_decode.merge_outputs([tmp_path / "output.3"], tmp_path / "s", ["u0"])
    assert not (tmp_path / "s").exists()
