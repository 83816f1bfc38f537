"""Checks of a run's settings before anything is built, so a mistake ends with one line that
names the setting (a ConfigError) instead of a traceback or a run that silently does nothing."""

from __future__ import annotations

import re
from collections.abc import Sequence

import dlt
import pendulum
from pendulum import DateTime

from wallet_elt.pipelines.errors import ConfigError
from wallet_elt.sources.wallet import select_entries

DESTINATIONS = ("duckdb", "postgres", "bigquery")
DEFAULT_PIPELINE_NAME = "wallet"
# dlt keeps a pipeline's state in a folder named after it, and the run lock beside it.
_PIPELINE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def check_destination(name: str) -> str:
    if name not in DESTINATIONS:
        raise ConfigError(f"unknown destination {name!r} (--destination): choose one of "
                          f"{', '.join(DESTINATIONS)}")
    return name


def check_resources(names: Sequence[str] | None) -> None:
    try:
        select_entries(names)
    except ValueError as err:
        raise ConfigError(f"{err} (--resources)") from None


def check_date(option: str, value: str | None) -> DateTime | None:
    if value is None:
        return None
    try:
        parsed = pendulum.parse(value, tz="UTC")  # the parse the source does (windows.parse)
    except ValueError:  # pendulum's ParserError is one
        parsed = None
    if not isinstance(parsed, DateTime):  # "P1D" parses, as a duration
        raise ConfigError(f"{option} {value!r} is not a date: write it as YYYY-MM-DD or an "
                          "ISO 8601 timestamp such as 2025-01-01T00:00:00Z")
    return parsed.in_timezone("UTC")


def check_span(start: str | None, end: str | None) -> None:
    """A bounded backfill must cover something: an empty span would load nothing, quietly."""
    first, last = check_date("--start-date", start), check_date("--end-date", end)
    if first and last and last <= first:
        raise ConfigError(f"--end-date {end} is not after --start-date {start}: the span "
                          "[start, end) would be empty")
    if first and not last and first >= pendulum.now("UTC"):
        raise ConfigError(f"--start-date {start} is in the future: nothing to load before it")


def pipeline_name(given: str | None) -> str:
    """`--pipeline-name`, else `pipeline_name` from config or the environment (PIPELINE_NAME),
    else `wallet`. Each name has its own state, packages and run lock."""
    name = given or dlt.config.get("pipeline_name", str) or DEFAULT_PIPELINE_NAME
    if not _PIPELINE_NAME.match(name):
        raise ConfigError(f"pipeline name {name!r} (--pipeline-name or pipeline_name in "
                          ".dlt/config.toml): use letters, digits, '_', '-' or '.', at most 64")
    return name
