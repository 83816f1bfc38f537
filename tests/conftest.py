"""Shared fixtures: a real sandbox on a loopback port and real DuckDB pipelines."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import httpx
import pytest

from wallet_elt.pipelines.pipeline import make_pipeline, run
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sandbox.world import World, iso

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

TEST_SCALE = 2000


def start_sandbox(scale: int = TEST_SCALE, seed: int = 7) -> Sandbox:
    sandbox = Sandbox(World(seed=seed, scale=scale))
    sandbox.start()
    return sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A sandbox of its own for a test that changes the world or its faults."""
    box = start_sandbox()
    yield box
    box.stop()


@pytest.fixture(scope="session")
def shared_sandbox() -> Iterator[Sandbox]:
    """A read-only sandbox shared by tests that never change it."""
    box = start_sandbox()
    yield box
    box.stop()


def api(box: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=box.base_url, headers={"access-token": box.api_key})


def source_args(box: Sandbox, **extra: Any) -> dict[str, Any]:
    world = box.world
    return {"api_key": box.api_key, "base_url": box.base_url,
            "start_date": iso(world.now - world.history_days * 86400), **extra}


def new_pipeline(tmp: Path, name: str = "wallet") -> dlt.Pipeline:
    return make_pipeline("duckdb", duckdb_path=str(tmp / f"{name}.duckdb"),
                         pipelines_dir=str(tmp / "pipelines"))


# The fixture that makes each server destination reachable (and fails loudly under CI=true).
DESTINATION_FIXTURES = {"postgres": "postgres_credentials", "bigquery": "bigquery_env"}


def pipeline_on(destination: str, tmp: Path, request: pytest.FixtureRequest) -> dlt.Pipeline:
    """A pipeline into DuckDB (a file in `tmp`), or into Postgres or the BigQuery emulator
    through their fixture, in a dataset of its own."""
    if destination == "duckdb":
        return new_pipeline(tmp)
    request.getfixturevalue(DESTINATION_FIXTURES[destination])
    return make_pipeline(destination, dataset_name=f"wallet_test_{uuid.uuid4().hex[:8]}",
                         pipelines_dir=str(tmp / "pipelines"))


@pytest.fixture(scope="session")
def full_load(shared_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[dlt.Pipeline, Any]:
    """Every resource loaded once from the shared sandbox into DuckDB."""
    pipeline = new_pipeline(tmp_path_factory.mktemp("full"))
    # Month-wide aggregate windows over the whole history, so sparse series have rows too.
    summary = run(pipeline, **source_args(shared_sandbox, series_window_days=30,
                                          series_backfill_days=800))
    return pipeline, summary


def query(pipeline: dlt.Pipeline, sql: str) -> list[tuple[Any, ...]]:
    with pipeline.sql_client() as client:
        return list(client.execute_sql(sql) or [])
