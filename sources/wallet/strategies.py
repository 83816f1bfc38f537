"""How each catalog entry becomes rows, and what its state remembers.

A strategy yields pages (lists of rows). State is a plain dict (the dlt resource state) keyed
per parent, and it only moves after the rows that justify it were yielded; dlt commits it with
the load package, so a crash before the load keeps the old cursor.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pendulum
from pendulum import DateTime

from sources.wallet import windows
from sources.wallet.catalog import Entry, Strategy, entries_by_name
from sources.wallet.client import RouteFailed, WalletClient
from sources.wallet.paging import pages
from sources.wallet.windows import Span

Rows = list[dict[str, Any]]
NO_PARENT = "_"


@dataclass(frozen=True)
class Settings:
    """Run settings, resolved from config (see .dlt/config.toml for the documented defaults)."""

    start_date: DateTime
    window_step_days: float = 30.0
    lookback_days: float = 3.0
    analytics_lookback_days: float = 7.0
    series_backfill_days: int = 30
    series_window_days: int = 1
    page_size: int = 500
    timezone: str = "UTC"
    locale: str = "en-US"
    parent_concurrency: int = 8  # a child's parents fetched at once (under the same budget)
    # A bounded backfill: windows cover exactly [start, end) and state is left alone.
    bounded: Span | None = None


@dataclass
class Extraction:
    """What every resource of one run shares: the client, settings, the run's clock and the
    parents' keys (fetched once per run, whichever child asks first)."""

    client: WalletClient
    settings: Settings
    now: DateTime = field(default_factory=lambda: pendulum.now("UTC"))
    failures: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    arrow_rows: dict[str, int] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)  # resources done (run progress)
    _parents: dict[str, list[str]] = field(default_factory=dict)
    _parent_errors: dict[str, RouteFailed] = field(default_factory=dict)
    _parent_locks: dict[str, threading.Lock] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def counted(self, resource: str, rows: Rows) -> Rows:
        """Rows extracted per resource: the run summary's figures, whatever the destination."""
        with self._lock:
            self.rows[resource] = self.rows.get(resource, 0) + len(rows)
        return rows

    def counted_arrow(self, resource: str, count: int) -> None:
        """Of those, rows that reached dlt as Arrow tables (the rest went as rows)."""
        with self._lock:
            self.arrow_rows[resource] = self.arrow_rows.get(resource, 0) + count

    def failed(self, resource: str, message: str) -> None:
        with self._lock:
            self.failures[resource] = message

    def parent_keys(self, entry: Entry) -> list[str]:
        assert entry.parent is not None
        with self._lock:
            lock = self._parent_locks.setdefault(entry.parent, threading.Lock())
        with lock:
            if entry.parent in self._parent_errors:
                raise self._parent_errors[entry.parent]
            if entry.parent not in self._parents:
                try:
                    self._parents[entry.parent] = self._fetch_keys(entry)
                except RouteFailed as err:
                    self._parent_errors[entry.parent] = err
                    raise
            return self._parents[entry.parent]

    def _fetch_keys(self, entry: Entry) -> list[str]:
        """The parent's keys (archived parents included: their children are data too)."""
        assert entry.parent is not None
        parent = entries_by_name()[entry.parent]
        keys: list[str] = []
        for page in self.fetch(parent, {}, {}):
            for record in page:
                value = record.get(entry.parent_field)
                if value is None:
                    raise RouteFailed(
                        f"{parent.route} returned a record without "
                        f"'{entry.parent_field}', needed to fetch {entry.name}")
                keys.append(str(value))
        return list(dict.fromkeys(keys))

    def fetch(self, entry: Entry, params: dict[str, Any], body: dict[str, Any],
              parent: str | None = None) -> Iterator[Rows]:
        """Pages of one entry's route with its fixed params, for one parent if it has one."""
        op = entry.operation
        path = op.path
        query: dict[str, Any] = {}
        payload: dict[str, Any] = {}
        fixed = {**entry.params, **params, **body}
        for name, value in fixed.items():
            if name in op.body_fields:
                payload[name] = value
            else:
                query[name] = _wire_value(value)
        if "timezone" in op.query_params:
            query.setdefault("timezone", self.settings.timezone)
        if "locale" in op.query_params:
            query.setdefault("locale", self.settings.locale)
        if parent is not None:
            param = entry.path_param
            if param:
                path = path.replace("{" + param + "}", parent)
            else:
                payload["id"] = parent
        yield from pages(self.client, op, path, query, payload, self.settings.page_size)


