"""Pages as Arrow tables (sources/wallet/batches.py): a value goes as Arrow only in the type
dlt's row path would give it, anything else goes as rows, and both paths load the same."""

from __future__ import annotations

import datetime
import decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from wallet_elt.pipelines.pipeline import run
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet.batches import Batches, PageTables, convert, infer
from tests.conftest import new_pipeline, source_args

CENTS = {"data_type": "decimal", "precision": 19, "scale": 0}
UNITS = {"data_type": "decimal", "precision": 19, "scale": 2}
STAMP = {"data_type": "timestamp", "timezone": True}


@pytest.mark.parametrize(("values", "column", "expected"), [
    ([1, None, 2], {"data_type": "bigint"}, [1, None, 2]),
    ([1, 2.5], {"data_type": "double"}, [1.0, 2.5]),
    ([1050, None], CENTS, [decimal.Decimal(1050), None]),
    ([12.34, 7, "1.01"], UNITS, None),  # mixed types: dlt's row path decides
    (["1.01", "7"], UNITS, [decimal.Decimal("1.01"), decimal.Decimal("7.00")]),
    ([True, None], {"data_type": "bool"}, [True, None]),
    (["a", None], {"data_type": "text"}, ["a", None]),
    ([{"a": 1}, [1, 2], None], {"data_type": "json"}, ['{"a":1}', "[1,2]", None]),
    ([None, None], CENTS, [None, None]),
    (["2024-05-01"], {"data_type": "date"}, [datetime.date(2024, 5, 1)]),
])
def test_values_that_fit_convert(values: list[Any], column: dict[str, Any],
                                 expected: list[Any] | None) -> None:
    array = convert(values, column)
    assert (array.to_pylist() if array is not None else None) == expected


def test_timestamps_with_a_zone_convert_to_utc() -> None:
    array = convert(["2024-05-01T10:00:00.5Z", "2024-05-01T12:00:00+02:00", None], STAMP)
    assert array is not None and array.type == pa.timestamp("us", tz="UTC")
    assert [v.isoformat() if v else None for v in array.to_pylist()] == [
        "2024-05-01T10:00:00.500000+00:00", "2024-05-01T10:00:00+00:00", None]


@pytest.mark.parametrize(("values", "column"), [
    ([1, 2.5], {"data_type": "bigint"}),         # a float in an integer column
    (["5 units"], CENTS),                         # the sandbox's type-change fault
    ([1], {"data_type": "text"}),                 # a number in a text column
    ([1, True], {"data_type": "bigint"}),
    (["2024-05-01T10:00:00"], STAMP),             # no zone: dlt's row path assumes one
    (['{"a": 1}'], {"data_type": "json"}),        # text in a json column
    ([2 ** 70], {"data_type": "bigint"}),
    ([1], {"data_type": "wei"}),                  # a type this module never writes
])
def test_values_that_do_not_fit_refuse(values: list[Any], column: dict[str, Any]) -> None:
    assert convert(values, column) is None


@pytest.mark.parametrize(("values", "expected"), [
    ([1, None], {"data_type": "bigint"}),
    ([1.5], {"data_type": "double"}),
    ([False], {"data_type": "bool"}),
    (["open"], {"data_type": "text"}),
    (["2024-05-01T10:00:00Z"], STAMP),            # as dlt's iso_timestamp detection
    (["2024-05-01T10:00:00"], None),
    (["a", 1], None),
    ([{"a": 1}], None),
])
def test_new_fields_are_typed_as_dlt_would(values: list[Any],
                                           expected: dict[str, Any] | None) -> None:
    assert infer(values) == expected


def _tables(hints: dict[str, Any], known: dict[str, Any] | None = None,
            added: frozenset[str] = frozenset()) -> PageTables:
    return PageTables(hints, lambda: known or {}, added)


def test_an_added_parent_key_wins_over_the_record_field_of_its_name() -> None:
    rows = [{"phoneNumberID": 5, "phone_number_id": "5", "body": "hi"}]
    hints = {"phone_number_id": {"data_type": "text", "nullable": False}}
    table = _tables(hints, added=frozenset({"phone_number_id"})).table(rows)
    assert table is not None
    assert sorted(table.column_names) == ["body", "phone_number_id"]
    assert table.column("phone_number_id").to_pylist() == ["5"]


