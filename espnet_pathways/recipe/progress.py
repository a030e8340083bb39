"""Progress lines on the console for the long stages: training (11) and decoding (12).

Training: :class:`LogFollower` reads ``<exp>/train.log`` as it grows, :class:`TrainProgress`
condenses ESPnet's trainer lines (the full log stays in the file)::

    1epoch:train:101-200batch: iter_time=0.012, ..., loss=45.100, ...
      -> phase dense: 200/3000 steps (6.7%), epoch 1/6, loss 45.100, elapsed 1m02s, ETA 14m28s
    1epoch results: [train] ..., loss=40.200, ..., [valid] ..., cer=0.410, wer=0.830, loss=38.100, ...
      -> phase dense: 500/3000 steps (16.7%), epoch 1/6 done, train loss 40.200, valid loss 38.100, ...

Total steps = max_epoch x steps per epoch (``num_iters_per_epoch``, else the ``N-batch`` of the
training iterator that ESPnet logs); the ETA goes at the rate since the first report of this run
(start-up excluded; the first report: the rate since the start). Decoding: :class:`WorkProgress`
gives a line per finished test set, its ETA at the rate in utterances since the start.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

__all__ = [
    "format_duration", "eta_seconds", "progress_line", "report_values", "LogFollower", "TrainProgress",
    "WorkProgress", "follow_log",
]

_TRAIN_REPORT = re.compile(r"(\d+)epoch:train:(\d+)-(\d+)batch: (.*)")
_EPOCH_STARTED = re.compile(r"(\d+)/(\d+)epoch started")
_EPOCH_RESULTS = re.compile(r"(\d+)epoch results: (.*)")
_TRAIN_BATCHES = re.compile(r"\[train\] mini-batch sizes summary: N-batch=(\d+)")
_SECTION = re.compile(r"\[(\w+)\] ([^\[]*)")
# ESPnet's reporter sometimes leaves out the ", " between two pairs ("loss_ctc=6.6loss=7.0")
_VALUE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(-?\d+(?:\.\d+)?(?:e[+-]\d+)?)")
_EPOCH_METRICS = (("train", "loss"), ("valid", "loss"), ("valid", "cer"), ("valid", "wer"))


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def eta_seconds(elapsed: float, done: float, total: Optional[float]) -> Optional[float]:
    """Time left if the rest goes at the rate so far; None without a total or before any work."""
    if total is None or done <= 0:
        return None
    return elapsed / done * max(total - done, 0)


def progress_line(label: str, done: int, total: Optional[int], unit: str, elapsed: float,
                  eta: Optional[float], details: Sequence[str] = ()) -> str:
    """``<label>: <done>/<total> <unit> (<%>), <details>, elapsed <t>, ETA <t>``."""
    count = f"{done}/{total} {unit} ({100 * done / total:.1f}%)" if total else f"{done} {unit}"
    eta_text = format_duration(eta) if eta is not None else "?"
    return ", ".join([f"{label}: {count}", *details, f"elapsed {format_duration(elapsed)}", f"ETA {eta_text}"])


def report_values(text: str) -> Dict[str, float]:
    """The numeric ``key=value`` pairs of an ESPnet report."""
    return {key: float(value) for key, value in _VALUE.findall(text)}


class LogFollower:
    """The complete lines a growing file gained since the last call (a polled ``tail -f``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = 0
        self.partial = b""

    def new_lines(self) -> List[str]:
        if not self.path.is_file():
            return []
        if self.path.stat().st_size < self.offset:  # rewritten: start over
            self.offset, self.partial = 0, b""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        return [line.decode("utf-8", errors="replace").rstrip("\r") for line in lines]


class TrainProgress:
    """Progress lines of one training run from the lines of its ESPnet log.

    Args:
        label: what the lines start with (``phase dense``).
        max_epoch: the run's ``max_epoch``.
        iters_per_epoch: its ``num_iters_per_epoch``; None: the log's ``[train] ... N-batch=``.
        clock: seconds (``time.monotonic``); elapsed time counts from the object's creation.
    """

    def __init__(self, label: str, max_epoch: int, iters_per_epoch: Optional[int] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.max_epoch = max_epoch
        self.iters_per_epoch = iters_per_epoch
        self.clock = clock
        self.start = clock()
        self.first_step: Optional[int] = None  # where this run started (a resumed one: a later epoch)
        self.rate_from: Optional[Tuple[float, int]] = None  # (time, step) of the first report

    @property
    def total(self) -> Optional[int]:
        return self.max_epoch * self.iters_per_epoch if self.iters_per_epoch else None

    def feed(self, line: str) -> Optional[str]:
        """The progress line that ``line`` of the log gives, if any."""
        m = _TRAIN_BATCHES.search(line)
        if m and self.iters_per_epoch is None:
            self.iters_per_epoch = int(m.group(1))
            return None
        m = _EPOCH_STARTED.search(line)
        if m and self.first_step is None:
            self.first_step = (int(m.group(1)) - 1) * (self.iters_per_epoch or 0)
            return None
        m = _TRAIN_REPORT.search(line)
        if m:
            loss = report_values(m.group(4)).get("loss")
            return self._line(int(m.group(1)), int(m.group(3)), [] if loss is None else [f"loss {loss:.3f}"])
        m = _EPOCH_RESULTS.search(line)
        if m:
            sections = {name: report_values(text) for name, text in _SECTION.findall(m.group(2))}
            details = [f"{s} {k} {sections[s][k]:.3f}" for s, k in _EPOCH_METRICS if k in sections.get(s, {})]
            return self._line(int(m.group(1)), self.iters_per_epoch or 0, details, done=True)
        return None

    def _line(self, epoch: int, batch: int, details: List[str], done: bool = False) -> str:
        now = self.clock()
        elapsed = now - self.start
        epoch_text = f"epoch {epoch}/{self.max_epoch}" + (" done" if done else "")
        if not self.iters_per_epoch:  # no total known: count the batches of the epoch
            return progress_line(self.label, batch, None, "steps", elapsed, None, [epoch_text, *details])
        step = (epoch - 1) * self.iters_per_epoch + batch
        since, first = self.rate_from or (self.start, self.first_step or 0)
        eta = eta_seconds(now - since, step - first, self.total - first)
        self.rate_from = self.rate_from or (now, step)
        return progress_line(self.label, step, self.total, "steps", elapsed, eta, [epoch_text, *details])


def follow_log(log: Path, progress: TrainProgress) -> Callable[[], None]:
    """A ``watch`` for :func:`espnet_pathways.recipe.jobs.run_parallel`: logs the progress lines
    of what ``log`` gained since the last call."""
    follower = LogFollower(log)

    def watch() -> None:
        for line in follower.new_lines():
            message = progress.feed(line)
            if message:
                logging.info("%s", message)

    return watch


class WorkProgress:
    """Progress over items of known sizes (test sets of N utterances); the ETA follows the sizes.

    An item found up to date (``skipped``) leaves the total instead of counting as work done.
    """

    def __init__(self, label: str, sizes: Sequence[int], clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.clock = clock
        self.start = clock()
        self.items = 0
        self.total_items = len(sizes)
        self.done = 0
        self.total = sum(sizes)

    def finish(self, size: int, name: str, skipped: bool = False) -> str:
        """Count item ``name`` of ``size`` as finished; returns its progress line."""
        self.items += 1
        if skipped:
            self.total -= size
        else:
            self.done += size
        elapsed = self.clock() - self.start
        note = f"{self.items}/{self.total_items} sets ({name}{' up to date' if skipped else ''})"
        eta = eta_seconds(elapsed, self.done, self.total)
        return progress_line(self.label, self.done, self.total, "utterances", elapsed, eta, [note])
