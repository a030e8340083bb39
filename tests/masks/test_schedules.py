"""Sparsity schedules are pure functions of the event/step."""

import pytest

from espnet_pathways.masks import SparsitySchedule, constant_sparsity, cubic_sparsity, geometric_sparsity


def test_cubic_endpoints_and_shape():
    assert cubic_sparsity(0, 10, 0.1, 0.7) == pytest.approx(0.1)
    assert cubic_sparsity(10, 10, 0.1, 0.7) == pytest.approx(0.7)
    assert cubic_sparsity(5, 10, 0.0, 0.8) == pytest.approx(0.8 - 0.8 * 0.5**3)
    values = [cubic_sparsity(k, 10, 0.0, 0.7) for k in range(12)]
    assert values == sorted(values) and values[-1] == pytest.approx(0.7)
    steps = [b - a for a, b in zip(values, values[1:10])]
    assert steps == sorted(steps, reverse=True), "cubic prunes fast first, slowly at the end"


def test_geometric_removes_fraction_of_remaining():
    assert geometric_sparsity(1, 0.2, 0.0, 0.9) == pytest.approx(0.2)
    assert geometric_sparsity(2, 0.2, 0.0, 0.9) == pytest.approx(1 - 0.8**2)
    assert geometric_sparsity(50, 0.2, 0.0, 0.7) == 0.7


def test_constant():
    assert constant_sparsity(0, 0.7) == constant_sparsity(9, 0.7) == 0.7


def test_schedule_events_and_steps():
    sched = SparsitySchedule("cubic", final=0.7, initial=0.1, start=10, interval=5, num_events=4)
    assert sched.events()[0] == (10, pytest.approx(0.1))
    assert sched.events()[-1] == (30, pytest.approx(0.7))
    assert [sched.event_at(s) for s in (9, 10, 12, 15, 30, 35)] == [None, 0, None, 1, 4, None]
    assert sched.sparsity_at(0) == 0.0
    assert sched.sparsity_at(14) == pytest.approx(0.1)
    assert sched.sparsity_at(1000) == pytest.approx(0.7)
    assert sched.end == 30


def test_geometric_schedule_reaches_target_exactly():
    sched = SparsitySchedule("geometric", final=0.7, rate=0.2, interval=3)
    steps, values = zip(*sched.events())
    assert values[-1] == pytest.approx(0.7)
    assert values[-2] < 0.7
    assert list(steps) == [3 * k for k in range(len(steps))]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="linear", final=0.5), "unknown kind"),
        (dict(kind="constant", final=1.0), "target_sparsity"),
        (dict(kind="constant", final=-0.1), "target_sparsity"),
        (dict(kind="cubic", final=0.5, initial=0.6, num_events=3), "exceeds"),
        (dict(kind="cubic", final=0.5), "num_events"),
        (dict(kind="geometric", final=0.5, rate=1.5), "rate"),
        (dict(kind="constant", final=0.5, interval=0), "prune_interval"),
    ],
)
def test_invalid_schedules(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SparsitySchedule(**kwargs)
