"""History mode (dlt's scd2): a changed record keeps its old version, closed at the run that
saw the change; an unchanged one keeps a single open version, on DuckDB, Postgres and
BigQuery (emulator)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import dlt
import pytest

from wallet_elt.pipelines.cli import main
from wallet_elt.pipelines.pipeline import make_pipeline, run
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet import history, wallet_source
from tests.conftest import new_pipeline, source_args
from tests.test_bigquery import (  # noqa: F401  (fixtures)
    bigquery_credentials, bigquery_emulator, bigquery_env)
from tests.test_destinations import postgres_credentials  # noqa: F401  (fixture)

# A cursor list, and a keyed snapshot read whole every run (its unchanged rows come again).
RESOURCES = ["members", "membership_tier_member_counts"]
VALUES = "id, points_accrued, membership_tier_id"


def _utc(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    assert isinstance(value, dt.datetime)
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _select(pipeline: dlt.Pipeline, table: str, columns: str, where: str = ""
            ) -> list[tuple[Any, ...]]:
    with pipeline.sql_client() as client:
        sql = f"SELECT {columns} FROM {client.make_qualified_table_name(table)} {where}"
        return sorted((tuple(row) for row in client.execute_sql(sql) or []), key=repr)


def _pipeline(destination: str, tmp_path: Path, request: pytest.FixtureRequest
              ) -> dlt.Pipeline:
    if destination == "duckdb":
        return new_pipeline(tmp_path)
    request.getfixturevalue("postgres_credentials" if destination == "postgres"
                            else "bigquery_env")
    return make_pipeline(destination, dataset_name=f"wallet_hist_{uuid.uuid4().hex[:8]}",
                         pipelines_dir=str(tmp_path / "pipelines"))


@pytest.mark.parametrize("destination", ["duckdb", "postgres", "bigquery"])
def test_changed_members_keep_their_old_version(destination: str, sandbox: Sandbox,
                                                tmp_path: Path,
                                                request: pytest.FixtureRequest) -> None:
    pipeline = _pipeline(destination, tmp_path, request)
    args = source_args(sandbox, resources=RESOURCES, history=RESOURCES)
    run(pipeline, **args)
    before = {row[0]: row[1:] for row in _select(pipeline, "members", VALUES)}
    tiers_before = len(_select(pipeline, "membership_tier_member_counts", "id"))
    assert len(before) >= 50 and tiers_before

    touched = sandbox.world.advance(minutes=30, update=5, entities=["members"])
    changed = set(touched["touched"]["members"])
    second = run(pipeline, **args)
    assert second.rows["members"] == len(changed)  # the cursor yields the changed ones only

    versions: dict[str, list[tuple[Any, ...]]] = {}
    for row in _select(pipeline, "members", f"{VALUES}, _wallet_valid_from, _wallet_valid_to"):
        versions.setdefault(row[0], []).append(row)
    assert set(versions) == set(before)
    boundaries = {_utc(row[3]) for rows in versions.values() for row in rows}
    assert len(boundaries) == 2  # one per run: the run's start
    first_run, second_run = sorted(b for b in boundaries if b is not None)
    for key, rows in versions.items():
        if key not in changed:
            assert [(_utc(r[3]), r[4]) for r in rows] == [(first_run, None)], key
            continue
        old, new = sorted(rows, key=lambda r: _utc(r[3]) or first_run)
        assert old[1:3] == before[key], key
        assert (_utc(old[3]), _utc(old[4])) == (first_run, second_run), key
        assert (_utc(new[3]), new[4]) == (second_run, None), key
    assert any(versions[key][0][1:3] != versions[key][1][1:3] for key in changed), \
        "the update changed no loaded value; the test proves nothing"

    # "As of" the first run: every member with the values loaded then.
    # Microseconds kept: the two runs can start within the same second.
    as_of = (first_run + (second_run - first_run) / 2).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    at = (f"TIMESTAMP('{as_of}')" if destination == "bigquery"
          else f"CAST('{as_of}' AS TIMESTAMP WITH TIME ZONE)")
    where = (f"WHERE _wallet_valid_from <= {at} "
             f"AND (_wallet_valid_to IS NULL OR _wallet_valid_to > {at})")
    assert {row[0]: row[1:] for row in _select(pipeline, "members", VALUES, where)} == before
    # Tiers read whole again: the same records are the same versions, none retired.
    counts = _select(pipeline, "membership_tier_member_counts", "id, _wallet_valid_to")
    assert len(counts) == tiers_before and all(row[1] is None for row in counts)


def test_history_setting_names_only_keyed_records() -> None:
    eligible = history.chosen("*")
    assert {"members", "membership_tiers", "membership_tier_member_counts"} <= eligible
    assert "member_counts" not in eligible  # a count series
    assert "analytics_membership_member_count" not in eligible  # an aggregate
    assert history.chosen(None) == set() == history.chosen([])
    with pytest.raises(ValueError, match=r"sources\.wallet\.history: unknown .*memberz"):
        wallet_source(api_key="k", history=["memberz"])
    with pytest.raises(ValueError, match=r"sources\.wallet\.history: member_counts cannot"):
        wallet_source(api_key="k", history=["members", "member_counts"])


def test_without_history_a_merge_overwrites(sandbox: Sandbox, tmp_path: Path) -> None:
    """History is off by default: the table keeps one row per member, no validity columns."""
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=["members"])
    run(pipeline, **args)
    sandbox.world.advance(minutes=30, update=5, entities=["members"])
    run(pipeline, **args)
    columns = pipeline.default_schema.get_table_columns("members")
    assert history.VALID_FROM not in columns and history.ROW_VERSION not in columns
    ids = [row[0] for row in _select(pipeline, "members", "id")]
    assert len(ids) == len(set(ids))


def test_version_ignores_the_run_timestamp() -> None:
    first = history.stamp([{"id": "a", "points": 1, "_wallet_extracted_at": 1}])
    again = history.stamp([{"id": "a", "points": 1, "_wallet_extracted_at": 2}])
    changed = history.stamp([{"id": "a", "points": 2, "_wallet_extracted_at": 2}])
    assert first[0][history.ROW_VERSION] == again[0][history.ROW_VERSION]
    assert changed[0][history.ROW_VERSION] != first[0][history.ROW_VERSION]



def test_cli_names_a_wrong_history_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A configured aggregate stops the run before any request, with one line (exit 2)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WALLET_API_KEY", "sandbox-key-0123456789")
    monkeypatch.setenv("SOURCES__WALLET__HISTORY", '["members", "member_counts"]')
    code = main(["run", "--resources", "members", "--pipelines-dir", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "sources.wallet.history: member_counts cannot keep history" in err
    assert "Traceback" not in err
