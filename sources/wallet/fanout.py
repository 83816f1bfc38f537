"""Fan-out: pages of many parents fetched concurrently, yielded as they arrive.

After the first failure no parent starts and none asks for another page (a route that is down
for one parent is down for all: waiting out every parent's retries would only cost time).
Every page a worker already produced is still yielded: its parent's cursor may have moved past
it, so dropping it would lose data. The first failure is raised after the drain.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
P = TypeVar("P")

_DONE = object()


def fan_out(parents: Sequence[P], produce: Callable[[P], Iterator[T]],
            workers: int) -> Iterator[T]:
    if workers <= 1 or len(parents) <= 1:
        for parent in parents:
            yield from produce(parent)
        return
    results: queue.Queue[object] = queue.Queue(maxsize=workers * 2)
    stop = threading.Event()
    errors: list[BaseException] = []

    def work(parent: P) -> None:
        try:
            if errors:
                return
            for item in produce(parent):
                while not stop.is_set():
                    try:
                        results.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set() or errors:
                    return
        except BaseException as err:  # noqa: BLE001 (re-raised in the consumer)
            errors.append(err)
        finally:
            results.put(_DONE)

    pool = ThreadPoolExecutor(max_workers=min(workers, len(parents)),
                              thread_name_prefix="wallet-fanout")
    try:
        for parent in parents:
            pool.submit(work, parent)
        finished = 0
        while finished < len(parents):
            item = results.get()
            if item is _DONE:
                finished += 1
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
    if errors:
        raise errors[0]
