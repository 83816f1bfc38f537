"""Column types pinned from the API reference, so the warehouse never guesses: money and points
as exact decimals, timestamps as timezone-aware timestamps, ids as text, flags as booleans.

Untyped fields the reference says nothing about are left to dlt's inference (and to the
schema contract, which reports a later change of type instead of silently widening).
"""

from __future__ import annotations

import re
from typing import Any

from dlt.common.normalizers.naming.snake_case import NamingConvention

from wallet_elt.sources.wallet import spec
from wallet_elt.sources.wallet.catalog import Entry, Measure, Strategy
from wallet_elt.sources.wallet.sensitive import is_secret

Column = dict[str, Any]

# Integer cents (or points) exactly as the API carries them.
MONEY_CENTS: Column = {"data_type": "decimal", "precision": 19, "scale": 0}
# The API's `*_decimal` twins carry currency units with cents.
MONEY_UNITS: Column = {"data_type": "decimal", "precision": 19, "scale": 2}
TIMESTAMP: Column = {"data_type": "timestamp", "timezone": True}

MONEY_NAME = re.compile(
    r"(amount|price|balance|cents|budget|revenue|points)|(value|sum)(_decimal)?$", re.IGNORECASE)
NOT_MONEY = re.compile(r"(ID|_string|^display|^meta|valueType|Design)", re.IGNORECASE)
TIMESTAMP_NAME = re.compile(r"(At|Date|DateTime)$")

METADATA: dict[str, Column] = {
    "_wallet_extracted_at": {**TIMESTAMP, "nullable": False,
                             "description": "When the run that loaded the row started (UTC)"},
    "_wallet_route": {"data_type": "text", "nullable": False,
                      "description": "The API route the row came from"},
}
# Records only (every record carries `isActive`, declared or not): an aggregate has nothing
# archived to flag, and an always-NULL column there would say otherwise.
ARCHIVED: dict[str, Column] = {
    "_wallet_archived": {"data_type": "bool",
                         "description": "The record is archived (isActive is false)"},
    "_wallet_archived_at": {**TIMESTAMP,
                            "description": "The record's updatedAt when it was seen archived"},
}
WINDOW: dict[str, Column] = {
    "_wallet_window_start": {**TIMESTAMP, "nullable": False,
                             "description": "Start of the window the row aggregates (incl.)"},
    "_wallet_window_end": {**TIMESTAMP, "nullable": False,
                           "description": "End of the window the row aggregates (excl.)"},
}
CAPTURED: dict[str, Column] = {
    "_wallet_captured_at": {**TIMESTAMP, "nullable": False,
                            "description": "When the count was captured"},
}

# dlt's hard-delete hint: a row carrying True deletes the table's row of the same key.
LEFT_FILTER = "_wallet_left_filter"
FILTERED: dict[str, Column] = {
    LEFT_FILTER: {"data_type": "bool", "hard_delete": True,
                  "description": "Set only on the marker that deletes a record which left the "
                                 "route's filter (never on a loaded row)"},
}

# Lists read whole every run: a record they stop answering was hard-deleted upstream.
DELETED_AT = "_wallet_deleted_at"
DELETED: dict[str, Column] = {
    DELETED_AT: {**TIMESTAMP,
                 "description": "Start of the first run whose complete read of the list no "
                                "longer had the record (deleted upstream); NULL while it is"},
}

_naming = NamingConvention()


def flags_deletions(entry: Entry) -> bool:
    """Whether the entry's rows get `_wallet_deleted_at`: lists read whole every run whose
    records have a single-column key (see Runner._present)."""
    return entry.strategy in (Strategy.CURSOR, Strategy.SNAPSHOT) and len(entry.primary_key) == 1


def column_name(field: str) -> str:
    """A wire field's column name, as dlt's snake_case naming convention makes it."""
    return _naming.normalize_identifier(field)


def is_money(field: str) -> bool:
    return bool(MONEY_NAME.search(field)) and not NOT_MONEY.search(field)


