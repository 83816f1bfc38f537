"""`wallet_source` reads like a dlt verified source: every argument documented (Args), its
choices typed as Literal, and a bad value fails when the source is built with a ValueError
that names the argument. No `assert` guards user input in sources/ or pipelines/."""

from __future__ import annotations

import inspect
import re
import typing
from pathlib import Path
from typing import Any

import pytest

from wallet_elt.sources.wallet import wallet_source

ROOT = Path(__file__).resolve().parents[1]
GOOD = {"api_key": "a-key", "base_url": "http://127.0.0.1:9"}  # nothing is requested


def _signature() -> inspect.Signature:
    return inspect.signature(inspect.unwrap(wallet_source))


def _documented() -> dict[str, str]:
    """Argument name -> its Args text (continuation lines joined)."""
    doc = inspect.getdoc(wallet_source) or ""
    args = doc.split("Args:\n", 1)[1].split("\n\n", 1)[0]
    found: dict[str, str] = {}
    name = ""
    for line in args.splitlines():
        match = re.match(r"^    (\w+): (.*)$", line)
        if match:
            name = match.group(1)
            found[name] = match.group(2)
        elif name:
            found[name] += " " + line.strip()
    return found


def test_the_docstring_documents_every_argument_with_its_default() -> None:
    parameters = _signature().parameters
    documented = _documented()
    assert list(documented) == list(parameters)
    for name, text in documented.items():
        default = parameters[name].default
        if name != "api_key":  # a secret: its default is dlt's marker, not a value
            assert "default" in text, f"{name}: no default stated"
            assert repr(default) in text or str(default) in text, (name, default, text)


@pytest.mark.parametrize("name", ["schema_contract", "pii_policy", "on_route_failure"])
def test_choices_are_literal_types(name: str) -> None:
    hints = typing.get_type_hints(inspect.unwrap(wallet_source))
    assert typing.get_origin(hints[name]) is typing.Literal, hints[name]
    for choice in typing.get_args(hints[name]):
        assert f'"{choice}"' in _documented()[name], (name, choice)


# argument: a bad value for it
BAD: list[tuple[str, Any]] = [
    ("schema_contract", "strict"),
    ("pii_policy", "mask"),
    ("pii_fields", {"email": "erase"}),
    ("on_route_failure", "ignore"),
    ("base_url", "api.wall.et"),
    ("base_url", "ftp://api.wall.et"),
    ("start_date", "yesterday"),
    ("start_date", "P1D"),
    ("backfill_start", "2025-13-01"),
    ("backfill_end", "not a date"),
    ("window_step_days", 0),
    ("lookback_days", -1),
    ("analytics_lookback_days", -0.5),
    ("series_backfill_days", -1),
    ("series_window_days", 0),
    ("page_size", 0),
    ("page_size", "500"),
    ("cursor_lag_seconds", -1),
    ("requests_per_second", -2),
    ("max_concurrency", 0),
    ("request_timeout", 0),
    ("max_attempts", 0),
    ("timezone", "Mars/Olympus"),
    ("disabled_families", ["dashbord"]),
    ("disabled_families", "dashboard"),
    ("resources", ["no_such_resource"]),
]


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v!r}" for n, v in BAD])
def test_a_bad_value_fails_naming_its_argument(name: str, value: Any) -> None:
    with pytest.raises(ValueError) as raised:
        wallet_source(**{**GOOD, name: value})
    text = str(raised.value)
    assert name in text or (name == "resources" and "unknown resources" in text), text


def test_backfill_end_before_its_start_fails() -> None:
    with pytest.raises(ValueError, match="backfill_end 2025-01-01 must be after backfill_start"):
        wallet_source(**GOOD, backfill_start="2025-02-01", backfill_end="2025-01-01")


def test_no_assert_guards_user_input() -> None:
    """Asserts vanish under `python -O`; what users pass is checked with explicit errors.
    The only ones left state invariants of the code itself (the entry has a parent, ...)."""
    left = []
    for path in sorted((ROOT / "sources").rglob("*.py")) + sorted(
            (ROOT / "pipelines").rglob("*.py")):
        for line in path.read_text().splitlines():
            if re.match(r"^\s*assert\b", line):
                left.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert sorted(left) == sorted([
        "sources/wallet/strategies.py: assert entry.parent is not None",
        "sources/wallet/strategies.py: assert entry.parent is not None",
        "sources/wallet/strategies.py: assert field_name is not None",
        "sources/wallet/strategies.py: assert point is not None",
        "pipelines/deletions.py: assert schema is not None",
    ]), left
