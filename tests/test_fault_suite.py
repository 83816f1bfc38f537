"""Fault injection over a subset of resources, judged against the sandbox's truth: after each
fault the warehouse holds exactly the records the sandbox serves (every id once), or the run
fails naming the route, with nothing loaded that is not in the sandbox, and a rerun heals it.

Complements test_reliability.py (single-route faults on `members`) with probability-based
faults spread over every route a subset of parent and child resources calls.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import dlt
import pytest

from wallet_elt.pipelines.pipeline import PartialLoad, RunSummary, run
from wallet_elt.sandbox.faults import Fault, FaultKind
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources import wallet as wallet_package
from wallet_elt.sources.wallet.catalog import entries_by_name
from wallet_elt.sources.wallet.client import RetryPolicy
from tests.conftest import new_pipeline, query, source_args
from tests.truth import FAULT_SUBSET, record_ids, routes_of

RESOURCES = FAULT_SUBSET
ENTRIES = entries_by_name()
# Every route the subset calls: its own and those of the parents it fans out from.
ROUTES = routes_of(RESOURCES)
SMS_ROUTE = ENTRIES["phone_number_outbound_sms_pages"].route
# Few requests per run (quarter-year windows, small pages) and fast retries keep it short.
ARGS: dict[str, Any] = {"resources": RESOURCES, "page_size": 40, "window_step_days": 90,
                        "max_attempts": 6, "request_timeout": 2.0}


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff from 0.05 s instead of 0.5 s: the same retries, a tenth of the waiting (a 429's
    Retry-After, at least 1 s, is still honoured)."""
    monkeypatch.setattr(wallet_package, "RetryPolicy",
                        functools.partial(RetryPolicy, backoff_base=0.05))


def _ids(pipeline: dlt.Pipeline, table: str) -> tuple[set[str], int]:
    """(distinct ids, row count) of a warehouse table; empty if it was never created."""
    if table not in pipeline.default_schema.data_table_names():
        return set(), 0
    rows = query(pipeline, f"SELECT id FROM {pipeline.dataset_name}.{table}")
    return {row[0] for row in rows}, len(rows)


def truth(box: Sandbox) -> dict[str, set[str]]:
    return {name: record_ids(box, ENTRIES[name]) for name in RESOURCES}


def assert_equals_truth(box: Sandbox, pipeline: dlt.Pipeline) -> None:
    for name, expected in truth(box).items():
        ids, rows = _ids(pipeline, name)
        assert rows == len(ids), f"{name}: {rows - len(ids)} duplicated ids"
        assert ids == expected, (f"{name}: {len(expected - ids)} missing, "
                                 f"{len(ids - expected)} not in the sandbox")


def injected(box: Sandbox) -> dict[str, int]:
    """Per route, the answers that were not a 200 (status 0: reset or held, then closed)."""
    return {route: sum(n for status, n in statuses.items() if status != "200")
            for route, statuses in box.stats()["routes"].items()}


def _spread(kind: FaultKind, burst: int, extra: int, value: float = 0.0) -> list[Fault]:
    """On every route: a burst on its first `burst` requests, then up to `extra` more faults
    each with probability 0.2 (drawn from the world's seed: the same on every run)."""
    faults = []
    for route in ROUTES:
        faults.append(Fault(kind, route=route, times=burst, value=value))
        faults.append(Fault(kind, route=route, probability=0.2, after=burst, times=extra,
                            value=value))
    return faults


SURVIVABLE = {
    "500": lambda: (_spread(FaultKind.ERROR_500, 2, 3), 0, {}),
    "502": lambda: (_spread(FaultKind.ERROR_502, 2, 3), 0, {}),
    "503": lambda: (_spread(FaultKind.ERROR_503, 3, 3), 0, {}),
    "reset": lambda: (_spread(FaultKind.RESET, 2, 3), 0, {}),
    # held 1 s against a 0.3 s client timeout
    "timeout": lambda: (_spread(FaultKind.TIMEOUT, 1, 1, value=1.0), 0,
                        {"request_timeout": 0.3}),
    # a token bucket of 20 requests/s: 429 with Retry-After, on whatever route hits it
    "429": lambda: ([], 20, {}),
}


