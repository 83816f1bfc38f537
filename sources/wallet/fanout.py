"""Fan-out: pages of many parents fetched concurrently, yielded as they arrive.

A parent whose route fails (`RouteFailed`, after its retries) ends alone: under transient
faults one parent running out of attempts says nothing about the others, and stopping them
all made a large child restart from nothing on every run without ever finishing. Only when
`DOWN_AFTER` parents in a row fail, with none completing in between, is the route taken to be
down for everyone: then no further parent starts and none asks for another page, since
waiting out every parent's retries would only cost time. Any other error (a rejected key, the
consumer closing) stops every parent at once.

A route that answered 404/410 (`RouteNotServed`) for every parent tried, none completing, is
not served at all (the first `DOWN_AFTER` parents decide, as above): that is what is raised,
so the resource ends as not served rather than failed.

Every page a worker already produced is still yielded: its parent's cursor may have moved past
it, so dropping it would lose data. Failures are raised after the drain.

`ParentPass` lets a child that merges resume where a failed run stopped: the parents completed
in the current pass are not fetched again until every parent has completed once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from wallet_elt.sources.wallet.client import RouteFailed, RouteNotServed

T = TypeVar("T")
P = TypeVar("P")

DOWN_AFTER = 5  # parents failing in a row that make a route "down for everyone"


@dataclass(frozen=True)
class _Outcome(Generic[P]):
    """A worker's last word on its parent, read by the consumer after the parent's pages (so
    `done` follows the last of them): completed, or not (failed, never began, or stopped
    between pages because the fan-out was stopping)."""

    parent: P
    completed: bool = False


class _Tally:
    """How the parents ended; decides when the route is down and what to raise."""

    def __init__(self, total: int, down_after: int) -> None:
        self.total = total
        self.down_after = down_after
        self.failures: list[RouteFailed] = []
        self.in_a_row = 0
        self.completed = 0
        self.fatal: BaseException | None = None
        self._lock = threading.Lock()

    @property
    def stopped(self) -> bool:
        return self.fatal is not None or (0 < self.down_after <= self.in_a_row)

    def record(self, error: BaseException | None) -> None:
        """A parent ended (error None: completed); called as it ends, from its worker."""
        with self._lock:
            self._record(error)

    def _record(self, error: BaseException | None) -> None:
        if error is None:
            self.in_a_row = 0
            self.completed += 1
        elif isinstance(error, RouteFailed):
            self.failures.append(error)
            self.in_a_row += 1
        elif self.fatal is None:
            self.fatal = error

    def raise_failures(self) -> None:
        if self.fatal is not None:
            raise self.fatal
        if not self.failures:
            return
        first, failed = self.failures[0], len(self.failures)
        if self.total == 1:
            raise first
        if not self.completed and all(isinstance(e, RouteNotServed) for e in self.failures):
            raise RouteNotServed(f"{first} (and so did every parent tried: {failed})") from first
        if self.stopped:
            raise RouteFailed(f"{first} ({failed} parents failed in a row, so the route looks "
                              "down for every parent; the rest were not tried)") from first
        raise RouteFailed(f"{first} ({failed} of {self.total} parents failed; the others "
                          "loaded)") from first


def fan_out(parents: Sequence[P], produce: Callable[[P], Iterator[T]], workers: int, *,
            done: Callable[[P], None] | None = None,
            down_after: int = DOWN_AFTER) -> Iterator[T]:
    """Every item of every parent; `done(parent)` is called once all of a parent's items were
    yielded (never for a parent that failed or was stopped)."""
    tally = _Tally(len(parents), down_after)

    if workers <= 1 or len(parents) <= 1:
        for parent in parents:
            if tally.stopped:
                break
            try:
                yield from produce(parent)
            except RouteFailed as err:
                tally.record(err)
            else:
                tally.record(None)
                if done is not None:
                    done(parent)
        tally.raise_failures()
        return
    results: queue.Queue[object] = queue.Queue(maxsize=workers * 2)
    stop = threading.Event()

    def work(parent: P) -> None:
        outcome: _Outcome[P] = _Outcome(parent)
        try:
            if stop.is_set():
                return
            for item in produce(parent):
                while not stop.is_set():
                    try:
                        results.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return  # neither done nor failed: the parent is simply not finished
            outcome = _Outcome(parent, completed=True)
            tally.record(None)
        except BaseException as err:  # noqa: BLE001 (judged here, re-raised by the consumer)
            tally.record(err)
        finally:
            if tally.stopped:
                stop.set()
            results.put(outcome)

    pool = ThreadPoolExecutor(max_workers=min(workers, len(parents)),
                              thread_name_prefix="wallet-fanout")
    try:
        for parent in parents:
            pool.submit(work, parent)
        finished = 0
        while finished < len(parents):
            item = results.get()
            if isinstance(item, _Outcome):
                finished += 1
                if item.completed and done is not None:
                    done(item.parent)
            else:
                yield item  # type: ignore[misc]
    finally:
        stop.set()
        # Unblock workers still waiting to hand over a page, then let them end.
        while True:
            try:
                results.get_nowait()
            except queue.Empty:
                break
        pool.shutdown(wait=True, cancel_futures=True)
    tally.raise_failures()


class ParentPass(Generic[P]):
    """One full pass over a child's parents, spread over as many runs as it takes.

    `state["pass"]` numbers the current pass, `state["pass_open"]` says a run left it
    unfinished, and each parent's slice of state remembers the pass it last completed in
    (`"pass"`). After an unfinished pass a run fetches only the parents the pass still lacks
    (a parent that appeared meanwhile included); otherwise it starts a new pass over every
    parent, so a new parent alone never makes a run skip the others. Only for children that
    merge: their completed parents' rows are already in the table, whereas a `replace` or
    `append` table needs every parent in every run.
    """

    def __init__(self, state: dict[str, Any], slices: dict[P, dict[str, Any]]) -> None:
        self.state, self.slices = state, slices
        self.number = int(state.get("pass", 0))
        self.pending: list[P] = []
        if state.get("pass_open"):
            self.pending = [key for key, part in slices.items()
                            if part.get("pass") != self.number]
        if not self.pending:
            self.number += 1
            self.pending = list(slices)
        self._left = set(self.pending)
        state["pass"] = self.number
        state["pass_open"] = bool(self._left)

    def done(self, parent: P) -> None:
        self.slices[parent]["pass"] = self.number
        self._left.discard(parent)
        if not self._left:
            self.state["pass_open"] = False
