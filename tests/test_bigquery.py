"""BigQuery: the same loads as DuckDB on a local emulator, and the DDL dlt would issue.

The end-to-end test needs the emulator venv (`.ci/bigquery-emulator.sh`); without it the test
skips, except under `CI=true`, where it fails. The DDL test needs no BigQuery server at all.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pytest
from dlt.common.schema.utils import is_complete_column

from wallet_elt.pipelines.pipeline import FILE_FORMATS, make_pipeline, run
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet import wallet_source
from tests.bigquery_emulator import PROJECT, Emulator, EmulatorUnavailable, start_emulator
from tests.conftest import new_pipeline, source_args

# One resource per strategy, plus a child (and its parent, which it fans out from).
SUBSET = ["members",                              # cursor
          "countries",                            # snapshot
          "ledger_transactions",                  # window
          "analytics_membership_member_count",    # daily
          "analytics_campaigns_count_employee",   # per_window
          "member_counts",                        # count
          "phone_numbers", "phone_number_outbound_sms_pages"]  # parent, child
# Month-wide aggregate windows over the whole history, so the per_window series has rows.
SERIES = {"series_window_days": 30, "series_backfill_days": 800}
# Columns that differ between two runs by design (load ids, row ids, run timestamps).
RUN_COLUMNS = {"_dlt_load_id", "_dlt_id", "_wallet_extracted_at", "_wallet_captured_at"}
MONEY_WORDS = {"amount", "price", "value", "balance", "cents", "credit", "revenue", "sum",
               "points"}


# --- emulator and credentials -----------------------------------------------------------------

@pytest.fixture(scope="session")
def bigquery_emulator() -> Iterator[Emulator]:
    try:
        emulator = start_emulator()
    except EmulatorUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"BigQuery emulator could not start, and CI requires it: {exc}")
        pytest.skip(f"BigQuery emulator not available: {exc}")
    print(f"\nBigQuery emulator ready at {emulator.url} in {emulator.startup_seconds:.2f} s")
    yield emulator
    emulator.stop()


def _anonymous_bigquery(monkeypatch: pytest.MonkeyPatch) -> None:
    """dlt's `GcpServiceAccountCredentials` falls back to Google's default credentials when no key
    is configured; `google.auth.default` is patched to hand out anonymous ones, so a pipeline
    built by name (`make_pipeline("bigquery")`) works with nothing but environment settings.
    """
    import google.auth
    from dlt.common.configuration.specs.gcp_credentials import GcpDefaultCredentials
    from google.auth.credentials import AnonymousCredentials

    monkeypatch.setattr(google.auth, "default",
                        lambda *args, **kwargs: (AnonymousCredentials(), PROJECT))
    # dlt remembers a failed default lookup for 10 minutes; forget any earlier one.
    monkeypatch.setattr(GcpDefaultCredentials, "_LAST_FAILED_DEFAULT", 0.0)
    monkeypatch.setenv("DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID", PROJECT)


@pytest.fixture
def bigquery_credentials(monkeypatch: pytest.MonkeyPatch) -> str:
    """dlt's `bigquery` destination resolves to anonymous credentials for `PROJECT`."""
    _anonymous_bigquery(monkeypatch)
    return PROJECT


@pytest.fixture
def bigquery_env(bigquery_emulator: Emulator, bigquery_credentials: str,
                 monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bigquery_emulator.url)
    # The emulator cannot read gzipped load files.
    monkeypatch.setenv("DATA_WRITER__DISABLE_COMPRESSION", "true")
    return bigquery_emulator


# --- comparing tables -------------------------------------------------------------------------

def _norm(value: Any) -> Any:
    """One spelling per value, whichever database returned it."""
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return value if value is None or isinstance(value, bool | int | str) else str(value)


def _compared_columns(pipeline: dlt.Pipeline, table: str) -> list[str]:
    columns = pipeline.default_schema.get_table_columns(table)
    return sorted(name for name in columns if name not in RUN_COLUMNS)


