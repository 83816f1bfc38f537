"""Runs that converge under sustained transient faults, with DEFAULT settings: the budget adapts
to a server rate limit it was never told about, a fan-out child's failed parents end alone, and
the next run fetches only the parents the current pass still lacks. Judged against the
sandbox's truth (tests/truth.py) and its request counters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pytest

from wallet_elt.pipelines.pipeline import PartialLoad, RunSummary, run
from wallet_elt.sandbox.faults import Fault, FaultKind, FaultPlan
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet.catalog import entries_by_name
from tests.conftest import new_pipeline, query, source_args, start_sandbox
from tests.truth import record_ids

ENTRIES = entries_by_name()
CHILD = "member_points_histories"  # fans out over members: one request per member
CHILD_ROUTE = ENTRIES[CHILD].route
# A parent and its child (snapshot, one request per parent) and a cursor child of another.
RESOURCES = ["members", CHILD, "phone_numbers", "phone_number_outbound_sms"]


def _loaded(pipeline: dlt.Pipeline, table: str) -> tuple[set[str], int]:
    """(distinct ids, row count) of a warehouse table; empty if it was never created."""
    if table not in pipeline.default_schema.data_table_names():
        return set(), 0
    rows = query(pipeline, f"SELECT id FROM {pipeline.dataset_name}.{table}")
    return {row[0] for row in rows}, len(rows)


def _statuses(box: Sandbox, route: str | None = None) -> dict[str, int]:
    """Answers per status since the last reset, for one route or all of them."""
    total: dict[str, int] = {}
    for key, statuses in box.stats()["routes"].items():
        if route is None or key == route:
            for status, count in statuses.items():
                total[status] = total.get(status, 0) + count
    return total


def _few_429s(statuses: dict[str, int]) -> bool:
    """What an adaptive budget costs: the first 429s catch every request in flight (default
    concurrency 8) for a few rounds while the rate is found, then about one per recovery
    cycle; the original code answered a quarter of its requests with a 429."""
    return statuses.get("429", 0) <= 3 * 8 + sum(statuses.values()) // 20


def _run(pipeline: dlt.Pipeline, box: Sandbox, **extra: Any) -> tuple[RunSummary, bool]:
    """One run; (its summary, whether it loaded everything)."""
    try:
        return run(pipeline, **source_args(box, **extra)), True
    except PartialLoad as partial:
        return partial.summary, False


def _done_parents(pipeline: dlt.Pipeline) -> int:
    """Parents of CHILD completed in its current pass, as the committed state says."""
    state = pipeline.state["sources"]["wallet"]["resources"][CHILD]
    return sum(part.get("pass") == state["pass"] for part in state["parents"].values())


@pytest.fixture
def big_sandbox() -> Iterator[Sandbox]:
    """300 members: enough parents that the original fan-out never finished under the mix."""
    box = start_sandbox(scale=6000)
    yield box
    box.stop()


def test_an_unannounced_rate_limit_costs_few_429s_with_default_settings(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """The server allows 15 requests/s; the connector is not told (requests_per_second = 0).
    Before the adaptive budget, a 429 slowed nothing: about a quarter of all answers were 429s
    and the child failed when a parent ran out of attempts."""
    sandbox.faults = FaultPlan(7, rate_limit=15)
    pipeline = new_pipeline(tmp_path)
    summary, complete = _run(pipeline, sandbox, resources=["members", CHILD])
    assert complete, summary.failures
    assert _few_429s(_statuses(sandbox)), _statuses(sandbox)
    for name in ("members", CHILD):
        ids, rows = _loaded(pipeline, name)
        assert ids == record_ids(sandbox, ENTRIES[name]) and rows == len(ids), name


def test_the_next_run_fetches_only_the_parents_a_partial_run_left(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """With one attempt per request, a tenth of the parents fail: the others must load in the
    same run, and the rerun must ask only for the failed ones; a run after a complete pass
    starts a new pass over every parent."""
    members = len(record_ids(sandbox, ENTRIES["members"]))
    truth = record_ids(sandbox, ENTRIES[CHILD])
    sandbox.faults = FaultPlan(7, [Fault(FaultKind.ERROR_503, route=CHILD_ROUTE,
                                         probability=0.1)])
    pipeline = new_pipeline(tmp_path)
    summary, complete = _run(pipeline, sandbox, resources=["members", CHILD], max_attempts=1)
    assert not complete and CHILD in summary.failures
    assert "parents failed; the others loaded" in summary.failures[CHILD]
    done = _done_parents(pipeline)
    assert members // 2 <= done < members, "one failed parent must not stop the others"
    ids, _ = _loaded(pipeline, CHILD)
    assert len(ids) >= members // 2

    sandbox.faults = FaultPlan(7)
    sandbox.reset_stats()
    _, complete = _run(pipeline, sandbox, resources=["members", CHILD])
    assert complete
    # One page per member at this scale: one request per parent still pending.
    assert _statuses(sandbox, CHILD_ROUTE) == {"200": members - done}
    ids, rows = _loaded(pipeline, CHILD)
    assert ids == truth and rows == len(ids)

    sandbox.world.advance(minutes=1, create=1, entities=["members"])
    sandbox.reset_stats()
    _run(pipeline, sandbox, resources=["members", CHILD])
    assert _statuses(sandbox, CHILD_ROUTE) == {"200": members + 1}, (
        "after a complete pass a new pass covers every parent, not only the new one")


def test_the_fault_mix_converges_to_truth_within_three_runs(
        big_sandbox: Sandbox, tmp_path: Path) -> None:
    """Issue 11 item 4's mix (20% 503s, 5% resets, 2% timeouts) under a 15 requests/s limit,
    with default settings but a 2 s request timeout (the server holds a timed-out request 3 s).
    The original code left member_points_histories at 81 and 89 of 300 in two runs."""
    box = big_sandbox
    box.faults = FaultPlan(7, [Fault(FaultKind.ERROR_503, probability=0.2),
                               Fault(FaultKind.RESET, probability=0.05),
                               Fault(FaultKind.TIMEOUT, probability=0.02, value=3.0)],
                           rate_limit=15)
    truth = {name: record_ids(box, ENTRIES[name]) for name in RESOURCES}
    pipeline = new_pipeline(tmp_path)
    loaded_before = 0
    for attempt in range(1, 4):
        box.reset_stats()
        summary, complete = _run(pipeline, box, resources=RESOURCES, request_timeout=2.0)
        assert _few_429s(_statuses(box)), _statuses(box)
        loaded = sum(len(_loaded(pipeline, name)[0]) for name in RESOURCES)
        if complete:
            break
        assert loaded > loaded_before, f"run {attempt} made no progress: {summary.failures}"
        loaded_before = loaded
    assert complete, f"not converged after 3 runs: {summary.failures}"
    for name, expected in truth.items():
        ids, rows = _loaded(pipeline, name)
        assert rows == len(ids), f"{name}: {rows - len(ids)} duplicated ids"
        assert ids == expected, (f"{name}: {len(expected - ids)} missing, "
                                 f"{len(ids - expected)} not in the sandbox")
