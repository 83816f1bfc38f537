"""`wallet-elt check`: does the key work, and which routes does this account serve?

Like Airbyte's `check`, it costs little: one request proves the key, then one cheap request
per route (the first page, page size 1, the smallest window of the last day; a child asks for
one parent, whose key the parent route's first page gives, once per parent route). Requests
go through the source's client, so its retries and request budget apply."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pendulum

from wallet_elt.sources.wallet.catalog import Entry, entries_by_name
from wallet_elt.sources.wallet.client import (
    CANARY_PATH,
    AuthRejected,
    BaseUrlWrong,
    RouteNotServed,
    WalletClient,
    WalletError,
)
from wallet_elt.sources.wallet.strategies import Extraction, Runner, Settings
from wallet_elt.sources.wallet.windows import Span

Verdict = Literal["served", "not served", "forbidden", "slow", "failing", "untested"]
SLOW_SECONDS = 5.0  # a probe of one record slower than this would make a run crawl


@dataclass(frozen=True)
class Probe:
    resource: str
    route: str
    verdict: Verdict
    seconds: float
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 3)}


def _first(pages: Iterator[Any]) -> Any:
    """The first page (None when there is none), the rest never requested."""
    try:
        return next(pages, None)
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


class Prober:
    def __init__(self, client: WalletClient, *, timezone: str = "UTC", locale: str = "en-US",
                 slow_seconds: float = SLOW_SECONDS) -> None:
        now = pendulum.now("UTC")
        day = Span(now.subtract(days=1), now)
        # Bounded to the last day, one record a page, one-day windows: the cheapest request.
        settings = Settings(start_date=day.start, window_step_days=1, series_window_days=1,
                            series_backfill_days=1, page_size=1, timezone=timezone,
                            locale=locale, bounded=day, parent_concurrency=1)
        self.ctx = Extraction(client, settings, now=now)
        self.slow_seconds = slow_seconds
        self._parents: dict[tuple[str, str], str | None] = {}
        self._parent_lock = threading.Lock()

    def key_works(self) -> None:
        """One request; AuthRejected (401/403 or no key) or BaseUrlWrong if it does not."""
        self.ctx.client.request("GET", CANARY_PATH)

    def _parent(self, name: str, field: str) -> str | None:
        """One key of parent `name` for a child: its route's first record (asked once)."""
        with self._parent_lock:
            if (name, field) not in self._parents:
                page = _first(self.ctx.fetch(entries_by_name()[name], {}, {}))
                value = page[0].get(field) if page else None
                self._parents[name, field] = None if value is None else str(value)
            return self._parents[name, field]

    def probe(self, entry: Entry) -> Probe:
        started = time.monotonic()
        try:
            parent = self._parent(entry.parent, entry.parent_field) if entry.parent else None
            if entry.parent and parent is None:
                return Probe(entry.name, entry.route, "untested", time.monotonic() - started,
                             f"its parent {entry.parent} has no record to ask for")
            _first(Runner(self.ctx, entry, {}, parent).run())
        except BaseUrlWrong:
            raise  # nothing can be probed: the caller says so
        except RouteNotServed as err:
            return Probe(entry.name, entry.route, "not served", time.monotonic() - started,
                         str(err))
        except AuthRejected as err:
            return Probe(entry.name, entry.route, "forbidden", time.monotonic() - started,
                         str(err))
        except WalletError as err:
            return Probe(entry.name, entry.route, "failing", time.monotonic() - started,
                         str(err))
        seconds = time.monotonic() - started
        if seconds > self.slow_seconds:
            return Probe(entry.name, entry.route, "slow", seconds,
                         f"{seconds:.1f} s for one record (threshold {self.slow_seconds:g} s)")
        return Probe(entry.name, entry.route, "served", seconds)

    def probe_all(self, entries: Sequence[Entry], workers: int) -> list[Probe]:
        """In catalog order; `workers` at once, under the client's budget."""
        with ThreadPoolExecutor(max_workers=max(1, workers),
                                thread_name_prefix="wallet-check") as pool:
            return list(pool.map(self.probe, entries))


def table(probes: Sequence[Probe]) -> list[str]:
    width = max((len(probe.resource) for probe in probes), default=8)
    lines = [f"{'resource':<{width}}  {'verdict':<10}  {'ms':>6}  route / detail"]
    for probe in probes:
        detail = f"  {probe.detail}" if probe.verdict != "served" else ""
        lines.append(f"{probe.resource:<{width}}  {probe.verdict:<10}  "
                     f"{probe.seconds * 1000:>6.0f}  {probe.route}{detail}")
    return lines


def tally(probes: Sequence[Probe]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for probe in probes:
        counts[probe.verdict] = counts.get(probe.verdict, 0) + 1
    return counts
