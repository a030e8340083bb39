"""Sparsity schedules (cubic, geometric, constant) as pure functions of the pruning event or the optimizer step.

Steps count completed optimizer steps: an event at step ``t`` happens right after the ``t``-th
optimizer step (``t = 0``: before training starts). Events fire at ``start + k * interval``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

from espnet_pathways.masks.ranking import check_sparsity

__all__ = [
    "cubic_sparsity",
    "geometric_sparsity",
    "constant_sparsity",
    "SparsitySchedule",
    "SCHEDULES",
]

SCHEDULES = ("cubic", "geometric", "constant")


def cubic_sparsity(event: int, num_events: int, initial: float, final: float) -> float:
    """Zhu & Gupta (2018): ``s_k = s_f + (s_i - s_f) * (1 - k / N) ** 3`` for k = 0..N (clamped)."""
    if num_events <= 0:
        return final
    k = min(max(event, 0), num_events)
    return final + (initial - final) * (1.0 - k / num_events) ** 3


def geometric_sparsity(event: int, rate: float, initial: float, final: float) -> float:
    """Classic IMP: each event removes ``rate`` of the remaining weights, capped at ``final``.

    ``s_k = min(s_f, 1 - (1 - s_i) * (1 - rate) ** k)``.
    """
    return min(final, 1.0 - (1.0 - initial) * (1.0 - rate) ** max(event, 0))


def constant_sparsity(event: int, final: float) -> float:
    """One-shot: the final sparsity from the first event on."""
    return final


@dataclass(frozen=True)
class SparsitySchedule:
    """When pruning events fire and the sparsity each one reaches.

    Args:
        kind: ``cubic`` | ``geometric`` | ``constant``.
        final: target sparsity s_f in [0, 1).
        initial: sparsity s_i of the first event (cubic, geometric).
        start: step t0 of the first event.
        interval: steps T between events (> 0).
        num_events: N for ``cubic`` (events k = 0..N, so N + 1 in all).
        rate: fraction p of the remaining weights removed per event for ``geometric``.
    """

    kind: str
    final: float
    initial: float = 0.0
    start: int = 0
    interval: int = 1
    num_events: Optional[int] = None
    rate: Optional[float] = None

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"schedule: unknown kind {self.kind!r} (choose from {', '.join(SCHEDULES)})")
        check_sparsity(self.final, "target_sparsity")
        check_sparsity(self.initial, "initial_sparsity")
        if self.initial > self.final:
            raise ValueError(f"initial_sparsity {self.initial} exceeds target_sparsity {self.final}")
        if self.interval <= 0:
            raise ValueError(f"prune_interval must be > 0, got {self.interval}")
        if self.start < 0:
            raise ValueError(f"start step must be >= 0, got {self.start}")
        if self.kind == "cubic" and (self.num_events is None or self.num_events < 0):
            raise ValueError("cubic schedule needs num_events >= 0")
        if self.kind == "geometric" and not (self.rate is not None and 0.0 < self.rate < 1.0):
            raise ValueError(f"geometric schedule needs 0 < rate < 1, got {self.rate!r}")

    @property
    def last_event(self) -> int:
        """Index of the event that reaches the final sparsity."""
        if self.kind == "constant":
            return 0
        if self.kind == "cubic":
            return int(self.num_events)
        if self.final <= self.initial:
            return 0
        ratio = (1.0 - self.final) / (1.0 - self.initial)
        return max(0, math.ceil(math.log(ratio) / math.log(1.0 - self.rate) - 1e-9))

    def sparsity_of_event(self, event: int) -> float:
        """Sparsity reached by event ``event`` (0-based)."""
        if self.kind == "cubic":
            return cubic_sparsity(event, int(self.num_events), self.initial, self.final)
        if self.kind == "geometric":
            return geometric_sparsity(event, float(self.rate), self.initial, self.final)
        return constant_sparsity(event, self.final)

    def event_at(self, step: int) -> Optional[int]:
        """The event index that fires at ``step``, or None."""
        offset = step - self.start
        if offset < 0 or offset % self.interval:
            return None
        event = offset // self.interval
        return event if event <= self.last_event else None

    def sparsity_at(self, step: int) -> float:
        """Sparsity in force after ``step`` (0 before the first event)."""
        if step < self.start:
            return 0.0
        event = min((step - self.start) // self.interval, self.last_event)
        return self.sparsity_of_event(event)

    def events(self) -> List[Tuple[int, float]]:
        """All (step, sparsity) pairs of the schedule."""
        return [
            (self.start + k * self.interval, self.sparsity_of_event(k))
            for k in range(self.last_event + 1)
        ]

    @property
    def end(self) -> int:
        """Step of the last event."""
        return self.start + self.last_event * self.interval
