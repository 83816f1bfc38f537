"""Incremental loading against a world that changes (Given / When / Then)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import dlt

from wallet_elt.pipelines.pipeline import run
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet.catalog import ENTRIES
from wallet_elt.sources.wallet.columns import column_hints, column_name
from tests.conftest import new_pipeline, query, source_args

SUBSET = ["members", "phone_numbers", "phone_number_outbound_sms_pages", "ledger_transactions",
          "analytics_membership_member_count", "member_counts", "dashboard_count_members"]


def _warehouse_members(pipeline: dlt.Pipeline) -> dict[str, tuple[bool, bool]]:
    rows = query(pipeline, f"SELECT id, is_active, _wallet_archived FROM "
                           f"{pipeline.dataset_name}.members")
    return {row[0]: (row[1], row[2]) for row in rows}


def _sandbox_members(box: Sandbox) -> dict[str, tuple[bool, bool]]:
    entity = box.world.entities["members"]
    return {r["id"]: (r["isActive"], not r["isActive"])
            for r in entity.records(entity.select())}


def _state(pipeline: dlt.Pipeline, resource: str) -> dict[str, Any]:
    return pipeline.state["sources"]["wallet"]["resources"][resource]


def test_rerun_after_changes_loads_exactly_the_changes(sandbox: Sandbox, tmp_path: Path) -> None:
    # Given a full load of a subset
    pipeline = new_pipeline(tmp_path)
    first = run(pipeline, **source_args(sandbox, resources=SUBSET))
    assert first.rows["members"] == sandbox.world.entities["members"].count
    # When the sandbox creates, updates and archives members and ledger entries
    sandbox.world.advance(minutes=60, create=5, update=3, archive=2,
                          entities=["members", "ledger_entries", "outbound_sms"])
    sandbox.reset_stats()
    second = run(pipeline, **source_args(sandbox, resources=SUBSET))
    # Then exactly the changed members are loaded, and the warehouse equals the sandbox
    assert second.rows["members"] == 5 + 3 + 2
    assert _warehouse_members(pipeline) == _sandbox_members(sandbox)
    ledger = sandbox.world.entities["ledger_entries"]
    loaded = query(pipeline, f"SELECT count(*), count(DISTINCT id) FROM "
                             f"{pipeline.dataset_name}.ledger_transactions")[0]
    assert loaded == (ledger.count, ledger.count)
    outbound = sandbox.world.entities["outbound_sms"]
    loaded = query(pipeline, f"SELECT count(*), count(DISTINCT id) FROM "
                             f"{pipeline.dataset_name}.phone_number_outbound_sms_pages")[0]
    assert loaded == (outbound.count, outbound.count)
    # and the incremental run asked for far fewer records than the first
    assert sandbox.stats()["records"] < first.rows["ledger_transactions"]
    assert query(pipeline, f"SELECT count(*) FROM {pipeline.dataset_name}.member_counts")[0][0] == 2


def test_rerun_without_changes_loads_nothing_new_with_the_minimum_requests(
        sandbox: Sandbox, tmp_path: Path) -> None:
    # Given a full load
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=SUBSET, page_size=100)
    run(pipeline, **args)
    counts = {t: _count(pipeline, t) for t in SUBSET}
    # When nothing changed and the pipeline runs again
    sandbox.reset_stats()
    again = run(pipeline, **args)
    # Then no table gains a row, cursor lists load nothing, and each route is asked only what
    # its strategy needs: full lists every page, windows only the lookback window
    assert {t: _count(pipeline, t) for t in SUBSET if t != "member_counts"} == \
        {t: n for t, n in counts.items() if t != "member_counts"}
    assert again.rows.get("members", 0) == 0 and again.rows.get("phone_numbers", 0) == 0
    assert _count(pipeline, "member_counts") == 2  # a count series gains one row per run
    requests = {route: sum(by_status.values())
                for route, by_status in sandbox.stats()["routes"].items()}
    members = sandbox.world.entities["members"].count
    phones = sandbox.world.entities["phone_numbers"].count
    assert requests == {
        "POST /v2/membership/member/page": members // 100 + 1,
        "GET /v2/merchant/phoneNumbers/all": 2,  # the table, and its children's keys
        "GET /v2/sms/outbound/page/{phoneNumberID}": phones,  # one lookback window each
        "GET /v2/pos/ledger/transactions/all": 1,
        "GET /v2/analytics/membership/member/count": 1,
        "GET /v2/membership/member/count": 1,
        # daily windows: the 7-day analytics lookback, plus today's partial window
        "GET /v2/dashboard/count/members": 7 + 1,
    }


def _count(pipeline: dlt.Pipeline, table: str) -> int:
    return query(pipeline, f"SELECT count(*) FROM {pipeline.dataset_name}.{table}")[0][0]


def test_child_cursors_are_kept_per_parent(sandbox: Sandbox, tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    run(pipeline, **source_args(sandbox, resources=["phone_number_outbound_sms_pages"]))
    parents = _state(pipeline, "phone_number_outbound_sms_pages")["parents"]
    phones = sandbox.world.entities["phone_numbers"]
    assert set(parents) == {r["id"] for r in phones.records(phones.select())}
    assert all("window_end" in slice_ for slice_ in parents.values())


def test_bounded_backfill_leaves_the_stored_cursor_alone(sandbox: Sandbox,
                                                         tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    run(pipeline, **source_args(sandbox, resources=["ledger_transactions"]))
    before = dict(_state(pipeline, "ledger_transactions")["parents"]["_"])
    run(pipeline, **source_args(sandbox, resources=["ledger_transactions"],
                                backfill_start="2025-01-01T00:00:00Z",
                                backfill_end="2025-02-01T00:00:00Z"))
    assert _state(pipeline, "ledger_transactions")["parents"]["_"] == before
    ledger = sandbox.world.entities["ledger_entries"]
    total = query(pipeline, f"SELECT count(*) FROM {pipeline.dataset_name}.ledger_transactions")
    assert total[0][0] == ledger.count


def test_a_record_seen_twice_in_one_run_lands_as_its_newest_version(tmp_path: Path) -> None:
    """A record updated while its list is being paged can arrive twice in one load, in either
    order; every cursor table's merge keeps the version with the later cursor."""
    entry = next(e for e in ENTRIES if e.name == "members")
    cursor = column_name(entry.cursor or "")
    older = {"id": "M000000001", entry.cursor: "2026-01-01T00:00:00Z", "firstName": "old",
             "_wallet_extracted_at": "2026-01-03T00:00:00Z", "_wallet_route": entry.route}
    newer = {**older, entry.cursor: "2026-01-02T00:00:00Z", "firstName": "new"}
    pipeline = new_pipeline(tmp_path)
    for pages in ([[newer], [older]], [[older], [newer]]):
        resource = dlt.resource(pages, name="members", primary_key="id",
                                write_disposition="merge", columns=column_hints(entry))
        pipeline.run(resource, loader_file_format="parquet")
        assert query(pipeline, f"SELECT first_name, {cursor} FROM "
                               f"{pipeline.dataset_name}.members") == [
            ("new", dt.datetime(2026, 1, 2, tzinfo=dt.UTC))]