def _rows(pipeline: dlt.Pipeline, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    with pipeline.sql_client() as client:
        select = ", ".join(client.escape_column_name(c) for c in columns)
        sql = f"SELECT {select} FROM {client.make_qualified_table_name(table)}"
        rows = [tuple(_norm(v) for v in row) for row in client.execute_sql(sql) or []]
    return sorted(rows, key=repr)


def test_bigquery_and_duckdb_load_identical_rows(sandbox: Sandbox, tmp_path: Path,
                                                 bigquery_env: Emulator) -> None:
    duck = new_pipeline(tmp_path, "duck")
    bigquery = make_pipeline("bigquery", dataset_name=f"wallet_test_{uuid.uuid4().hex[:8]}",
                             pipelines_dir=str(tmp_path / "bq_pipelines"))
    args = source_args(sandbox, resources=SUBSET, **SERIES)
    timings: dict[str, float] = {}

    def load(name: str, pipeline: dlt.Pipeline) -> dict[str, int]:
        started = time.monotonic()
        rows = run(pipeline, **args).rows
        timings[name] = time.monotonic() - started
        return rows

    duck_full, bq_full = load("duckdb full", duck), load("bigquery full", bigquery)
    assert bq_full == duck_full
    for table in ("members", "countries", "ledger_transactions",
                  "analytics_membership_member_count", "analytics_campaigns_count_employee",
                  "member_counts", "phone_number_outbound_sms_pages"):
        assert bq_full.get(table), f"the full load gave no {table} rows; the test proves nothing"

    sandbox.world.advance(minutes=30, create=3, update=2, archive=1, entities=["members"])
    # The ledger is append-only: its windows follow createdAt, so only new entries count.
    sandbox.world.advance(minutes=1, create=4, entities=["ledger_entries"])
    duck_incr, bq_incr = load("duckdb incremental", duck), load("bigquery incremental", bigquery)
    assert bq_incr == duck_incr
    assert bq_incr.get("members", 0) >= 6 and bq_incr.get("ledger_transactions", 0) >= 4

    # The source declares every table up front; compare those that got rows.
    tables = {t["name"] for t in duck.default_schema.data_tables(seen_data_only=True)}
    assert {t["name"] for t in bigquery.default_schema.data_tables(seen_data_only=True)} == \
        tables
    assert set(SUBSET) <= tables
    for table in sorted(tables):
        columns = _compared_columns(duck, table)
        assert _compared_columns(bigquery, table) == columns, table
        duck_rows, bq_rows = _rows(duck, table, columns), _rows(bigquery, table, columns)
        assert len(bq_rows) == len(duck_rows), table
        assert bq_rows == duck_rows, table
    # The changes reached both: an archived member, and two count snapshots (append).
    assert len(_rows(bigquery, "member_counts", ["count"])) == 2
    archived = _rows(bigquery, "members", ["_wallet_archived"])
    assert (True,) in archived
    print(" ".join(f"{name}: {seconds:.1f} s;" for name, seconds in timings.items()))


def test_bigquery_loads_json_columns(sandbox: Sandbox, tmp_path: Path,
                                     bigquery_env: Emulator) -> None:
    """Nested objects become json columns (about 30 tables) holding the objects themselves,
    not their text, whichever way (Arrow or rows) the pages travelled."""
    resources = ["dynamic_vouchers"]
    duck = new_pipeline(tmp_path, "duck")
    bigquery = make_pipeline("bigquery", dataset_name=f"wallet_json_{uuid.uuid4().hex[:8]}",
                             pipelines_dir=str(tmp_path / "bq_pipelines"))
    duck_rows = run(duck, **source_args(sandbox, resources=resources)).rows
    json_columns = sorted(name for name, c in
                          duck.default_schema.get_table_columns("dynamic_vouchers").items()
                          if c.get("data_type") == "json")
    assert json_columns
    assert run(bigquery, **source_args(sandbox, resources=resources)).rows == duck_rows
    # As JSON text, so an object stored as a JSON string (quoted) cannot pass for the object.
    with bigquery.sql_client() as client:
        texts = ", ".join(f"TO_JSON_STRING({client.escape_column_name(c)})" for c in json_columns)
        table = client.make_qualified_table_name("dynamic_vouchers")
        loaded = sorted(((row[0], *(None if v in (None, "null") else json.loads(v)
                                    for v in row[1:]))
                         for row in client.execute_sql(f"SELECT id, {texts} FROM {table}")),
                        key=repr)
    expected = [(row[0], *(None if v is None else json.loads(v) for v in row[1:]))
                for row in _rows(duck, "dynamic_vouchers", ["id", *json_columns])]
    assert loaded == expected
    assert any(isinstance(value, dict) for row in loaded for value in row[1:])


# --- DDL without a server ---------------------------------------------------------------------

def render_create_tables(pipeline: dlt.Pipeline) -> dict[str, str]:
    """CREATE TABLE statements dlt would issue for each data table of the pipeline's schema.

    The one place that uses dlt's private `_get_table_update_sql` (dlt 1.31); it opens no
    connection.
    """
    client = pipeline.destination_client()
    statements = {}
    for table in pipeline.default_schema.data_tables():
        # As dlt does: only columns with a known type are created (the rest wait for data).
        columns = [c for c in table["columns"].values() if is_complete_column(c)]
        sql = client._get_table_update_sql(table["name"], columns, generate_alter=False)
        assert len(sql) == 1, sql
        statements[table["name"]] = sql[0]
    return statements


def _column_types(statement: str) -> dict[str, str]:
    """`name -> rendered type` from one CREATE TABLE statement (dlt puts a column a line)."""
    types = {}
    for line in statement.splitlines():
        if match := re.match(r"\s*`([^`]+)`\s+([A-Z0-9_]+)", line):
            types[match.group(1)] = match.group(2)
    return types


def _looks_like_money(column: str) -> bool:
    return any(word in MONEY_WORDS or word.rstrip("s") in MONEY_WORDS
               for word in re.split(r"_+", column.lower()))


@pytest.fixture(scope="module")
def bigquery_ddl(shared_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[dlt.Pipeline, dict[str, dict[str, str]], dict[str, str]]:
    """The subset extracted and normalized for BigQuery (never loaded) and its rendered DDL."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _anonymous_bigquery(monkeypatch)
        # No server: anything that tried to reach one would fail fast on this closed port.
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", "http://127.0.0.1:9")
        pipeline = make_pipeline("bigquery", dataset_name="wallet_ddl",
                                 pipelines_dir=str(tmp_path_factory.mktemp("bq_ddl")))
        pipeline.extract(wallet_source(**source_args(shared_sandbox, resources=SUBSET, **SERIES)),
                         loader_file_format=FILE_FORMATS["bigquery"])
        pipeline.normalize()
        statements = render_create_tables(pipeline)
    types = {table: _column_types(sql) for table, sql in statements.items()}
    for table in pipeline.default_schema.data_tables():
        complete = {n for n, c in table["columns"].items() if is_complete_column(c)}
        assert set(types[table["name"]]) == complete, statements[table["name"]]
    return pipeline, types, statements


def _columns_of_type(pipeline: dlt.Pipeline, data_type: str) -> list[tuple[str, str]]:
    return [(table["name"], column["name"]) for table in pipeline.default_schema.data_tables()
            for column in table["columns"].values() if column.get("data_type") == data_type]


def test_bigquery_ddl_renders_decimal_as_numeric(bigquery_ddl) -> None:
    pipeline, types, _ = bigquery_ddl
    decimals = _columns_of_type(pipeline, "decimal")
    assert decimals, "no decimal column in the subset"
    wrong = {f"{t}.{c}": types[t][c] for t, c in decimals
             if types[t][c] not in ("NUMERIC", "BIGNUMERIC")}
    assert not wrong


def test_bigquery_ddl_renders_timestamps(bigquery_ddl) -> None:
    pipeline, types, _ = bigquery_ddl
    timestamps = _columns_of_type(pipeline, "timestamp")
    assert timestamps
    assert {f"{t}.{c}": types[t][c] for t, c in timestamps if types[t][c] != "TIMESTAMP"} == {}


def test_bigquery_ddl_renders_no_money_as_float(bigquery_ddl) -> None:
    _, types, _ = bigquery_ddl
    money = {f"{t}.{c}": sql_type for t, columns in types.items()
             for c, sql_type in columns.items() if _looks_like_money(c)}
    assert money, "no money-like column in the subset"
    assert {name: sql_type for name, sql_type in money.items() if sql_type == "FLOAT64"} == {}


@pytest.mark.parametrize("table, partition, cluster", [
    ("ledger_transactions", "created_at", "id"),
    ("phone_number_outbound_sms_pages", "created_at", "phone_number_id"),
    ("analytics_membership_member_count", "date", None),
    ("analytics_campaigns_count_employee", "_wallet_window_start", None),
    ("member_counts", "_wallet_captured_at", None),
])
def test_bigquery_ddl_partitions_time_series_by_day(bigquery_ddl, table: str, partition: str,
                                                    cluster: str | None) -> None:
    statement = bigquery_ddl[2][table]
    assert re.search(rf"PARTITION BY\s+(DATE\()?`{partition}`", statement), statement
    if cluster:
        assert re.search(rf"CLUSTER BY\s+`{cluster}`", statement), statement
