"""The connector against the sandbox's faults: it recovers from transient ones, and stops
cleanly, without moving a cursor, on ones it cannot recover from."""

from __future__ import annotations

from pathlib import Path

import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from wallet_elt.pipelines.lock import RunInProgress, exclusive_run
from wallet_elt.pipelines.pipeline import PartialLoad, run
from wallet_elt.sandbox.faults import Fault, FaultKind
from wallet_elt.sandbox.server import Sandbox
from tests.conftest import new_pipeline, query, source_args

FAST_RETRIES = {"max_attempts": 4, "request_timeout": 2.0}


def _member_count(pipeline) -> int:
    return query(pipeline, f"SELECT count(*) FROM {pipeline.dataset_name}.members")[0][0]


@pytest.mark.parametrize("kind", [FaultKind.ERROR_500, FaultKind.ERROR_502,
                                  FaultKind.ERROR_503, FaultKind.RESET])
def test_transient_failures_are_retried_and_the_load_is_complete(
        sandbox: Sandbox, tmp_path: Path, kind: FaultKind) -> None:
    sandbox.faults.replace([Fault(kind, route="POST /v2/membership/member/page", times=2)])
    pipeline = new_pipeline(tmp_path)
    summary = run(pipeline, **source_args(sandbox, resources=["members"], **FAST_RETRIES))
    assert summary.retries == 2
    assert _member_count(pipeline) == sandbox.world.entities["members"].count


def test_rate_limit_is_honoured_through_retry_after(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.faults.replace([], rate_limit=5)
    pipeline = new_pipeline(tmp_path)
    run(pipeline, **source_args(sandbox, resources=["members", "phone_numbers"],
                                page_size=10, **FAST_RETRIES))
    statuses = {status for route in sandbox.stats()["routes"].values() for status in route}
    assert "429" in statuses
    assert _member_count(pipeline) == sandbox.world.entities["members"].count


@pytest.mark.parametrize("kind, words", [
    (FaultKind.MALFORMED, "malformed or truncated JSON"),
    (FaultKind.TRUNCATED, "malformed or truncated JSON"),
    (FaultKind.HTML, "HTML page instead of JSON"),
])
def test_bad_payload_fails_the_run_naming_the_route_and_keeps_the_cursor(
        sandbox: Sandbox, tmp_path: Path, kind: FaultKind, words: str) -> None:
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=["members"], page_size=100)
    run(pipeline, **args)
    cursor = pipeline.state["sources"]["wallet"]["resources"]["members"]["parents"]["_"]
    sandbox.world.advance(minutes=5, update=150, entities=["members"])
    # the second page of the rerun is bad
    sandbox.faults.replace([Fault(kind, route="POST /v2/membership/member/page", after=1,
                                  times=1)])
    with pytest.raises(PartialLoad) as failure:
        run(pipeline, **args)
    assert "POST /v2/membership/member/page" in str(failure.value)
    assert words in str(failure.value)
    after = pipeline.state["sources"]["wallet"]["resources"]["members"]["parents"]["_"]
    assert after == cursor, "a failed run must not move the cursor"
    # and the rerun, with the API healthy again, loads every change
    run(pipeline, **args)
    updated = query(pipeline, f"SELECT count(*) FROM {pipeline.dataset_name}.members "
                              f"WHERE updated_at >= '2000-01-01' AND _wallet_route IS NOT NULL")
    assert updated[0][0] == sandbox.world.entities["members"].count


def test_rejected_key_stops_at_once(sandbox: Sandbox, tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    with pytest.raises(PipelineStepFailed) as failure:
        run(pipeline, **source_args(sandbox, resources=["members"], api_key="not-the-key"))
    assert "rejected the API key" in str(failure.value)
    assert "not-the-key" not in str(failure.value)
    assert sandbox.stats()["requests"] == 1


def test_a_resource_that_keeps_failing_fails_alone(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.faults.replace([Fault(FaultKind.ERROR_503, route="GET /v2/merchant/phoneNumbers/all")])
    pipeline = new_pipeline(tmp_path)
    resources = ["members", "phone_numbers", "phone_number_outbound_sms_pages"]
    with pytest.raises(PartialLoad) as failure:
        run(pipeline, **source_args(sandbox, resources=resources, **FAST_RETRIES))
    summary = failure.value.summary
    # the list and the child that fans out from it fail, each naming the route; members load
    assert set(summary.failures) == {"phone_numbers", "phone_number_outbound_sms_pages"}
    assert all("GET /v2/merchant/phoneNumbers/all" in why for why in summary.failures.values())
    assert _member_count(pipeline) == sandbox.world.entities["members"].count
    # the list was tried as a resource and once for all its children's keys (4 attempts each)
    assert sandbox.stats()["routes"]["GET /v2/merchant/phoneNumbers/all"] == {"503": 8}


def test_a_second_run_of_the_same_pipeline_refuses_while_one_runs(sandbox: Sandbox,
                                                                 tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    with exclusive_run(pipeline.working_dir, pipeline.pipeline_name):
        with pytest.raises(RunInProgress, match="another run of pipeline 'wallet'"):
            run(new_pipeline(tmp_path), **source_args(sandbox, resources=["members"]))
    assert sandbox.stats()["requests"] == 0
    run(pipeline, **source_args(sandbox, resources=["members"]))  # free again afterwards
