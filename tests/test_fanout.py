"""Fan-out over parents: everything produced is yielded, failures surface after the drain; a
failed parent ends alone unless the route looks down for every parent."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from wallet_elt.sources.wallet.client import RouteFailed
from wallet_elt.sources.wallet.fanout import DOWN_AFTER, ParentPass, fan_out


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


@pytest.mark.parametrize("workers", [1, 4])
def test_a_parent_that_fails_ends_alone_and_only_completed_parents_are_done(
        workers: int) -> None:
    done: list[int] = []
    got: list[tuple[int, int]] = []

    def produce(parent: int) -> Iterator[tuple[int, int]]:
        yield parent, 0
        if parent in (3, 17):
            raise RouteFailed(f"parent {parent} kept failing")
        yield from ((parent, page) for page in range(1, 3))

    def mark(parent: int) -> None:
        assert (parent, 2) in got, "done only after every item of the parent was yielded"
        done.append(parent)

    with pytest.raises(RouteFailed, match=r"parent \d+ kept failing \(2 of 40 parents"):
        for item in fan_out(list(range(40)), produce, workers, done=mark):
            got.append(item)
    assert sorted(done) == [p for p in range(40) if p not in (3, 17)]
    assert len(got) == len(set(got)) == 38 * 3 + 2, "the failed parents' first pages are kept"


@pytest.mark.parametrize("workers", [1, 4])
def test_parents_failing_in_a_row_mean_the_route_is_down_and_the_rest_never_start(
        workers: int) -> None:
    started: list[int] = []

    def produce(parent: int) -> Iterator[int]:
        started.append(parent)
        raise RouteFailed("connection refused")
        yield parent  # a generator, as real producers are

    with pytest.raises(RouteFailed, match="route looks down"):
        list(fan_out(list(range(100)), produce, workers))
    assert len(started) <= DOWN_AFTER + workers, "no parent starts once the route is down"


def test_a_pass_fetches_what_earlier_runs_left_then_starts_again_over_every_parent() -> None:
    state: dict[str, object] = {}
    slices: dict[str, dict[str, object]] = {key: {} for key in "abcd"}
    first = ParentPass(state, slices)
    assert first.pending == list("abcd")
    first.done("a")
    first.done("c")
    second = ParentPass(state, slices)  # the next run, after a partial one
    assert second.pending == ["b", "d"]
    slices["e"] = {}  # a parent that appeared meanwhile belongs to the current pass
    third = ParentPass(state, slices)
    assert third.pending == ["b", "d", "e"]
    for key in third.pending:
        third.done(key)
    fourth = ParentPass(state, slices)
    assert fourth.pending == list("abcde") and fourth.number == third.number + 1
    for key in fourth.pending:
        fourth.done(key)
    slices["f"] = {}  # new after a complete pass: the next pass covers every parent
    assert ParentPass(state, slices).pending == list("abcdef")
