"""Type drift and new fields: reported by every run that sees them, and rows whose value could
not be typed are repaired once the API sends them right (Given / When / Then)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest

from wallet_elt.pipelines.errors import explain
from wallet_elt.pipelines.pipeline import PartialLoad, run
from wallet_elt.sandbox.faults import Fault, FaultKind
from wallet_elt.sandbox.server import Sandbox
from tests.conftest import new_pipeline, query, source_args

MEMBERS_ROUTE = "POST /v2/membership/member/page"


def _points(pipeline: dlt.Pipeline) -> dict[str, int | None]:
    rows = query(pipeline, f"SELECT id, points_accrued FROM {pipeline.dataset_name}.members")
    return {key: None if value is None else int(value) for key, value in rows}


def _world_points(box: Sandbox) -> dict[str, int]:
    members = box.world.entities["members"]
    return {r["id"]: r["pointsAccrued"] for r in members.records(members.select())}


def _drift_for_a_run(box: Sandbox, pipeline: dlt.Pipeline, args: dict[str, Any]) -> list[str]:
    """A full load, then 4 members updated while the API sends their points as text."""
    run(pipeline, **args)
    box.world.advance(minutes=5, update=4, entities=["members"])
    box.faults.replace([Fault(FaultKind.TYPE_CHANGE, route=MEMBERS_ROUTE)])
    return run(pipeline, **args).drift


def test_every_run_that_receives_drifted_values_reports_them(sandbox: Sandbox,
                                                             tmp_path: Path) -> None:
    # Given a run that received 4 members with their points as text
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=["members"])
    first = _drift_for_a_run(sandbox, pipeline, args)
    assert any(line.startswith("members.points_accrued__v_text") for line in first)
    # When the drift goes on for another run
    again = run(pipeline, **args)
    # Then that run says so too, with the rows it loaded so
    assert any(line.startswith("members.points_accrued__v_text: 4 rows") for line in again.drift)
    assert any("type drift: members.points_accrued" in line for line in again.lines())


def test_rows_whose_money_could_not_be_typed_are_reread_once_the_drift_ends(
        sandbox: Sandbox, tmp_path: Path) -> None:
    # Given a run that loaded 4 members without their points (kept as text beside the column)
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=["members"])
    _drift_for_a_run(sandbox, pipeline, args)
    assert sum(value is None for value in _points(pipeline).values()) == 4
    # When the API sends numbers again and the pipeline runs
    sandbox.faults.replace([])
    healed = run(pipeline, **args)
    # Then those rows are loaded again, typed, and the warehouse equals the API
    assert _points(pipeline) == _world_points(sandbox)
    assert healed.rows["members"] == 4 and healed.drift == []
    variants = query(pipeline, f"SELECT count(points_accrued__v_text) FROM "
                               f"{pipeline.dataset_name}.members")
    assert variants == [(0,)]
    # and a quiet rerun after that loads nothing
    assert run(pipeline, **args).rows.get("members", 0) == 0


def test_a_new_field_that_becomes_a_column_is_reported(sandbox: Sandbox, tmp_path: Path) -> None:
    # Given a full load, then members updated while the API sends a field it never sent
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=["members"])
    assert run(pipeline, **args).new_columns == []
    sandbox.world.advance(minutes=5, update=3, entities=["members"])
    sandbox.faults.replace([Fault(FaultKind.NEW_FIELD, route=MEMBERS_ROUTE)])
    # When the pipeline runs
    summary = run(pipeline, **args)
    # Then the run summary names the new column
    assert summary.new_columns == ["members.sandbox_drift_field"]
    assert any("new column: members.sandbox_drift_field" in line for line in summary.lines())


@pytest.mark.parametrize(("kind", "column"), [(FaultKind.TYPE_CHANGE, "points_accrued"),
                                              (FaultKind.NEW_FIELD, "sandbox_drift_field")])
def test_a_frozen_contract_failure_names_the_table_and_the_column(
        sandbox: Sandbox, tmp_path: Path, kind: FaultKind, column: str) -> None:
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=["members"], schema_contract="freeze")
    run(pipeline, **args)
    sandbox.world.advance(minutes=5, update=3, entities=["members"])
    sandbox.faults.replace([Fault(kind, route=MEMBERS_ROUTE)])
    with pytest.raises(Exception) as failure:
        run(pipeline, **args)
    explained = explain(failure.value)
    assert explained is not None
    message = explained[1]
    assert "table members" in message and f"column {column}" in message


LEDGER_ROUTE = "GET /v2/pos/ledger/transactions/all"


def _check_amounts(pipeline: dlt.Pipeline) -> dict[str, int | None]:
    rows = query(pipeline, f"SELECT id, check_amount FROM "
                           f"{pipeline.dataset_name}.ledger_transactions")
    return {key: None if value is None else int(value) for key, value in rows}


def _world_check_amounts(box: Sandbox) -> dict[str, int]:
    entries = box.world.entities["ledger_entries"]
    return {r["id"]: r["checkAmount"] for r in entries.records(entries.select())}


def test_windowed_rows_whose_money_could_not_be_typed_are_reread_beyond_the_lookback(
        sandbox: Sandbox, tmp_path: Path) -> None:
    # Given a first load of the ledger (two years of windows) while the API sends every
    # entry's check amount as text: the column is NULL on every row
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=["ledger_transactions"])
    sandbox.faults.replace([Fault(FaultKind.TYPE_CHANGE, route=LEDGER_ROUTE)])
    drifted = run(pipeline, **args)
    assert any(line.startswith("ledger_transactions.check_amount__v_text")
               for line in drifted.drift)
    assert set(_check_amounts(pipeline).values()) == {None}
    # When the API sends numbers again and the pipeline runs
    sandbox.faults.replace([])
    healed = run(pipeline, **args)
    # Then every row is typed, those older than the lookback too, and none is left as text
    assert _check_amounts(pipeline) == _world_check_amounts(sandbox)
    assert healed.drift == []
    variants = query(pipeline, f"SELECT count(check_amount__v_text) FROM "
                               f"{pipeline.dataset_name}.ledger_transactions")
    assert variants == [(0,)]
    # and the next run reads only its lookback again: no window is remembered as untyped
    state = pipeline.state["sources"]["wallet"]["resources"]["ledger_transactions"]
    assert "untyped_windows" not in state["parents"]["_"]
    assert run(pipeline, **args).rows.get("ledger_transactions", 0) < healed.rows[
        "ledger_transactions"]


def test_a_run_that_fails_part_way_forgets_only_the_untyped_windows_it_read(
        sandbox: Sandbox, tmp_path: Path) -> None:
    # Given a first load of the ledger with every check amount sent as text
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=["ledger_transactions"], max_attempts=1)
    sandbox.faults.replace([Fault(FaultKind.TYPE_CHANGE, route=LEDGER_ROUTE)])
    run(pipeline, **args)

    def remembered() -> list[list[str]]:
        state = pipeline.state["sources"]["wallet"]["resources"]["ledger_transactions"]
        return list(state["parents"]["_"].get("untyped_windows", []))

    drifted = remembered()
    # When the drift has ended but the route fails after answering 5 windows
    sandbox.faults.replace([Fault(FaultKind.ERROR_503, route=LEDGER_ROUTE, after=5)])
    with pytest.raises(PartialLoad):
        run(pipeline, **args)
    # Then the windows it read are forgotten, those it did not are still remembered
    assert remembered() == drifted[5:]
    # and the next healthy run repairs every row
    sandbox.faults.replace([])
    run(pipeline, **args)
    assert _check_amounts(pipeline) == _world_check_amounts(sandbox) and remembered() == []
