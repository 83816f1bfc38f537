"""Cursor routes never lose a change made while their list is being paged (Given / When / Then)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import dlt
import pytest

from wallet_elt.pipelines.pipeline import run
from wallet_elt.sandbox.server import Handler, Sandbox
from tests.conftest import new_pipeline, query, source_args

MEMBERS_ROUTE = "POST /v2/membership/member/page"


@pytest.fixture
def changes_while_paging(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
                         ) -> Iterator[list[int]]:
    """While armed (the list holds the page numbers to change after), the world updates
    members after answering those pages of the members list, before the next one is asked."""
    armed: list[int] = []
    answered = {"pages": 0}
    original = Handler.answer

    def answer(self: Handler, route: Any, payload: Any, faults: Any) -> None:
        original(self, route, payload, faults)
        if route.key != MEMBERS_ROUTE or not armed:
            return
        answered["pages"] += 1
        if answered["pages"] in armed:
            # The handler thread holds the connection: the next page is asked after this.
            sandbox.world.advance(minutes=10, update=8, entities=["members"])

    monkeypatch.setattr(Handler, "answer", answer)
    yield armed


def _updated_at(pipeline: dlt.Pipeline) -> dict[str, float]:
    rows = query(pipeline, f"SELECT id, updated_at FROM {pipeline.dataset_name}.members")
    return {key: value.timestamp() for key, value in rows}


def _world_updated_at(box: Sandbox) -> dict[str, float]:
    entity = box.world.entities["members"]
    return {r["id"]: datetime.fromisoformat(r["updatedAt"]).timestamp()
            for r in entity.records(entity.select())}


def test_changes_made_while_a_list_is_paged_arrive_next_run_and_a_quiet_rerun_loads_none(
        sandbox: Sandbox, changes_while_paging: list[int], tmp_path: Path) -> None:
    # Given a members list of 10 pages, updated three times while the first run pages it
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=["members"], page_size=10)
    assert sandbox.world.entities["members"].count == 100
    changes_while_paging.extend([1, 3, 6])
    run(pipeline, **args)
    changes_while_paging.clear()
    # When the pipeline runs again with nothing changed since
    run(pipeline, **args)
    # Then every change made during the first run's paging is in the warehouse
    assert _updated_at(pipeline) == _world_updated_at(sandbox)
    # and a rerun after that loads nothing
    assert run(pipeline, **args).rows.get("members", 0) == 0


def test_a_quiet_rerun_loads_nothing_even_when_records_changed_within_the_lag(
        sandbox: Sandbox, tmp_path: Path) -> None:
    # Given members changed a minute before the (server's) time of the first run
    sandbox.world.advance(minutes=1, update=5, entities=["members"])
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=["members"], page_size=10)
    run(pipeline, **args)
    state = pipeline.state["sources"]["wallet"]["resources"]["members"]["parents"]["_"]
    # Then the cursor stays the lag behind the server's clock, the rows past it are
    # remembered with the value loaded, and a rerun loads none of them again
    lag_point = datetime.fromisoformat(state["cursor"]).timestamp()
    assert lag_point == sandbox.world.now - 300
    assert len(state["seen"]) == 5
    assert run(pipeline, **args).rows.get("members", 0) == 0
    # and once they change again, exactly they are loaded
    sandbox.world.advance(minutes=1, update=3, entities=["members"])
    assert run(pipeline, **args).rows["members"] == 3