@pytest.mark.parametrize("name", list(SURVIVABLE))
def test_transient_faults_on_every_route_are_survived_within_one_run(
        sandbox: Sandbox, tmp_path: Path, name: str) -> None:
    faults, rate_limit, extra = SURVIVABLE[name]()
    sandbox.faults.replace(faults, rate_limit=rate_limit)
    pipeline = new_pipeline(tmp_path)
    summary = run(pipeline, **source_args(sandbox, **{**ARGS, **extra}))
    sandbox.faults.replace([], rate_limit=0)
    # a held request is counted when the sandbox lets go of it, after the client gave up
    deadline = time.monotonic() + 3
    while sum(injected(sandbox).values()) < summary.retries and time.monotonic() < deadline:
        time.sleep(0.05)
    hit = injected(sandbox)
    if faults:
        # every route of the subset was hit, and each injected failure cost one retry
        assert all(hit.get(route, 0) > 0 for route in ROUTES), hit
    assert sum(hit.values()) > 0
    assert summary.retries == sum(hit.values())
    assert_equals_truth(sandbox, pipeline)


@pytest.mark.parametrize("kind, route, after", [
    (FaultKind.TRUNCATED, SMS_ROUTE, 5),  # a window route of a child, mid-way through
    (FaultKind.MALFORMED, ENTRIES["ledger_transactions"].route, 3),  # a window route
    (FaultKind.HTML, ENTRIES["performance_ticket_pages"].route, 2),  # a cursor child route
])
def test_a_bad_payload_fails_the_run_naming_the_route_and_a_rerun_heals(
        sandbox: Sandbox, tmp_path: Path, kind: FaultKind, route: str, after: int) -> None:
    sandbox.faults.replace([Fault(kind, route=route, after=after, times=1)])
    pipeline = new_pipeline(tmp_path)
    with pytest.raises(PartialLoad) as failure:
        run(pipeline, **source_args(sandbox, **ARGS))
    summary: RunSummary = failure.value.summary
    failed = {name for name in RESOURCES if ENTRIES[name].route == route}
    assert set(summary.failures) == failed
    assert route.split("{")[0] in str(failure.value)  # the path, with the parent's id
    # what did load is whole: the other resources equal the truth, and the failed one holds
    # only records the sandbox has, each once
    expected = truth(sandbox)
    for name in RESOURCES:
        ids, rows = _ids(pipeline, name)
        assert rows == len(ids), name
        if name in failed:
            assert ids < expected[name], name
        else:
            assert ids == expected[name], name
    sandbox.faults.replace([])
    run(pipeline, **source_args(sandbox, **ARGS))
    assert_equals_truth(sandbox, pipeline)


def test_records_inserted_while_paging_are_neither_lost_nor_doubled(
        sandbox: Sandbox, tmp_path: Path) -> None:
    before = truth(sandbox)
    sandbox.faults.replace([Fault.parse("page_drift,route=GET /v2/sms/outbound/page/*,value=3")])
    pipeline = new_pipeline(tmp_path)
    run(pipeline, **source_args(sandbox, **ARGS))
    sandbox.faults.replace([])
    grown = truth(sandbox)
    sms = "phone_number_outbound_sms_pages"
    assert len(grown[sms]) > len(before[sms])  # the drift did insert records
    for name in RESOURCES:
        ids, rows = _ids(pipeline, name)
        assert rows == len(ids), f"{name}: duplicated ids"
        assert before[name] <= ids <= grown[name], name
    run(pipeline, **source_args(sandbox, **ARGS))
    assert_equals_truth(sandbox, pipeline)


def test_an_unannounced_field_becomes_a_column_with_the_sandbox_values(
        sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.faults.replace([Fault(FaultKind.NEW_FIELD)])
    pipeline = new_pipeline(tmp_path)
    run(pipeline, **source_args(sandbox, **ARGS))
    sandbox.faults.replace([])
    assert_equals_truth(sandbox, pipeline)
    dataset = pipeline.dataset_name
    for name in RESOURCES:
        assert "sandbox_drift_field" in pipeline.default_schema.get_table_columns(name), name
        values = query(pipeline, f"SELECT DISTINCT sandbox_drift_field FROM {dataset}.{name}")
        assert values == [("new",)], name
    # the rest of each record is as the sandbox has it
    members = sandbox.world.entities["members"]
    expected = {r["id"]: (r["updatedAt"], r["isActive"], r["firstName"])
                for r in members.records(members.select())}
    loaded = {row[0]: (row[1].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", row[2], row[3])
              for row in query(pipeline, f"SELECT id, updated_at, is_active, first_name "
                                         f"FROM {dataset}.members")}
    assert loaded == expected
