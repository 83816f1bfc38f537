"""Finding values where they must not be: what the sandbox holds under given field names
(from the world's records, nested included), and every string a warehouse or a folder holds."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import dlt
import numpy as np
import orjson

from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet.catalog import ENTRIES
from wallet_elt.sources.wallet.columns import column_name
from tests.conftest import query
from tests.truth import RECORD_STRATEGIES

# Warehouse types that can hold a copied value (DuckDB's names).
TEXT_TYPES = ("VARCHAR", "JSON")


Place = tuple[str, str, str]  # table, column, the field a value sits under (json: innermost key)


def _leaves(value: Any, key: str) -> Iterator[tuple[str, str]]:
    """(field, string form) of every scalar in `value`, under the innermost key that holds it
    (flags and empty values excluded: they identify nothing)."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _leaves(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, key)
    elif value not in (None, "") and not isinstance(value, bool):
        yield key, str(value)


def world_values(box: Sandbox) -> dict[str, set[str]]:
    """Every value the sandbox's record routes serve, by the field it sits under, any depth."""
    values: dict[str, set[str]] = {}
    routes = {route.key: route for route in box.routes}
    for entry in ENTRIES:
        if entry.strategy not in RECORD_STRATEGIES:
            continue
        route = routes[entry.route]
        entity = box.world.entities[route.entity]
        with box.world.lock:
            records = entity.records(np.arange(entity.count), route.record_schema)
        for record in records:
            for field, text in _leaves(record, ""):
                values.setdefault(field, set()).add(text)
    return values


def warehouse_strings(pipeline: dlt.Pipeline) -> dict[str, set[Place]]:
    """Every string value of every text and json column (json walked to its leaves) of the
    pipeline's dataset, with the places it sits in."""
    dataset = pipeline.dataset_name
    found: dict[str, set[Place]] = {}
    with pipeline.sql_client() as client:  # one connection: opening one per query costs ~0.2 s
        columns = client.execute_sql(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = '{dataset}'") or []
        by_table: dict[str, list[tuple[str, str]]] = {}
        for table, column, data_type in columns:
            if data_type in TEXT_TYPES and not column.startswith("_dlt"):
                by_table.setdefault(table, []).append((column, data_type))
        for table, typed in by_table.items():
            names = ", ".join(f'"{column}"' for column, _ in typed)
            for row in client.execute_sql(f'SELECT {names} FROM {dataset}."{table}"') or []:
                for (column, data_type), value in zip(typed, row, strict=True):
                    if value is None:
                        continue
                    parsed = orjson.loads(value) if data_type == "JSON" else value
                    for key, text in _leaves(parsed, column):
                        found.setdefault(text, set()).add((table, column, key))
    return found


def leaked(found: dict[str, set[Place]], by_field: dict[str, set[str]],
           fields: Iterable[str], hidden: Iterable[str] = ()) -> dict[str, set[Place]]:
    """Values of `fields` (as the world serves them) that sit in the warehouse where they must
    not: any value in a place named for one of `fields` (wire or column name), and anywhere a
    value that no other field serves (the sandbox reuses some shapes: a phone-shaped
    `phoneNumberID` is not a leak of a phone number). `hidden` fields never load."""
    fields = set(fields)
    names = fields | {column_name(field) for field in fields}
    values = set().union(*(by_field.get(field, set()) for field in fields))
    others = set().union(*(texts for field, texts in by_field.items()
                           if field not in fields and field not in set(hidden)))
    exclusive = values - others
    return {value: places for value, places in found.items() if value in exclusive
            or (value in values and any(key in names for _, _, key in places))}


def _alternatives(values: Iterable[str]) -> re.Pattern[str]:
    """One regex matching any of `values`, as a trie: thousands of needles in one pass (a
    substring test per needle took seconds per megabyte)."""
    trie: dict[str, Any] = {}
    for value in values:
        node = trie
        for char in value:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items())
                    if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return re.compile(emit(trie))


def files_containing(root: Path, values: Iterable[str]) -> dict[Path, set[str]]:
    """Files under `root` whose bytes contain any of `values`, with the values found."""
    needles = [value.encode().decode("latin-1") for value in values if value]
    if not needles:
        return {}
    pattern = _alternatives(needles)
    hits: dict[Path, set[str]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            found = set(pattern.findall(path.read_bytes().decode("latin-1")))
            if found:
                hits[path] = found
    return hits


def column_names(pipeline: dlt.Pipeline) -> set[tuple[str, str]]:
    return set(query(pipeline, "SELECT table_name, column_name FROM information_schema.columns "
                               f"WHERE table_schema = '{pipeline.dataset_name}'"))
