"""dlt's merge staging schema does not stay beside the data on DuckDB and Postgres: after a
first and an incremental load it is gone (dropped once every package loaded), and the merges
that used it still land every change."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dlt
import pytest

from wallet_elt.pipelines.pipeline import make_pipeline, run
from wallet_elt.sandbox.server import Sandbox
from tests.conftest import new_pipeline, query, source_args
from tests.test_destinations import postgres_credentials  # noqa: F401 (fixture)
from tests.test_incremental import _sandbox_members, _warehouse_members

# merge on id, a snapshot that merges on its route (delete-insert), a child of a parent
RESOURCES = ["members", "invoices", "phone_numbers", "phone_number_outbound_sms"]


@pytest.fixture(params=["duckdb", "postgres"])
def pipeline(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dlt.Pipeline]:
    if request.param == "duckdb":
        yield new_pipeline(tmp_path)
        return
    request.getfixturevalue("postgres_credentials")
    made = make_pipeline("postgres", dataset_name=f"wallet_test_{uuid.uuid4().hex[:8]}",
                         pipelines_dir=str(tmp_path / "pipelines"))
    yield made
    with made.sql_client() as client:
        client.drop_dataset()
        with client.with_staging_dataset():
            if client.has_dataset():
                client.drop_dataset()


def _schemas(pipeline: dlt.Pipeline) -> set[str]:
    return {row[0] for row in query(pipeline, "SELECT schema_name FROM "
                                              "information_schema.schemata")}


def test_no_staging_schema_after_a_load_and_an_incremental_load(
        sandbox: Sandbox, pipeline: dlt.Pipeline) -> None:
    staging = f"{pipeline.dataset_name}_staging"
    run(pipeline, **source_args(sandbox, resources=RESOURCES))
    assert pipeline.dataset_name in _schemas(pipeline)
    assert staging not in _schemas(pipeline)
    sandbox.world.advance(minutes=60, create=5, update=3, archive=2,
                          entities=["members", "outbound_sms"])
    second = run(pipeline, **source_args(sandbox, resources=RESOURCES))
    assert second.rows["members"] == 5 + 3 + 2  # merged through a staging table made anew
    assert staging not in _schemas(pipeline)
    assert _warehouse_members(pipeline) == _sandbox_members(sandbox)
    outbound = sandbox.world.entities["outbound_sms"]
    loaded = query(pipeline, f"SELECT count(*), count(DISTINCT id) FROM "
                             f"{pipeline.dataset_name}.phone_number_outbound_sms")[0]
    assert loaded == (outbound.count, outbound.count)
