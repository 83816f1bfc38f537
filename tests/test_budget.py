"""The request budget shared by every resource of a run."""

from __future__ import annotations

import threading
import time

from sources.wallet.client import FairSlots


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
