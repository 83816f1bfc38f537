"""Date windows: where a run starts (stored cursor minus lookback, or the configured start),
where it ends (now, or a bounded backfill's end), and the half-open steps in between."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pendulum
from pendulum import DateTime


@dataclass(frozen=True)
class Span:
    """A half-open [start, end) interval in UTC."""

    start: DateTime
    end: DateTime


def wire(value: DateTime) -> str:
    """A date-time as the API takes it (the SDK's ISO 8601 with milliseconds and Z)."""
    return value.in_timezone("UTC").format("YYYY-MM-DDTHH:mm:ss.SSS") + "Z"


def parse(value: str | DateTime) -> DateTime:
    if isinstance(value, DateTime):
        return value.in_timezone("UTC")
    parsed = pendulum.parse(value, tz="UTC")
    if not isinstance(parsed, DateTime):  # "P1D" parses, as a duration
        raise ValueError(f"{value!r} is not a date-time")
    return parsed.in_timezone("UTC")


def resume_from(stored: str | None, start_date: DateTime, lookback_days: float) -> DateTime:
    """Where an unbounded run starts: the stored cursor minus the lookback, never before the
    configured start date."""
    if stored is None:
        return start_date
    return max(start_date, parse(stored).subtract(seconds=int(lookback_days * 86400)))


def steps(span: Span, step_days: float) -> Iterator[Span]:
    """Consecutive windows of `step_days` covering the span; the last one is cut at its end."""
    step = max(1, int(step_days * 86400))
    start = span.start
    while start < span.end:
        end = min(span.end, start.add(seconds=step))
        yield Span(start, end)
        start = end


def day_start(value: DateTime, tz: str) -> DateTime:
    """The midnight in `tz` that starts the day `value` falls on, in UTC."""
    return value.in_timezone(tz).start_of("day").in_timezone("UTC")


def whole_days(span: Span, tz: str, now: DateTime) -> Span:
    """The span widened to whole days in `tz`: from the midnight that starts its first day to
    the midnight that ends its last one, but never past `now` (the current day, so far)."""
    end = day_start(span.end, tz)
    if end < span.end:
        end = end.in_timezone(tz).add(days=1).in_timezone("UTC")
    return Span(day_start(span.start, tz), min(end, now))


def day_steps(span: Span, step_days: float, tz: str) -> Iterator[Span]:
    """Windows of whole days in `tz` (`step_days` rounded down, at least one), from the
    midnight that starts the span's first day; the last one is cut at the span's end. Days
    are counted on the local calendar, so a window across a DST change is still whole days."""
    days = max(1, int(step_days))
    start = span.start.in_timezone(tz).start_of("day")
    while start < span.end:
        end = min(span.end, start.add(days=days))
        yield Span(start.in_timezone("UTC"), end.in_timezone("UTC"))
        start = end.in_timezone(tz)


def calendar_steps(span: Span, step_days: int) -> Iterator[Span]:
    """Windows aligned on UTC midnights, so per-window aggregates have stable keys."""
    start = span.start.start_of("day")
    while start < span.end:
        end = start.add(days=step_days)
        yield Span(start, end)
        start = end