def field_column(field: str, schema: dict[str, Any]) -> Column | None:
    """The pinned type of one record field, or None to let dlt infer it."""
    resolved = spec.resolve(schema)
    kind = resolved.get("type")
    if "anyOf" in resolved:
        kind = "string"
    column: Column | None = None
    in_cents = "cents" in resolved.get("description", "")
    if kind in (None, "integer", "number") and (is_money(field) or in_cents):
        column = dict(MONEY_UNITS if field.endswith("_decimal") else MONEY_CENTS)
    elif resolved.get("format") == "date-time" or (
            kind in (None, "string") and TIMESTAMP_NAME.search(field)):
        column = dict(TIMESTAMP)
    elif kind == "integer":
        column = {"data_type": "bigint"}
    elif kind == "boolean":
        column = {"data_type": "bool"}
    elif kind == "string":
        column = {"data_type": "text"}
    elif kind == "number":
        column = {"data_type": "double"}
    elif kind in ("object", "array"):
        column = {"data_type": "json"}
    if column is not None and resolved.get("description"):
        column["description"] = resolved["description"]
    return column


def _aggregate_columns(entry: Entry) -> dict[str, Column]:
    """The measure an aggregate carries (the typed field, else `count` or `amount`), its day
    and its dimension."""
    money = entry.measure is Measure.AMOUNT
    measures = [f for f in entry.record_fields if f != "date"] or [str(entry.measure)]
    columns: dict[str, Column] = {
        column_name(name): dict(MONEY_CENTS if money or is_money(name)
                                else {"data_type": "bigint"})
        for name in measures if name in ("count", "amount", "points")
    }
    if entry.strategy is Strategy.DAILY:
        columns["date"] = {"data_type": "date", "nullable": False}
    if entry.dimension:
        columns[column_name(entry.dimension)] = {"data_type": "text"}
    return columns


def column_hints(entry: Entry) -> dict[str, Column]:
    """Every column whose type the reference or the strategy settles, by column name."""
    columns: dict[str, Column] = {}
    for field, schema in entry.record_fields.items():
        if is_secret(field):
            continue  # never loaded (privacy.py drops it from every record)
        pinned = field_column(field, schema)
        if pinned is not None:
            columns[column_name(field)] = pinned
    aggregate = entry.strategy in (Strategy.DAILY, Strategy.PER_WINDOW, Strategy.COUNT)
    if aggregate:
        columns.update(_aggregate_columns(entry))
    if entry.parent_key:
        columns[entry.parent_key] = {"data_type": "text", "nullable": False,
                                     "description": f"Key of the parent {entry.parent} row"}
    if entry.strategy in (Strategy.CURSOR, Strategy.FILTERED) and entry.cursor:
        # A record updated while its list is paged can come twice in one run; the merge keeps
        # the newest, the version the stored cursor has already moved past.
        cursor = column_name(entry.cursor)
        columns[cursor] = {**columns.get(cursor, {}), "dedup_sort": "desc"}
    columns.update(METADATA)
    if not aggregate:
        columns.update(ARCHIVED)
    if entry.strategy is Strategy.PER_WINDOW:
        columns.update(WINDOW)
    if entry.strategy is Strategy.COUNT:
        columns.update(CAPTURED)
    if entry.strategy is Strategy.FILTERED:
        columns.update(FILTERED)
    if flags_deletions(entry):
        columns.update(DELETED)
    _layout(entry, columns)
    return columns


# The time column each time-series strategy is partitioned on (where the destination
# partitions, e.g. BigQuery by day); the others ignore the hint.
PARTITION_COLUMN = {Strategy.WINDOW: "created_at", Strategy.DAILY: "date",
                    Strategy.PER_WINDOW: "_wallet_window_start",
                    Strategy.COUNT: "_wallet_captured_at"}


def _layout(entry: Entry, columns: dict[str, Column]) -> None:
    """Partition time series by their time column and cluster them by their key, so a
    merge or a date-bounded query reads a few partitions instead of the table."""
    partition = PARTITION_COLUMN.get(entry.strategy)
    if partition is None or partition not in columns:
        return
    columns[partition] = {**columns[partition], "partition": True}
    for key in (entry.parent_key or "id",):
        if key in columns:
            columns[key] = {**columns[key], "cluster": True}


def timestamp_fields(entry: Entry) -> tuple[str, ...]:
    """Wire names of the record fields pinned as timestamps."""
    return tuple(field for field, schema in entry.record_fields.items()
                 if (field_column(field, schema) or {}).get("data_type") == "timestamp")
