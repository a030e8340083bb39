"""Mask histories: records, rebuilt masks, resume truncation, damaged files, and `masks plot <exp dir>`."""

import json

import pytest
import torch

from espnet_pathways.bin import masks as cli
from espnet_pathways.masks import MaskFileError, MaskSet
from espnet_pathways.masks.history import HISTORY_FILE, MaskHistory, MaskHistoryWriter

A_EN = [1, 1, 1, 1, 0, 0, 0, 0]
A_FR = [1, 1, 0, 0, 1, 1, 0, 0]
A_IT = [1, 0, 1, 0, 1, 0, 1, 0]


def _maskset(a, b):
    """Hand-made masks of two layers: a.weight (2, 4) and b.weight (4,), per language (en, fr, it)."""
    return MaskSet({lang: {"a.weight": torch.tensor(a[lang], dtype=torch.bool).reshape(2, 4),
                           "b.weight": torch.tensor(b[lang], dtype=torch.bool)} for lang in ("en", "fr", "it")},
                   method="test")


FIRST = _maskset({"en": A_EN, "fr": A_FR, "it": A_IT}, {"en": [1, 1, 0, 0], "fr": [1, 1, 0, 0], "it": [1, 0, 0, 0]})
SECOND = FIRST.replace("fr", FIRST["en"])  # fr re-ranked onto en's mask
EVENTS = [(0, "prune", ("en", "fr", "it"), FIRST), (5, "adapt", ("fr",), SECOND), (5, "freeze", ("en", "fr", "it"), SECOND)]


def _write(path, events=EVENTS):
    writer = MaskHistoryWriter(path)
    for step, kind, langs, maskset in events:
        writer.append(step, kind, langs, maskset)
    return path


def test_records_rebuild_every_mask_set_and_only_changes_are_stored(tmp_path):
    history = MaskHistory(_write(tmp_path / HISTORY_FILE))
    assert history.languages == ("en", "fr", "it") and history.names == ("a.weight", "b.weight")
    assert [(r.step, r.kind, r.languages) for r in history.records] == [e[:3] for e in EVENTS]
    assert [r.changed for r in history.records] == [("en", "fr", "it"), ("fr",), ()]
    for index, (_, _, _, maskset) in enumerate(EVENTS):
        assert history.maskset(index) == maskset
        assert history.records[index].digest == maskset.digest()
    assert history.records[2].size < 64, "a record of an unchanged mask set holds no mask bits"


def test_a_damaged_record_is_refused_naming_file_record_and_offset(tmp_path):
    path = _write(tmp_path / HISTORY_FILE)
    data = path.read_bytes()
    second = MaskHistory(path).records[1]
    flipped = bytearray(data)
    flipped[second.offset + second.size - 1] ^= 0x40
    path.write_bytes(bytes(flipped))
    with pytest.raises(MaskFileError, match=rf"{path}: record 1 at byte {second.offset}: checksum mismatch"):
        MaskHistory(path)
    path.write_bytes(data[: second.offset + 20])
    with pytest.raises(MaskFileError, match=rf"{path}: record 1 at byte {second.offset}: truncated"):
        MaskHistory(path)
    first = MaskHistory(_write(tmp_path / "whole.pwh")).records[0]
    path.write_bytes(data[: first.offset] + data[second.offset :])  # record 0 lost: XORs no longer add up
    with pytest.raises(MaskFileError, match=r"record 0 at byte \d+: the masks it rebuilds do not have its digest"):
        MaskHistory(path)
    path.write_bytes(data[:20] + b"\xff" + data[21:])
    with pytest.raises(MaskFileError, match=rf"{path}: header checksum mismatch"):
        MaskHistory(path)
    path.write_bytes(b"PWMASKS\x02" + data[8:])
    with pytest.raises(MaskFileError, match="not an espnet_pathways mask history"):
        MaskHistory(path)


