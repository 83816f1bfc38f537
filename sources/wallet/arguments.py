"""The choices `wallet_source` takes and the checks of its arguments: a bad value fails when
the source is built, with a ValueError that names the argument, not in the middle of a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

import httpx
import pendulum
from pendulum import DateTime

SchemaContract = Literal["evolve", "freeze"]
PiiAction = Literal["keep", "drop", "hash"]


def check_choice(name: str, value: Any, choices: Any) -> None:
    """`value` is one of the Literal type `choices`' values."""
    allowed = get_args(choices)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, "
                         f"got {value!r}")


def check_pii_fields(fields: Mapping[str, str] | None) -> None:
    for field, action in (fields or {}).items():
        check_choice(f"pii_fields[{field!r}]", action, PiiAction)


def check_number(name: str, value: float, *, minimum: float, unit: str,
                 inclusive: bool = True) -> None:
    """At least `minimum` (or above it): the unit says what the number counts."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of {unit}, got {value!r}")
    if value < minimum or (not inclusive and value == minimum):
        bound = "at least" if inclusive else "more than"
        raise ValueError(f"{name} must be {bound} {minimum:g} {unit}, got {value!r}")


def date_argument(name: str, value: str) -> DateTime:
    """An ISO 8601 date or date-time as UTC (a duration such as "P1D" parses, but is none)."""
    try:
        parsed = pendulum.parse(value, tz="UTC")
    except (ValueError, TypeError):  # pendulum's ParserError is a ValueError
        parsed = None
    if not isinstance(parsed, DateTime):
        raise ValueError(f"{name} must be a date such as 2025-01-01 or 2025-01-01T00:00:00Z, "
                         f"got {value!r}")
    return parsed.in_timezone("UTC")


def check_base_url(value: str) -> None:
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an http(s):// URL such as https://api.wall.et, "
                         f"got {value!r}")
