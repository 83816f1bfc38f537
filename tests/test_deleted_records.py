"""Records that a list read whole stops answering (hard-deleted upstream) get
`_wallet_deleted_at` from the run that first missed them; one that comes back clears it; a
failed read or a bounded backfill flags nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import dlt
import pytest

from wallet_elt.pipelines.pipeline import PartialLoad, run
from wallet_elt.sandbox.faults import Fault, FaultKind
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet.catalog import entries_by_name
from wallet_elt.sources.wallet.columns import DELETED_AT
from tests.conftest import new_pipeline, pipeline_on, source_args
from tests.test_bigquery import (  # noqa: F401  (fixtures)
    bigquery_credentials, bigquery_emulator, bigquery_env)
from tests.test_destinations import postgres_credentials  # noqa: F401  (fixture)

# A cursor list, and a keyed snapshot (read whole, every row loaded every run).
CURSOR, SNAPSHOT = "members", "membership_tier_member_counts"
ENTITY = {CURSOR: "members", SNAPSHOT: "membership_tiers"}


def _flags(pipeline: dlt.Pipeline, table: str, where: str = "") -> dict[str, Any]:
    with pipeline.sql_client() as client:
        sql = (f"SELECT id, {DELETED_AT} FROM {client.make_qualified_table_name(table)} "
               f"{where}")
        return {row[0]: row[1] for row in client.execute_sql(sql) or []}


def _started(pipeline: dlt.Pipeline, table: str) -> dt.datetime:
    """The start of the run that loaded the table last (its `_wallet_extracted_at`)."""
    with pipeline.sql_client() as client:
        sql = (f"SELECT MAX(_wallet_extracted_at) FROM "
               f"{client.make_qualified_table_name(table)}")
        value = next(iter(client.execute_sql(sql) or []))[0]
    assert isinstance(value, dt.datetime)
    return _utc(value)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


@pytest.mark.parametrize("destination", ["duckdb", "postgres", "bigquery"])
def test_deleted_records_are_flagged_and_cleared_when_back(
        destination: str, sandbox: Sandbox, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    pipeline = pipeline_on(destination, tmp_path, request)
    args = source_args(sandbox, resources=[CURSOR, SNAPSHOT])
    run(pipeline, **args)
    assert all(v is None for v in _flags(pipeline, CURSOR).values())

    gone = {name: sandbox.world.advance(minutes=10, delete=2, entities=[entity])["deleted"]
            [entity] for name, entity in ENTITY.items()}
    run(pipeline, **args)
    # A second member run starts later: the flag keeps the run that first missed them.
    started = _started(pipeline, SNAPSHOT)
    missed_at = started.replace(microsecond=started.microsecond // 1000 * 1000)  # as stored
    run(pipeline, **args)
    for name, ids in gone.items():
        flags = _flags(pipeline, name)
        assert {k for k, v in flags.items() if v is not None} == set(ids), name
        assert {_utc(flags[k]) for k in ids} == {missed_at}, name

    # One member comes back unchanged (its updatedAt is old): loaded again, flag cleared.
    back, still = gone[CURSOR]
    sandbox.world.restore("members", [back])
    run(pipeline, **args)
    flags = _flags(pipeline, CURSOR)
    assert flags[back] is None and flags[still] is not None


def test_a_failed_or_bounded_read_flags_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=[CURSOR], page_size=20)
    run(pipeline, **args)
    sandbox.world.advance(minutes=10, delete=3, entities=["members"])
    # The list fails after its first page: the records it did not reach are not deleted.
    sandbox.faults.replace([Fault(FaultKind.HTML, route=entries_by_name()[CURSOR].route,
                                  after=1)])
    with pytest.raises(PartialLoad):
        run(pipeline, **args)
    sandbox.faults.replace([])
    assert all(v is None for v in _flags(pipeline, CURSOR).values())
    # A bounded backfill reads the whole list too, but moves no state: nothing flagged.
    world = sandbox.world
    run(pipeline, **args, backfill_start="2024-01-01T00:00:00Z",
        backfill_end=dt.datetime.fromtimestamp(world.now, dt.UTC).isoformat())
    assert all(v is None for v in _flags(pipeline, CURSOR).values())
    run(pipeline, **args)
    assert sum(v is not None for v in _flags(pipeline, CURSOR).values()) == 3


def test_in_history_mode_a_deletion_closes_the_version(sandbox: Sandbox, tmp_path: Path
                                                       ) -> None:
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=[CURSOR], history=[CURSOR])
    run(pipeline, **args)
    (gone,) = sandbox.world.advance(minutes=10, delete=1, entities=["members"])["deleted"][
        "members"]
    run(pipeline, **args)
    closed = _versions(pipeline, gone)
    assert len(closed) == 1
    assert closed[0][0] is not None and closed[0][0] == closed[0][1]  # closed when missed
    assert len(_flags(pipeline, CURSOR, "WHERE _wallet_valid_to IS NULL")) == \
        sandbox.world.entities["members"].count - 1
    sandbox.world.restore("members", [gone])
    run(pipeline, **args)
    # Back unchanged: a new open version, not flagged; the closed one stays as it was.
    assert sorted(_versions(pipeline, gone), key=repr) == sorted(
        [closed[0], (None, None)], key=repr)


def _versions(pipeline: dlt.Pipeline, key: str) -> list[tuple[Any, ...]]:
    """(valid_to, deleted_at) of every version of one record."""
    with pipeline.sql_client() as client:
        table = client.make_qualified_table_name(CURSOR)
        return [tuple(row) for row in client.execute_sql(
            f"SELECT _wallet_valid_to, {DELETED_AT} FROM {table} WHERE id = %s", key) or []]
