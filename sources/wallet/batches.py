"""Pages as Arrow tables, so dlt writes them column by column instead of normalizing each row
in Python (its row-by-row normalizer was half of a full load's time).

A column's Arrow type comes from its pinned hint, or from the table's schema once dlt knows
the column; a page becomes a table only when every value fits its column. Anything else (a
field seen for the first time, a value whose type drifted, a timestamp without a zone) sends
the page as rows, and dlt's own inference, variant columns and schema contract decide exactly
as they do for any rows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.data_types import coerce_value, py_type_to_sc_type

from wallet_elt.sources.wallet.columns import column_name

Rows = list[dict[str, Any]]
Columns = Mapping[str, Mapping[str, Any]]

UTC_MICROS = pa.timestamp("us", tz="UTC")
# pyarrow imports pandas (where installed) on its first conversion of Python values, while
# dlt's extract thread looks pandas up in sys.modules: a half-imported pandas there crashes
# the run. Converting once at import, on the importing thread, settles it before any worker.
pa.array([0])
_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError,
                      OverflowError)


def arrow_type(column: Mapping[str, Any]) -> pa.DataType | None:
    """The Arrow type a dlt column is written as, or None where only dlt's row path is safe
    (a type or precision this module does not produce exactly as dlt would)."""
    kind = column.get("data_type")
    if kind in ("text", "json"):
        return pa.string()  # json travels as its text: destinations parse it on load
    if kind == "bigint" and column.get("precision") is None:
        return pa.int64()
    if kind == "double":
        return pa.float64()
    if kind == "bool":
        return pa.bool_()
    if kind == "decimal" and column.get("precision") and column.get("scale") is not None:
        return pa.decimal128(column["precision"], column["scale"])
    if kind == "timestamp" and column.get("timezone", True) and column.get("precision") in (
            None, 6):
        return UTC_MICROS
    if kind == "date":
        return pa.date32()
    return None


def _fits(inferred: pa.DataType, target: pa.DataType) -> bool:
    """Whether values that Arrow inferred as `inferred` are the kind `target` is made of: an
    integer where a double or a decimal is due, an ISO string where a timestamp or a date is
    due, a decimal string where a decimal is due. Never a number as text or a float as an
    integer: those are drift."""
    if inferred == target:
        return True
    if pa.types.is_timestamp(target):
        return pa.types.is_string(inferred) or pa.types.is_timestamp(inferred)
    if pa.types.is_date(target):
        return pa.types.is_string(inferred)
    if pa.types.is_decimal(target):
        # dlt's row path reads a decimal string ("1.01") as its number too
        return inferred in (pa.int64(), pa.float64()) or pa.types.is_string(inferred)
    return target == pa.float64() and inferred == pa.int64()


def _json_text(values: list[Any]) -> pa.Array | None:
    if any(value is not None and value.__class__ not in (dict, list) for value in values):
        return None
    return pa.array([None if value is None else orjson.dumps(value).decode()
                     for value in values], pa.string())


def convert(values: list[Any], column: Mapping[str, Any]) -> pa.Array | None:
    """One column of a page in its column's type, or None if a value does not fit."""
    target = arrow_type(column)
    if target is None:
        return None
    if column.get("data_type") == "json":
        return _json_text(values)
    try:
        array = pa.array(values)  # inferred in C; mixed types fail here
        if pa.types.is_null(array.type):
            return pa.nulls(len(values), target)
        if not _fits(array.type, target):
            return None
        return array if array.type == target else pc.cast(array, target)
    except _CONVERSION_ERRORS:
        return None


# Columns any value fits (dlt writes a number or a flag into text as its text).
_UNTYPED_KINDS = frozenset({"text", "json"})


def untyped(rows: Rows, hints: Columns) -> dict[str, set[int]]:
    """Pinned columns whose value in some rows dlt cannot coerce to the column's type (it
    keeps such a value in a variant column and leaves the column NULL), with those rows'
    positions. Arrow tells at C speed that a column fits; only a column it rejects is
    checked value by value, with dlt's own coercion, so the answer is dlt's."""
    found: dict[str, set[int]] = {}
    wires = {wire: column_name(wire) for wire in set().union(*rows)} if rows else {}
    for wire, name in wires.items():
        column = hints.get(name)
        if column is None or column.get("data_type") in _UNTYPED_KINDS:
            continue
        values = [row.get(wire) for row in rows]
        if convert(values, column) is not None:
            continue
        kind = column["data_type"]
        for position, value in enumerate(values):
            if value is None:
                continue
            try:
                coerce_value(kind, py_type_to_sc_type(type(value)), value)
            except (ValueError, TypeError, ArithmeticError):
                found.setdefault(name, set()).add(position)
    return found


class _Ambiguous(Exception):
    """Two API fields normalize to one column name."""


ISO_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:")


