"""Console progress: ESPnet's training log condensed, decoding counts, ETA arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest

from espnet_pathways.recipe import progress

# Lines of a real ESPnet training log (tests/asr_tiny_corpus.py's tiny model: 2 epochs,
# num_iters_per_epoch 6, --log_interval 2); ESPnet's reporter drops some ", " ("loss_ctc=17.932loss=12.137").
ESPNET_LOG = Path(__file__).with_name("espnet_tiny_train.txt")


class Clock:
    """A clock the test sets."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (59.4, "59s"), (61, "1m01s"), (3599, "59m59s"), (3725, "1h02m")])
def test_format_duration(seconds, text):
    assert progress.format_duration(seconds) == text


def test_eta_is_elapsed_per_unit_times_units_left():
    assert progress.eta_seconds(60, 200, 3000) == pytest.approx(840)
    assert progress.eta_seconds(60, 3000, 3000) == 0
    assert progress.eta_seconds(60, 0, 3000) is None  # nothing done yet: no rate
    assert progress.eta_seconds(60, 10, None) is None  # no total


def test_report_values_of_real_espnet_lines():
    lines = ESPNET_LOG.read_text().splitlines()
    second = next(line for line in lines if "1epoch:train:3-4batch" in line)
    values = progress.report_values(second.split("batch: ", 1)[1])
    assert values["loss_ctc"] == 17.932 and values["loss"] == 12.137  # no ", " between them
    assert values["optim0_lr0"] == 0.003 and values["train_time"] == 0.05
    assert progress.report_values("clip=0.000e+00, grad_norm=1.5e+03") == {"clip": 0.0, "grad_norm": 1500.0}


def test_train_progress_on_a_real_espnet_log():
    clock = Clock()
    tracker = progress.TrainProgress("phase dense", max_epoch=2, iters_per_epoch=6, clock=clock)
    out = []
    for i, line in enumerate(ESPNET_LOG.read_text().splitlines(), 1):
        clock.now = 10.0 * i
        out.append(tracker.feed(line))
    # first report: 2 steps in 50 s from the start; then the rate since it (start-up left out)
    assert [line for line in out if line] == [
        "phase dense: 2/12 steps (16.7%), epoch 1/2, loss 29.571, elapsed 50s, ETA 4m10s",
        "phase dense: 4/12 steps (33.3%), epoch 1/2, loss 12.137, elapsed 1m00s, ETA 40s",
        "phase dense: 6/12 steps (50.0%), epoch 1/2, loss 8.775, elapsed 1m10s, ETA 30s",
        "phase dense: 6/12 steps (50.0%), epoch 1/2 done, train loss 16.828, valid loss 7.691, valid cer 1.000, "
        "valid wer 1.000, elapsed 1m20s, ETA 45s",
        "phase dense: 8/12 steps (66.7%), epoch 2/2, loss 7.600, elapsed 1m40s, ETA 33s",
        "phase dense: 10/12 steps (83.3%), epoch 2/2, loss 7.006, elapsed 1m50s, ETA 15s",
        "phase dense: 12/12 steps (100.0%), epoch 2/2, loss 6.512, elapsed 2m00s, ETA 0s",
        "phase dense: 12/12 steps (100.0%), epoch 2/2 done, train loss 7.039, valid loss 6.173, valid cer 1.000, "
        "valid wer 1.000, elapsed 2m10s, ETA 0s",
    ]


SUMMARY = "[vm] 2026-12-06 20:08:50,644 (abs_task:1886) INFO: [{}] mini-batch sizes summary: N-batch={}, mean=16.0"
REPORT = "[vm] 2026-12-06 20:08:50,961 (trainer:811) INFO: {}epoch:train:{}batch: iter_time=0.012, loss=45.100"


def test_steps_per_epoch_from_the_log_and_eta_of_a_resumed_run():
    clock = Clock()
    tracker = progress.TrainProgress("phase train", max_epoch=6, clock=clock)
    assert tracker.feed(SUMMARY.format("valid", 20)) is None and tracker.total is None
    assert tracker.feed(SUMMARY.format("train", 500)) is None and tracker.total == 3000
    assert tracker.feed("[vm] ... INFO: 3/6epoch started. Estimated time to finish: 5 minutes") is None
    clock.now = 50
    # 100 steps of this run in 50 s; 1900 left
    assert tracker.feed(REPORT.format(3, "1-100")) == (
        "phase train: 1100/3000 steps (36.7%), epoch 3/6, loss 45.100, elapsed 50s, ETA 15m50s"
    )
    clock.now = 70
    # 100 steps in the 20 s since the first report; 1800 left
    assert tracker.feed(REPORT.format(3, "101-200")).endswith("elapsed 1m10s, ETA 6m00s")


def test_without_a_total_the_line_counts_the_epoch_batches():
    tracker = progress.TrainProgress("phase train", max_epoch=2, clock=Clock())
    assert tracker.feed(REPORT.format(1, "1-100")) == "phase train: 100 steps, epoch 1/2, loss 45.100, elapsed 0s, ETA ?"


def test_log_follower_returns_complete_new_lines(tmp_path):
    log = tmp_path / "train.log"
    follower = progress.LogFollower(log)
    assert follower.new_lines() == []  # not there yet
    log.write_text("# cmd\nfirst\nsec")
    assert follower.new_lines() == ["# cmd", "first"]
    with log.open("a") as f:
        f.write("ond\nthird\n")
    assert follower.new_lines() == ["second", "third"]
    assert follower.new_lines() == []
    log.write_text("new\n")  # rewritten
    assert follower.new_lines() == ["new"]


def test_follow_log_logs_the_progress_lines(tmp_path, caplog):
    log = tmp_path / "train.log"
    log.write_text(SUMMARY.format("train", 10) + "\n" + REPORT.format(1, "1-5") + "\n")
    watch = progress.follow_log(log, progress.TrainProgress("phase x", max_epoch=1))
    with caplog.at_level("INFO"):
        watch()
        watch()
    messages = [r.getMessage().split(", elapsed")[0] for r in caplog.records]
    assert messages == ["phase x: 5/10 steps (50.0%), epoch 1/1, loss 45.100"]


def test_work_progress_counts_sets_and_weights_the_eta_by_size():
    clock = Clock()
    work = progress.WorkProgress("decoding", [100, 300, 100], clock=clock)
    assert work.finish(100, "mls_en_test", skipped=True) == (
        "decoding: 0/400 utterances (0.0%), 1/3 sets (mls_en_test up to date), elapsed 0s, ETA ?"
    )
    clock.now = 90
    assert work.finish(300, "mls_fr_test") == (
        "decoding: 300/400 utterances (75.0%), 2/3 sets (mls_fr_test), elapsed 1m30s, ETA 30s"
    )
    clock.now = 120
    assert work.finish(100, "mls_it_test") == (
        "decoding: 400/400 utterances (100.0%), 3/3 sets (mls_it_test), elapsed 2m00s, ETA 0s"
    )
