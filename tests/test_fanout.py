"""Fan-out over parents: everything produced is yielded, failures surface after the drain."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from sources.wallet.fanout import fan_out


def pages_of(parent: int) -> Iterator[tuple[int, int]]:
    for page in range(3):
        time.sleep(0.001 * (parent % 3))
        yield parent, page


@pytest.mark.parametrize("workers", [1, 4])
def test_every_page_of_every_parent_is_yielded_once(workers: int) -> None:
    got = list(fan_out(list(range(10)), pages_of, workers))
    assert sorted(got) == [(p, n) for p in range(10) for n in range(3)]


def test_after_a_failure_no_parent_starts_but_produced_pages_are_kept() -> None:
    started: list[int] = []

    def produce(parent: int) -> Iterator[tuple[int, int]]:
        started.append(parent)
        if parent == 0:
            yield parent, 0
            raise RuntimeError("route failed")
        time.sleep(0.05)
        yield from pages_of(parent)

    got: list[tuple[int, int]] = []
    with pytest.raises(RuntimeError, match="route failed"):
        for item in fan_out(list(range(40)), produce, 2):
            got.append(item)
    assert (0, 0) in got, "a page produced before the failure is still yielded"
    assert len(started) < 40, "parents queued after the failure never start"
    assert len(got) == len(set(got))


def test_closing_early_stops_the_workers() -> None:
    def endless(parent: int) -> Iterator[int]:
        while True:
            yield parent

    items = fan_out(list(range(4)), endless, 4)
    assert next(items) in range(4)
    started = time.monotonic()
    items.close()  # type: ignore[attr-defined]
    assert time.monotonic() - started < 5
