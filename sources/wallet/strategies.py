"""How each catalog entry becomes rows, and what its state remembers.

A strategy yields pages (lists of rows). State is a plain dict (the dlt resource state) keyed
per parent, and it only moves after the rows that justify it were yielded; dlt commits it with
the load package, so a crash before the load keeps the old cursor.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pendulum
from pendulum import DateTime

from wallet_elt.sources.wallet import windows
from wallet_elt.sources.wallet.batches import Columns, untyped
from wallet_elt.sources.wallet.catalog import Entry, Strategy, entries_by_name
from wallet_elt.sources.wallet.client import RouteFailed, WalletClient
from wallet_elt.sources.wallet.columns import LEFT_FILTER, column_hints, flags_deletions
from wallet_elt.sources.wallet.paging import pages
from wallet_elt.sources.wallet.report import RunReport
from wallet_elt.sources.wallet.windows import Span

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
    # How far behind the server's clock a cursor stays (see Runner.cursor).
    cursor_lag_seconds: float = 300.0
    # A bounded backfill: windows cover exactly [start, end) and state is left alone.
    bounded: Span | None = None

    def __post_init__(self) -> None:
        # Zero or less would never advance through a list (the server picks its own size).
        if self.page_size <= 0:
            raise ValueError(f"page_size must be a positive number of records, "
                             f"got {self.page_size}")
        # By-date analytics count days in it: a name no calendar knows must stop the run here,
        # not in the middle of a resource.
        try:
            pendulum.timezone(self.timezone)
        except ValueError:  # pendulum's InvalidTimezone is one
            raise ValueError(f"timezone must be an IANA time zone name such as "
                             f"'America/New_York', got {self.timezone!r}") from None


@dataclass
class Extraction:
    """What every resource of one run shares: the client, settings, the run's clock and the
    parents' keys (fetched once per run, whichever child asks first)."""

    client: WalletClient
    settings: Settings
    now: DateTime = field(default_factory=lambda: pendulum.now("UTC"))
    report: RunReport = field(default_factory=RunReport)
    _active: int = 0  # resources running now: the client closes when none is
    _parents: dict[str, list[str]] = field(default_factory=dict)
    _parent_errors: dict[str, RouteFailed] = field(default_factory=dict)
    _parent_locks: dict[str, threading.Lock] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def counted(self, resource: str, rows: Rows) -> Rows:
        self.report.counted(resource, len(rows))
        self.report.requests_seen(self.client.requests_made, self.client.retries)
        return rows

    def counted_arrow(self, resource: str, count: int) -> None:
        self.report.counted_arrow(resource, count)

    def started(self) -> None:
        with self._lock:
            self._active += 1

    def ended(self, resource: str) -> None:
        """A resource ended: report the requests so far, and close the connections when no
        resource runs (the client reopens them if dlt starts another resource later)."""
        with self._lock:
            self._active -= 1
            idle = self._active == 0
            self.report.finished.add(resource)
        self.report.requests_seen(self.client.requests_made, self.client.retries)
        if idle:
            self.client.close()

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
              parent: str | None = None,
              on_time: Callable[[float | None], None] | None = None) -> Iterator[Rows]:
        """Pages of one entry's route with its fixed params, for one parent if it has one;
        `on_time` is given the server's time of the first answer."""
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
        yield from pages(self.client, op, path, query, payload, self.settings.page_size,
                         on_time)


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