def test_two_api_fields_of_one_column_name_go_as_rows() -> None:
    assert _tables({}).table([{"Source": "a", "source": "b"}]) is None


def test_a_json_column_only_known_from_the_schema_goes_as_rows() -> None:
    """dlt would re-type it from the Arrow text; only a hint keeps it json."""
    rows = [{"meta": {"a": 1}}]
    assert _tables({}, {"meta": {"data_type": "json"}}).table(rows) is None
    assert _tables({"meta": {"data_type": "json"}}).table(rows) is not None


def test_a_null_in_a_not_null_column_goes_as_rows() -> None:
    hints = {"id": {"data_type": "text", "nullable": False}}
    assert _tables(hints).table([{"id": None}]) is None


def test_a_new_field_keeps_its_first_type_for_the_run() -> None:
    tables = _tables({})
    assert tables.table([{"n": 1}]) is not None
    assert tables.table([{"n": 1.5}]) is None     # double after bigint: dlt makes a variant
    assert tables.table([{"n": 2}]).schema.field("n").type == pa.int64()


def test_batches_gather_pages_and_count_arrow_rows() -> None:
    counted: list[int] = []
    batches = Batches(_tables({}), lambda rows: rows, counted.append, size=3)
    out = [*batches.add([{"n": 1}, {"n": 2}]), *batches.add([{"n": 3}]),
           *batches.add([{"n": "x"}]), *batches.flush()]
    assert [type(item) for item in out] == [pa.Table, list]
    assert out[0].num_rows == 3 and out[1] == [{"n": "x"}]
    assert counted == [3]


IGNORED = {"_dlt_id", "_dlt_load_id", "_wallet_extracted_at", "_wallet_captured_at"}


def _tables_rows(pipeline: Any) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every data table's columns (but the per-run ones) and sorted rows, on one connection."""
    out = {}
    schema = pipeline.default_schema
    with pipeline.sql_client() as client:
        for table in schema.data_table_names():
            columns = sorted(name for name in schema.get_table_columns(table)
                             if name not in IGNORED)
            select = ", ".join(client.escape_column_name(name) for name in columns)
            rows = client.execute_sql(
                f"SELECT {select} FROM {client.make_qualified_table_name(table)}") or []
            out[table] = (columns, sorted(rows, key=repr))
    return out


def _types(schema: Any, table: str) -> dict[str, str]:
    return {name: column["data_type"] for name, column in schema.get_table_columns(table).items()
            if column.get("data_type")}


def test_arrow_and_rows_load_the_same_tables(full_load: tuple[Any, Any],
                                             shared_sandbox: Sandbox, tmp_path: Path) -> None:
    """Every table of a full load, once through Arrow (the default) and once as rows only:
    the same columns with the same types, the same values."""
    arrow, arrow_summary = full_load
    rows = new_pipeline(tmp_path, "rows")
    rows_summary = run(rows, **source_args(shared_sandbox, series_window_days=30,
                                           series_backfill_days=800, arrow=False))
    assert rows_summary.arrow_rows == {}
    # Most rows went as Arrow (what did not: drift, zone-less timestamps, nested new fields).
    assert sum(arrow_summary.arrow_rows.values()) > 0.9 * sum(arrow_summary.rows.values())
    assert rows_summary.rows == arrow_summary.rows
    arrow_schema, rows_schema = arrow.default_schema, rows.default_schema
    assert set(arrow_schema.data_table_names()) == set(rows_schema.data_table_names())
    for table in rows_schema.data_table_names():
        # Types only: dlt records Arrow's microsecond precision on timestamps, rows have none.
        assert _types(arrow_schema, table) == _types(rows_schema, table), table
    arrow_tables, rows_tables = _tables_rows(arrow), _tables_rows(rows)
    for table, content in rows_tables.items():
        assert arrow_tables[table] == content, table