@pytest.mark.parametrize(
    "checkpoint, kept",
    [
        ((0, False, False), 0),  # a fresh run: every record goes
        ((5, True, False), 2),  # the freeze at step 5 came after the checkpoint (end of training)
        ((5, True, True), 3),  # the checkpoint's masks were fixed: its freeze record stays
        ((4, True, False), 1),
    ],
)
def test_resume_keeps_the_records_the_checkpoint_has_seen(tmp_path, checkpoint, kept):
    path = _write(tmp_path / HISTORY_FILE)
    reference = path.read_bytes()
    writer = MaskHistoryWriter(path)
    writer.resume(*checkpoint)
    for step, kind, langs, maskset in EVENTS[kept:]:  # the resumed run fires the remaining events again
        writer.append(step, kind, langs, maskset)
    assert path.read_bytes() == reference


def test_resume_drops_a_record_cut_short_by_a_crash(tmp_path, caplog):
    path = _write(tmp_path / HISTORY_FILE, EVENTS[:2])
    reference = _write(tmp_path / "reference.pwh").read_bytes()
    with open(path, "ab") as f:
        f.write(b"PWHR\x40\x00\x00\x00partial")  # a crash in the middle of appending the next record
    with pytest.raises(MaskFileError, match="record 2 .* truncated"):
        MaskHistory(path)
    writer = MaskHistoryWriter(path)
    writer.resume(5, True, False)
    assert "record 2" in caplog.text and "truncated" in caplog.text
    writer.append(*EVENTS[2][:3], EVENTS[2][3])
    assert path.read_bytes() == reference


def test_a_damaged_history_is_set_aside_when_a_run_resumes(tmp_path):
    path = tmp_path / HISTORY_FILE
    path.write_bytes(b"not a history")
    writer = MaskHistoryWriter(path)
    writer.resume(5, True, False)
    assert (tmp_path / (HISTORY_FILE + ".damaged")).read_bytes() == b"not a history"
    writer.append(5, "adapt", ["fr"], SECOND)
    history = MaskHistory(path)
    assert len(history) == 1 and history.maskset(0) == SECOND


def test_plot_of_an_experiment_dir_draws_the_pathways_over_training(tmp_path):
    _write(tmp_path / "pruning" / HISTORY_FILE)
    SECOND.save(tmp_path / "masks.pwm")
    assert cli.main(["plot", str(tmp_path)]) == 0
    out = tmp_path / "pruning"
    for name in ("pathway_iou.png", "pathway_sharing.png", "layer_sparsity.png", "mask_overlap.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    data = json.loads((out / "pathway_history.json").read_text())
    assert data["steps"] == [0, 5, 5] and [e["kind"] for e in data["events"]] == ["prune", "adapt", "freeze"]
    # a: en {0,1,2,3}, fr {0,1,4,5}, it {0,2,4,6}; b: en {0,1}, fr {0,1}, it {0}; then fr := en
    assert data["iou"] == {"en/fr": [4 / 8, 1.0, 1.0], "en/it": [3 / 8] * 3, "fr/it": [3 / 8, 3 / 8, 3 / 8]}
    assert data["sparsity"] == {"en": [0.5] * 3, "fr": [0.5] * 3, "it": pytest.approx([7 / 12] * 3)}
    # per layer, of the weights any language keeps: kept by all three / by exactly one
    assert data["shared"] == {"a.weight": pytest.approx([1 / 7, 2 / 6, 2 / 6]), "b.weight": [1 / 2] * 3}
    assert data["exclusive"] == {"a.weight": pytest.approx([3 / 7, 2 / 6, 2 / 6]), "b.weight": [0.0] * 3}


def test_plot_writes_elsewhere_and_fails_naming_a_missing_or_damaged_history(tmp_path, caplog):
    path = _write(tmp_path / "pruning" / HISTORY_FILE)
    assert cli.main(["plot", str(tmp_path), "--out_dir", str(tmp_path / "plots")]) == 0
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "pathway_history.json", "pathway_iou.png", "pathway_sharing.png"]  # no masks.pwm: a run still training
    path.write_bytes(path.read_bytes()[:-3])
    assert cli.main(["plot", str(tmp_path)]) == 1
    assert f"{path}: record 2 at byte" in caplog.text
    assert cli.main(["plot", str(tmp_path / "plots")]) == 1
    assert f"mask history not found: {tmp_path / 'plots' / 'pruning' / HISTORY_FILE}" in caplog.text
    assert cli.main(["plot", str(tmp_path / "masks.pwm")]) == 1
    assert "--out_dir is required with a mask file" in caplog.text
