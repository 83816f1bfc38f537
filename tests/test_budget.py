"""The request budget shared by every resource of a run."""

from __future__ import annotations

import threading
import time

import pytest

from wallet_elt.sources.wallet.client import FairSlots, RequestBudget


def _queued(slots: FairSlots, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(slots._waiters) < count:  # the only way to know a thread is parked in acquire()
        assert time.monotonic() < deadline, "a waiter never queued"
        time.sleep(0.001)


def test_a_released_slot_goes_to_the_longest_waiter_not_back_to_its_releaser() -> None:
    """A thread that releases and at once asks again (the next page of its parent) must queue
    behind the threads already waiting, or their parents' pages starve."""
    slots = FairSlots(1)
    slots.acquire()
    order: list[str] = []

    def wait(name: str) -> None:
        slots.acquire()
        order.append(name)
        slots.release()

    waiters = [threading.Thread(target=wait, args=(name,)) for name in ("a", "b", "c")]
    for count, thread in enumerate(waiters, start=1):
        thread.start()
        _queued(slots, count)
    slots.release()
    slots.acquire()
    order.append("releaser")
    slots.release()
    for thread in waiters:
        thread.join(timeout=5)
    assert order == ["a", "b", "c", "releaser"]


def test_free_slots_are_taken_without_waiting_and_counted_back() -> None:
    slots = FairSlots(2)
    slots.acquire()
    slots.acquire()
    got = threading.Event()
    thread = threading.Thread(target=lambda: (slots.acquire(), got.set()))
    thread.start()
    _queued(slots, 1)
    assert not got.is_set()
    slots.release()
    thread.join(timeout=5)
    assert got.is_set()
    slots.release()
    slots.release()
    both = threading.Thread(target=lambda: (slots.acquire(), slots.acquire()))
    both.start()
    both.join(timeout=5)
    assert not both.is_alive(), "both slots should be free again"


class FakeTime:
    """The budget's clock and sleep: time moves only when the test (or a paced acquire) says."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _answer(budget: RequestBudget, clock: FakeTime, count: int, per_second: float,
            status: int = 200) -> None:
    """`count` requests, each answered `status` 1/per_second after it was sent."""
    for _ in range(count):
        ticket = budget.acquire()
        budget.release()
        clock.now += 1 / per_second
        budget.answered(ticket, status)


def test_an_unconfigured_budget_adopts_half_the_achieved_rate_on_the_first_429() -> None:
    clock = FakeTime()
    budget = RequestBudget(0, 8, clock=clock.clock, sleep=clock.sleep)
    _answer(budget, clock, 200, per_second=40)
    assert budget.rate == 0 and clock.slept == [], "unpaced until the server pushes back"
    _answer(budget, clock, 1, per_second=40, status=429)
    assert budget.rate == pytest.approx(20, rel=0.02)
    for _ in range(3):
        budget.acquire()
        budget.release()
    assert sum(clock.slept) == pytest.approx(2 / budget.rate, rel=0.02), "now paced"


def test_429s_of_requests_sent_before_a_cut_cut_only_once() -> None:
    clock = FakeTime()
    budget = RequestBudget(0, 8, clock=clock.clock, sleep=clock.sleep)
    _answer(budget, clock, 200, per_second=40)
    in_flight = [budget.acquire() for _ in range(8)]
    for ticket in in_flight:
        budget.release()
        budget.answered(ticket, 429)
    assert budget.rate == pytest.approx(20, rel=0.02), "one burst, one cut"
    _answer(budget, clock, 1, per_second=20, status=429)
    assert budget.MIN_RATE <= budget.rate < 20 / 1.5, "a 429 sent at the new rate cuts again"


def test_successes_recover_the_rate_additively_up_to_the_configured_cap() -> None:
    clock = FakeTime()
    budget = RequestBudget(10, 4, clock=clock.clock, sleep=clock.sleep)
    _answer(budget, clock, 50, per_second=10)
    _answer(budget, clock, 1, per_second=10, status=429)
    assert budget.rate == pytest.approx(5, rel=0.02)
    rates = [budget.rate]
    while budget.rate < 10:
        _answer(budget, clock, 1, per_second=budget.rate)
        rates.append(budget.rate)
        assert len(rates) < 1000, "never recovered"
    # One success adds step/rate, so a second's worth of successes adds `step` (1/s here).
    gained = [after - before for before, after in zip(rates, rates[1:], strict=False)]
    assert all(g == pytest.approx(1 / r) for g, r in zip(gained[:-1], rates, strict=False))
    _answer(budget, clock, 100, per_second=10)
    assert budget.rate == 10, "never above the configured cap"


def test_a_429_before_any_answer_falls_to_the_floor_not_to_unpaced() -> None:
    clock = FakeTime()
    budget = RequestBudget(0, 8, clock=clock.clock, sleep=clock.sleep)
    _answer(budget, clock, 1, per_second=10, status=429)
    assert budget.rate == budget.MIN_RATE


def test_a_configured_rate_paces_from_the_first_request() -> None:
    clock = FakeTime()
    budget = RequestBudget(4, 1, clock=clock.clock, sleep=clock.sleep)
    for _ in range(3):
        budget.acquire()
        budget.release()
    assert clock.slept == [pytest.approx(0.25), pytest.approx(0.25)]
