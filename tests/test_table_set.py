"""Every selected resource has its table after a successful run, with every pinned column and
its type, on every destination, also when its route answered nothing; a table that exists is
not changed by a run in which its route answered nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dlt
import pytest

from wallet_elt.pipelines.pipeline import make_pipeline, run
from wallet_elt.sandbox.faults import Fault, FaultKind
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet.catalog import entries_by_name
from wallet_elt.sources.wallet.columns import column_hints
from tests.conftest import new_pipeline, query, source_args
from tests.test_bigquery import (  # noqa: F401 (fixtures, requested by name)
    bigquery_credentials,
    bigquery_emulator,
    bigquery_env,
)
from tests.test_destinations import postgres_credentials  # noqa: F401 (fixture)

ENTRIES = entries_by_name()
# Routes made to answer `[]`: a cursor list (the parent of the child below), a snapshot that
# merges and one that replaces its table.
EMPTIED = ["phone_numbers", "industries", "invoices"]
RESOURCES = [*EMPTIED,
             "phone_number_outbound_sms",            # child of an empty parent: no request
             "analytics_campaigns_count_employee",   # per_window, empty in a small world
             "members", "member_counts"]             # have rows
# What a destination's reflection may add to a pinned type (it reports what it stores).
COMPARED = ("data_type", "precision", "scale")


def _empty(box: Sandbox, names: list[str]) -> None:
    box.faults.replace([Fault(FaultKind.EMPTY, route=ENTRIES[name].route) for name in names])


# dlt loads an empty file to create (or truncate) a table that received no rows. The emulator
# answers the empty resumable upload that finalizes it (`Content-Range: bytes */0`) as a status
# probe (308) instead of completing it, as BigQuery does for dlt's empty `replace` loads; strict,
# so that the case runs for real once the emulator completes such uploads.
EMULATOR_EMPTY_UPLOAD = pytest.mark.xfail(
    strict=True, reason="the BigQuery emulator cannot complete an empty upload (308)")


@pytest.fixture(params=["duckdb", "postgres",
                        pytest.param("bigquery", marks=EMULATOR_EMPTY_UPLOAD)])
def new_destination(request: pytest.FixtureRequest, tmp_path: Path
                    ) -> Iterator[Callable[[], dlt.Pipeline]]:
    """A pipeline factory for the destination; its dataset is dropped afterwards."""
    made: list[dlt.Pipeline] = []
    if request.param != "duckdb":
        request.getfixturevalue(f"{request.param}_" + (
            "credentials" if request.param == "postgres" else "env"))

    def make() -> dlt.Pipeline:
        if request.param == "duckdb":
            pipeline = new_pipeline(tmp_path)
        else:
            pipeline = make_pipeline(request.param,
                                     dataset_name=f"wallet_test_{uuid.uuid4().hex[:8]}",
                                     pipelines_dir=str(tmp_path / "pipelines"))
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        if request.param != "duckdb":
            with pipeline.sql_client() as client:
                client.drop_dataset()


def _stored_columns(pipeline: dlt.Pipeline, tables: list[str]) -> dict[str, dict[str, Any]]:
    """Each table's columns as the destination reports them (its own reflection, typed)."""
    with pipeline.destination_client() as client:
        return {name: columns for name, columns in client.get_storage_tables(tables) if columns}


def test_every_resource_has_its_typed_table_when_routes_answer_nothing(
        sandbox: Sandbox, new_destination: Callable[[], dlt.Pipeline]) -> None:
    _empty(sandbox, EMPTIED)
    pipeline = new_destination()
    summary = run(pipeline, **source_args(sandbox, resources=RESOURCES))
    assert set(summary.rows) == {"members", "member_counts"}
    stored = _stored_columns(pipeline, RESOURCES)
    assert sorted(stored) == sorted(RESOURCES)
    for name in RESOURCES:
        for column, pinned in column_hints(ENTRIES[name]).items():
            assert column in stored[name], f"{name}.{column} missing"
            expected = {key: pinned[key] for key in COMPARED if key in pinned}
            found = {key: stored[name][column].get(key) for key in expected}
            assert found == expected, f"{name}.{column}"
    # the archive flag only where there are records to archive
    assert "_wallet_archived" in stored["members"]
    assert "_wallet_archived" in stored["phone_numbers"]
    for aggregate in ("member_counts", "analytics_campaigns_count_employee"):
        assert not {"_wallet_archived", "_wallet_archived_at"} & set(stored[aggregate])


def test_a_run_whose_routes_answer_nothing_leaves_existing_tables_as_they_were(
        sandbox: Sandbox, tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    tables = ["phone_numbers", "industries"]  # merge on id: nothing upstream deletes rows
    run(pipeline, **source_args(sandbox, resources=tables))

    def everything() -> dict[str, list[tuple[Any, ...]]]:
        # A complete, empty answer says every record is gone: they are flagged deleted
        # (deletions.py), every other value stays.
        return {name: query(pipeline, f"SELECT * EXCLUDE (_wallet_deleted_at) FROM "
                                      f"{pipeline.dataset_name}.{name} ORDER BY ALL")
                for name in tables}

    before = everything()
    assert all(before.values())
    _empty(sandbox, tables)
    summary = run(pipeline, **source_args(sandbox, resources=tables))
    assert not summary.rows
    assert everything() == before
    for name in tables:
        assert query(pipeline, f"SELECT count(*) FROM {pipeline.dataset_name}.{name} "
                               "WHERE _wallet_deleted_at IS NULL") == [(0,)], name
    # the tables exist: no empty load (a merge per table, every run) is made for them
    assert summary.load_info is not None
    jobs = {job.job_file_info.table_name for package in summary.load_info.load_packages
            for job in package.jobs["completed_jobs"]}
    assert not jobs & set(tables)