def _instant(value: Any) -> float | None:
    """A cursor value as seconds since the epoch, whatever ISO 8601 spelling it uses."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _wire_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _window_params(entry: Entry, span: Span) -> dict[str, Any]:
    start, end = entry.operation.window_params or ("", "")
    return {start: windows.wire(span.start), end: windows.wire(span.end)}


def _record_key_check(entry: Entry, rows: Rows) -> None:
    for key in entry.primary_key:
        for position, row in enumerate(rows):
            if row.get(key) is None and key in entry.record_fields:
                raise RouteFailed(f"{entry.route} returned a record without its primary key "
                                  f"'{key}' (record {position} of the page); nothing of this "
                                  "page was loaded")


class Runner:
    """Runs one entry for one parent (or none) against its slice of state."""

    def __init__(self, ctx: Extraction, entry: Entry, state: dict[str, Any],
                 parent: str | None) -> None:
        self.ctx, self.entry, self.state, self.parent = ctx, entry, state, parent
        self.settings = ctx.settings

    def run(self) -> Iterator[Rows]:
        handlers: dict[Strategy, Callable[[], Iterator[Rows]]] = {
            Strategy.SNAPSHOT: self.snapshot,
            Strategy.CURSOR: self.cursor,
            Strategy.WINDOW: self.window,
            Strategy.DAILY: self.daily,
            Strategy.PER_WINDOW: self.per_window,
            Strategy.COUNT: self.count,
        }
        yield from handlers[self.entry.strategy]()

    def _fetch(self, params: dict[str, Any] | None = None) -> Iterator[Rows]:
        for page in self.ctx.fetch(self.entry, params or {}, {}, self.parent):
            _record_key_check(self.entry, page)
            yield page

    def _span(self, lookback_days: float, start: DateTime | None = None) -> Span:
        if self.settings.bounded:
            return self.settings.bounded
        begin = windows.resume_from(self.state.get("window_end"),
                                    start or self.settings.start_date, lookback_days)
        return Span(begin, self.ctx.now)

    def _advance(self, end: DateTime) -> None:
        if not self.settings.bounded:
            self.state["window_end"] = windows.wire(end)

    def snapshot(self) -> Iterator[Rows]:
        yield from self._fetch()

    def cursor(self) -> Iterator[Rows]:
        """Rows whose cursor moved past the stored one. Rows exactly on the stored cursor are
        new unless their id was among those seen there last time (ties are not skipped, and
        an unchanged run loads nothing)."""
        field_name = self.entry.cursor
        assert field_name is not None
        stored = self.state.get("cursor")
        floor = _instant(stored) if stored else None
        boundary = set(self.state.get("boundary_ids", ()))
        top: tuple[float, str] | None = (floor, stored) if stored and floor is not None else None
        top_ids: set[str] = set(boundary)
        for page in self._fetch():
            kept = []
            for row in page:
                raw = row.get(field_name)
                value = _instant(raw) if raw is not None else None
                if value is None:
                    kept.append(row)  # no cursor value: always loaded, merge dedupes
                    continue
                if floor is None or value > floor or (
                        value == floor and str(row.get("id")) not in boundary):
                    kept.append(row)
                if top is None or value > top[0]:
                    top, top_ids = (value, str(raw)), {str(row.get("id"))}
                elif value == top[0]:
                    top_ids.add(str(row.get("id")))
            if kept:
                yield kept
        if top is not None:
            self.state["cursor"] = top[1]
            self.state["boundary_ids"] = sorted(top_ids)

    def window(self) -> Iterator[Rows]:
        for span in windows.steps(self._span(self.settings.lookback_days),
                                  self.settings.window_step_days):
            yield from self._fetch(_window_params(self.entry, span))
            self._advance(span.end)

    def daily(self) -> Iterator[Rows]:
        for span in windows.steps(self._span(self.settings.analytics_lookback_days),
                                  self.settings.window_step_days):
            for page in self._fetch(_window_params(self.entry, span)):
                yield [row for row in page if row.get("date") is not None]
            self._advance(span.end)

    def per_window(self) -> Iterator[Rows]:
        backfill = self.ctx.now.subtract(days=self.settings.series_backfill_days)
        first = max(self.settings.start_date, backfill)
        span = self._span(self.settings.analytics_lookback_days, first)
        for step in windows.calendar_steps(span, self.settings.series_window_days):
            rows = [
                {**row, "_wallet_window_start": step.start, "_wallet_window_end": step.end}
                for page in self._fetch(_window_params(self.entry, step)) for row in page
            ]
            if rows:
                yield rows
            if step.end <= self.ctx.now:
                self._advance(step.end)

    def count(self) -> Iterator[Rows]:
        for page in self._fetch():
            yield [{**row, "_wallet_captured_at": self.ctx.now} for row in page]
