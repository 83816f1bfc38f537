"""The same load into DuckDB and Postgres gives the same tables, rows and values."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from wallet_elt.pipelines.pipeline import duckdb_threads, make_pipeline, run
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet.columns import is_money
from tests.conftest import new_pipeline, query, source_args

POSTGRES_URL = os.environ.get("WALLET_TEST_POSTGRES",
                              "postgresql://postgres:trust-auth-ignores-this@127.0.0.1:5432/test")
SUBSET = ["members", "phone_numbers", "phone_number_outbound_sms_pages", "ledger_transactions",
          "analytics_membership_member_count", "member_counts",
          "analytics_campaigns_count_employee"]


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def postgres_credentials(monkeypatch: pytest.MonkeyPatch) -> str:
    if not _postgres_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432, and CI requires it")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", POSTGRES_URL)
    return POSTGRES_URL


def _values(pipeline, table: str, columns: str) -> list[tuple]:
    rows = query(pipeline, f"SELECT {columns} FROM {pipeline.dataset_name}.{table} "
                           f"ORDER BY 1")
    return [tuple(str(v) for v in row) for row in rows]


def test_postgres_and_duckdb_load_identical_rows(sandbox: Sandbox, tmp_path: Path,
                                                 postgres_credentials: str) -> None:
    dataset = f"wallet_test_{uuid.uuid4().hex[:8]}"
    duck = new_pipeline(tmp_path, "duck")
    postgres = make_pipeline("postgres", dataset_name=dataset,
                             pipelines_dir=str(tmp_path / "pg_pipelines"))
    try:
        duck_summary = run(duck, **source_args(sandbox, resources=SUBSET))
        sandbox.world.advance(minutes=30, create=3, update=2, archive=1, entities=["members"])
        # The ledger is append-only: its windows follow createdAt, so only new entries count.
        sandbox.world.advance(minutes=1, create=4, entities=["ledger_entries"])
        run(duck, **source_args(sandbox, resources=SUBSET))
        # Postgres sees the changed world in one go; the end state must be the same.
        pg_summary = run(postgres, **source_args(sandbox, resources=SUBSET))
        assert set(pg_summary.rows) == set(duck_summary.rows)
        for table in ("members", "ledger_transactions", "phone_number_outbound_sms_pages"):
            assert _values(duck, table, "id, is_active, _wallet_archived") == \
                _values(postgres, table, "id, is_active, _wallet_archived")
        assert _values(duck, "analytics_membership_member_count", "date, count") == \
            _values(postgres, "analytics_membership_member_count", "date, count")
        # no money column lands as a floating type, in either destination
        for pipeline, schema_column in ((postgres, "table_schema"), (duck, "table_schema")):
            types = query(pipeline, "SELECT table_name, column_name, data_type FROM "
                                    "information_schema.columns WHERE "
                                    f"{schema_column} = '{pipeline.dataset_name}'")
            money = [(t, c, d) for t, c, d in types if is_money(c) and not c.endswith("_id")]
            assert money, "the subset has money columns"
            assert all(d.lower().startswith(("numeric", "decimal")) for _, _, d in money), money
    finally:
        with postgres.sql_client() as client:
            client.drop_dataset()


@pytest.mark.parametrize(("limit", "cores", "threads"), [
    ("256MB", 2, 1), ("256MB", 16, 1), ("2GB", 2, 2), ("2GB", 16, 7), ("1.5 GiB", 64, 5),
    ("100MB", 4, 1), ("lots", 4, None), ("80%", 4, None)])
def test_duckdb_gets_one_thread_per_256mb_of_its_memory_cap(limit: str, cores: int,
                                                            threads: int | None) -> None:
    assert duckdb_threads(limit, cores) == threads


def test_the_loaded_duckdb_runs_under_the_memory_cap_and_its_threads(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALLET_DUCKDB_MEMORY_LIMIT", "512MB")
    pipeline = new_pipeline(tmp_path)
    run(pipeline, **source_args(sandbox, resources=["phone_numbers"]))
    settings = query(pipeline, "SELECT current_setting('memory_limit'), "
                               "current_setting('threads')")
    expected_threads = min(2, os.cpu_count() or 1)
    assert settings[0][1] == expected_threads
    assert settings[0][0].replace(" ", "").upper() in ("488.2MIB", "512.0MB", "512MB")