def _days_timezone(entry: Entry, settings: Settings) -> str:
    """The timezone a by-date route's days are in: the one it is sent (the entry's own, else
    the `timezone` setting, as `Extraction.fetch` sends it); UTC where it takes none."""
    if "timezone" not in entry.operation.query_params:
        return "UTC"
    return str(entry.params.get("timezone", settings.timezone))


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
            Strategy.FILTERED: self.filtered,
            Strategy.DAILY: self.daily,
            Strategy.PER_WINDOW: self.per_window,
            Strategy.COUNT: self.count,
        }
        yield from handlers[self.entry.strategy]()

    def _fetch(self, params: dict[str, Any] | None = None,
               on_time: Callable[[float | None], None] | None = None) -> Iterator[Rows]:
        for page in self.ctx.fetch(self.entry, params or {}, {}, self.parent, on_time):
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
        key = self.entry.primary_key[0] if flags_deletions(self.entry) else None
        keys: set[str] = set()
        for page in self._fetch():
            if key:
                keys.update(str(row.get(key)) for row in page)
            yield page
        if key:
            self._present(keys)

    def _present(self, keys: set[str]) -> None:
        """After a complete read of the whole list: the keys it answered become the state's
        `keys`, and a key of the last complete read that is not among them is hard-deleted
        upstream: `deleted` maps it to this run's start (pipelines/deletions.py flags its row
        after the load) until a read answers it again. A failed read never gets here, and a
        bounded backfill changes nothing: neither flags anything."""
        if self.settings.bounded:
            return
        deleted = {key: at for key, at in self.state.get("deleted", {}).items()
                   if key not in keys}
        if "keys" in self.state:
            now = windows.wire(self.ctx.now)
            for key in set(self.state["keys"]) - keys:
                deleted.setdefault(key, now)
        self.state["keys"] = sorted(keys)
        if deleted:
            self.state["deleted"] = dict(sorted(deleted.items()))
        else:
            self.state.pop("deleted", None)

    def cursor(self) -> Iterator[Rows]:
        """Rows changed since the last run: every row at or past the stored cursor, except
        those already loaded with the same cursor value (`seen`, id -> value).

        The new cursor is the newest value seen, but never later than the server's clock when
        the list began to be read (its `Date` on the first page) minus `cursor_lag_seconds`:
        a record changed while later pages were read may have been read before its change, on
        an earlier page, with a value below one seen later; its change is stamped after the
        list began, so it is past this point and the next run reads it. The lag covers changes
        stamped before they became visible (a write committing late, the API's hosts' clocks
        disagreeing). Rows between that point and the newest value are remembered in `seen`
        with the value loaded, so a rerun without changes loads none of them again. The
        server's clock, not ours: their difference would move the point by as much.

        A row with a value its pinned column cannot take (dlt keeps it in a variant column
        and leaves the column NULL, e.g. a number that arrives as text) is remembered in
        `untyped` and loaded again every run, whatever its cursor, until its values fit: the
        cursor moves on for the rest, and the row is repaired once the API sends it right."""
        field_name = self.entry.cursor
        assert field_name is not None
        stored = self.state.get("cursor")
        floor = _instant(stored) if stored else None
        # State written before `seen`: the ids loaded exactly at the cursor.
        seen: dict[str, Any] = self.state.get("seen") or {
            key: stored for key in self.state.get("boundary_ids", ())}
        loaded = {key: _instant(value) for key, value in seen.items()}
        # Loaded again whatever their cursor: untyped rows, and records seen hard-deleted
        # (their row is flagged; loading it clears the flag).
        retry = set(self.state.get("untyped", ())) | set(self.state.get("deleted", ()))
        hints = column_hints(self.entry)
        still_untyped: set[str] = set()
        began: list[float | None] = []
        values: dict[str, tuple[float, str]] = {}  # every row's, for the next `seen`
        present: set[str] = set()
        newest: float | None = None
        for page in self._fetch(on_time=began.append):
            kept = []
            for row in page:
                raw = row.get(field_name)
                value = _instant(raw) if raw is not None else None
                key = str(row.get("id"))
                present.add(key)
                if value is None:
                    kept.append(row)  # no cursor value: always loaded, merge dedupes
                    continue
                if floor is None or key in retry or (
                        value >= floor and loaded.get(key) != value):
                    kept.append(row)
                values[key] = (value, str(raw))
                newest = value if newest is None else max(newest, value)
            if kept:
                for positions in untyped(kept, hints).values():
                    still_untyped.update(str(kept[p].get("id")) for p in positions)
                yield kept
        if still_untyped:
            self.state["untyped"] = sorted(still_untyped)
        else:
            self.state.pop("untyped", None)
        if flags_deletions(self.entry):
            self._present(present)
        if newest is None:
            return
        server_now = began[0] if began and began[0] is not None else time.time()
        cursor = windows.wire(pendulum.from_timestamp(
            min(newest, server_now - self.settings.cursor_lag_seconds)))
        point = _instant(cursor)  # as stored (whole milliseconds), which the next run reads
        assert point is not None
        self.state["cursor"] = cursor
        self.state["seen"] = {key: raw for key, (value, raw) in sorted(values.items())
                              if value >= point}
        self.state.pop("boundary_ids", None)

    def filtered(self) -> Iterator[Rows]:
        """A list the server filters (e.g. a campaign's redeemed vouchers), read whole every
        run: every row is refreshed, and a key it answered last run but not now left the
        filter, so it is yielded as a marker that deletes its row (dlt's hard delete). The
        keys are kept only once the whole list was read: a failed read deletes nothing."""
        (key,) = self.entry.primary_key
        keys: set[str] = set()
        for page in self._fetch():
            keys.update(str(row[key]) for row in page)
            yield page
        left = set(self.state.get("keys", ())) - keys
        if left:
            yield [{key: value, LEFT_FILTER: True} for value in sorted(left)]
        self.state["keys"] = sorted(keys)

    def window(self) -> Iterator[Rows]:
        """Windows from the stored end minus the lookback to now, and before them every
        earlier window that held a row with a value its pinned column cannot take (kept in a
        variant column, the column NULL): such windows are remembered in `untyped_windows`
        and read again every run until their rows fit, so a row that drifted is repaired
        once the API sends it right, however far behind the lookback it is by then.

        The state moves window by window (a failed run keeps what it completed): a
        remembered window is forgotten once this run has read all of it, and a window read
        now that holds an untyped row is remembered."""
        span = self._span(self.settings.lookback_days)
        pending = [] if self.settings.bounded else [
            Span(windows.parse(start), windows.parse(end))
            for start, end in self.state.get("untyped_windows", ())]
        # Remembered windows that reach into the span are read as part of it, whole.
        begin = span.start
        for remembered in sorted(pending, key=lambda w: w.end, reverse=True):
            if remembered.end <= begin:
                break
            begin = min(begin, remembered.start)
        hints = column_hints(self.entry)
        found: list[Span] = []
        for remembered in [w for w in pending if w.end <= begin]:
            if not (yield from self._window_pages(remembered, hints)):
                found.append(remembered)
            pending.remove(remembered)
            self._remember_untyped([*pending, *found])
        for step in windows.steps(Span(begin, span.end), self.settings.window_step_days):
            if not (yield from self._window_pages(step, hints)):
                found.append(step)
            pending = [w for w in pending if w.end > step.end]  # read whole by now
            self._advance(step.end)
            self._remember_untyped([*pending, *found])

    def _window_pages(self, span: Span, hints: Columns
                      ) -> Generator[Rows, None, bool]:
        """The window's pages; returns whether every row's values fit their columns."""
        typed = True
        for page in self._fetch(_window_params(self.entry, span)):
            typed = typed and not untyped(page, hints)
            yield page
        return typed

    def _remember_untyped(self, spans: list[Span]) -> None:
        if self.settings.bounded:
            return
        if spans:
            self.state["untyped_windows"] = [[windows.wire(w.start), windows.wire(w.end)]
                                             for w in sorted(spans, key=lambda w: w.start)]
        else:
            self.state.pop("untyped_windows", None)

    def daily(self) -> Iterator[Rows]:
        """Windows of whole days in the route's timezone: rows merge on `date`, so a day split
        across two windows would keep only one half. The state keeps the midnight that starts
        the last day read, so the current day (read whole so far) is read again next run, and
        the lookback also starts at a midnight."""
        tz = _days_timezone(self.entry, self.settings)
        span = windows.whole_days(self._span(self.settings.analytics_lookback_days), tz,
                                  self.ctx.now)
        for step in windows.day_steps(span, self.settings.window_step_days, tz):
            for page in self._fetch(_window_params(self.entry, step)):
                yield [row for row in page if row.get("date") is not None]
            self._advance(windows.day_start(step.end, tz))

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