def infer(values: list[Any]) -> dict[str, Any] | None:
    """The column dlt's row path would create for a new field with these values (the type of
    the values; an ISO string with a zone is a timestamp, as dlt's iso_timestamp detection
    makes it), or None where only dlt can tell: mixed types, nested values, all nulls, a
    timestamp-like string without a zone."""
    try:
        array = pa.array(values)
    except _CONVERSION_ERRORS:
        return None
    kind = array.type
    if kind == pa.int64():
        return {"data_type": "bigint"}
    if kind == pa.float64():
        return {"data_type": "double"}
    if kind == pa.bool_():
        return {"data_type": "bool"}
    if not pa.types.is_string(kind):
        return None
    first = next(value for value in values if value is not None)
    # A cast to timestamps parses every value, the first too, and each starts with its year;
    # text that cannot be one skips the cast (a failed one costs ~6 ms per 5,000 values).
    if first[:4].isdigit():
        try:
            pc.cast(array, UTC_MICROS)
            return {"data_type": "timestamp", "timezone": True}
        except _CONVERSION_ERRORS:
            pass
    return None if ISO_LIKE.match(first) else {"data_type": "text"}


class PageTables:
    """Turns one table's rows into Arrow tables. `hints` are the resource's pinned columns;
    `known` returns the columns dlt's schema holds for the table (from earlier runs, and from
    this run's tables as dlt takes them in). A field neither names is typed from its values,
    once per run, the way dlt's row path would type it. `added` are the fields the connector
    sets on each row itself (a parent key)."""

    def __init__(self, hints: Columns, known: Callable[[], Columns],
                 added: frozenset[str] = frozenset()) -> None:
        self.hints = hints
        self.known = known
        self.added = added
        self._names: dict[str, str] = {}
        self._learned: dict[str, Mapping[str, Any]] = {}

    def _column(self, name: str, values: list[Any], known: Columns) -> Mapping[str, Any] | None:
        hinted = self.hints.get(name)
        if hinted is not None:
            return hinted
        column = known.get(name) or self._learned.get(name)
        if column is None:
            learned = infer(values)
            if learned is None:
                return None
            column = self._learned.setdefault(name, learned)  # atomic: one type per run
        # dlt re-derives a column's type from the Arrow data unless a hint says otherwise, and
        # json arrives here as text: only hinted json columns are safe as Arrow.
        return None if column.get("data_type") == "json" else column

    def table(self, rows: Rows) -> pa.Table | None:
        """The rows as a table, or None if they must go as rows."""
        if not rows:
            return None
        try:
            return self._table(rows)
        except _Ambiguous:
            return None

    def _table(self, rows: Rows) -> pa.Table | None:
        known = self.known()
        fields: list[pa.Field] = []
        arrays: list[pa.Array] = []
        for name, wire in self._wires(rows).items():
            values = [row.get(wire) for row in rows]
            if all(value is None for value in values) and name not in self.hints:
                continue  # no column yet, as on dlt's row path
            column = self._column(name, values, known)
            if column is None:
                return None
            array = convert(values, column)
            if array is None:
                return None
            nullable = column.get("nullable", True) is not False
            if not nullable and array.null_count:
                return None  # dlt's row path names the column and row that break the rule
            fields.append(pa.field(name, array.type, nullable=nullable))
            arrays.append(array)
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def _wires(self, rows: Rows) -> dict[str, str]:
        """Each column's wire name. Where a record field and a column this connector adds
        (a parent key) meet in one name, the added one wins, as it does on dlt's row path
        (it is set last); two API fields meeting in one name are left to dlt."""
        wires: dict[str, str] = {}
        for wire in set().union(*rows):
            name = self._names.get(wire) or self._names.setdefault(wire, column_name(wire))
            if name in wires:
                if wire in self.added:
                    wires[name] = wire
                elif wires[name] not in self.added:
                    raise _Ambiguous(name)
                continue
            wires[name] = wire
        return wires


class Batches:
    """One resource's pages, handed on as tables of about `size` rows: dlt's fixed cost per
    Arrow item (schema checks, ~10 ms) would dominate at one small page per item. Rows that do
    not fit go on as rows, through `as_rows`; `on_table` counts the rows that went as Arrow.
    Without `tables`, every page goes as rows."""

    def __init__(self, tables: PageTables | None, as_rows: Callable[[Rows], Rows],
                 on_table: Callable[[int], None], size: int = 5000) -> None:
        self.tables, self.as_rows, self.on_table, self.size = tables, as_rows, on_table, size
        self._pending: Rows = []

    def add(self, rows: Rows) -> Iterator[Rows | pa.Table]:
        if self.tables is None:
            yield self.as_rows(rows)
            return
        self._pending.extend(rows)
        if len(self._pending) >= self.size:
            yield from self.flush()

    def flush(self) -> Iterator[Rows | pa.Table]:
        rows, self._pending = self._pending, []
        if not rows or self.tables is None:
            return
        table = self.tables.table(rows)
        if table is None:
            yield self.as_rows(rows)
        else:
            self.on_table(table.num_rows)
            yield table


class _HintedJsonNotice(logging.Filter):
    """dlt warns on every Arrow page whose columns differ from the resource's hints (json
    arrives as text, by design; a key column's nullability) and keeps the hints, which is what
    this module relies on. Every other dlt message passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "when merging arrow schema with dlt schema" not in record.getMessage()


def quiet_hinted_json_notice() -> None:
    logger = logging.getLogger("dlt")
    if not any(isinstance(existing, _HintedJsonNotice) for existing in logger.filters):
        logger.addFilter(_HintedJsonNotice())
