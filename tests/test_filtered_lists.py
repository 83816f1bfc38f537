"""Filtered lists and derived counts stay true: a record that leaves a route's filter leaves
its table, and a count computed from other records follows them, run after run."""

from __future__ import annotations

from pathlib import Path

import dlt
import numpy as np
import pytest

from wallet_elt.pipelines.pipeline import PartialLoad, run
from wallet_elt.sandbox.faults import Fault, FaultKind
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet.catalog import ENTRIES, Strategy, entries_by_name
from tests.conftest import new_pipeline, pipeline_on, query, source_args
from tests.test_bigquery import (  # noqa: F401 (fixtures)
    bigquery_credentials,
    bigquery_emulator,
    bigquery_env,
)
from tests.test_destinations import postgres_credentials  # noqa: F401 (a fixture)

REDEEMED = entries_by_name()["static_voucher_campaign_redeemed_vouchers"]
TIER_COUNTS = entries_by_name()["membership_tier_member_counts"]
# The fixture that makes each destination other than DuckDB reachable (or skips the case).


def _redeemed_truth(box: Sandbox) -> set[tuple[str, str]]:
    """(voucher, campaign) of every voucher whose record says it is redeemed now, read from
    the vouchers themselves."""
    vouchers = box.world.entities["static_vouchers"]
    return {(r["id"], r["campaignID"]) for r in vouchers.records(np.arange(vouchers.count))
            if r["isRedeemed"] is True}


def _redeemed_table(pipeline: dlt.Pipeline) -> set[tuple[str, str]]:
    rows = query(pipeline, f"SELECT id, static_voucher_campaign_id FROM "
                           f"{pipeline.dataset_name}.{REDEEMED.name}")
    return {(str(a), str(b)) for a, b in rows}


def _member_counts_truth(box: Sandbox) -> dict[str, int]:
    """Members per tier, counted over the members' own `membershipTierID`."""
    members = box.world.entities["members"]
    tiers = box.world.entities["membership_tiers"]
    counts = {r["id"]: 0 for r in tiers.records(np.arange(tiers.count))}
    for record in members.records(np.arange(members.count)):
        counts[record["membershipTierID"]] += 1
    return counts


def _member_counts_table(pipeline: dlt.Pipeline) -> dict[str, int]:
    rows = query(pipeline, f"SELECT id, member_count FROM "
                           f"{pipeline.dataset_name}.{TIER_COUNTS.name}")
    return {str(tier): int(count) for tier, count in rows}


def test_every_filtered_route_is_read_whole_and_derived_counts_have_no_cursor() -> None:
    filtered = {e.name for e in ENTRIES if e.record_filter and e.strategy is not Strategy.COUNT}
    assert filtered == {REDEEMED.name}
    assert REDEEMED.strategy is Strategy.FILTERED
    assert TIER_COUNTS.strategy is Strategy.SNAPSHOT


@pytest.mark.parametrize("destination", ["duckdb", "postgres", "bigquery"])
def test_filtered_list_and_derived_counts_follow_the_records(
        sandbox: Sandbox, tmp_path: Path, destination: str,
        request: pytest.FixtureRequest) -> None:
    """On every destination: the hard delete is the destination's own merge SQL."""
    pipeline = pipeline_on(destination, tmp_path, request)
    if destination != "duckdb":
        request.addfinalizer(lambda: _drop(pipeline))
    args = source_args(sandbox, resources=[REDEEMED.name, TIER_COUNTS.name])
    run(pipeline, **args)
    assert _redeemed_table(pipeline) == _redeemed_truth(sandbox)
    assert _member_counts_table(pipeline) == _member_counts_truth(sandbox)
    left = 0
    for _ in range(3):
        # Updates flip vouchers in and out of "redeemed"; new members change tier counts
        # without touching the tiers' updatedAt.
        before = _redeemed_truth(sandbox)
        sandbox.world.advance(minutes=30, update=40, entities=["static_vouchers"])
        sandbox.world.advance(minutes=30, create=25, entities=["members"])
        left += len(before - _redeemed_truth(sandbox))
        run(pipeline, **args)
        assert _redeemed_table(pipeline) == _redeemed_truth(sandbox)
        assert _member_counts_table(pipeline) == _member_counts_truth(sandbox)
    assert left > 0, "the advances un-redeemed no voucher: the test proves nothing"
    # The marker rows that deleted the leavers left nothing behind in the table
    marked = query(pipeline, f"SELECT count(*) FROM {pipeline.dataset_name}.{REDEEMED.name} "
                             "WHERE _wallet_left_filter")
    assert marked[0][0] == 0


def _drop(pipeline: dlt.Pipeline) -> None:
    with pipeline.sql_client() as client:
        client.drop_dataset()


def test_a_failed_filtered_read_deletes_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=[REDEEMED.name])
    run(pipeline, **args)
    loaded = _redeemed_table(pipeline)
    assert loaded == _redeemed_truth(sandbox)
    # When vouchers leave the filter but the route fails partway through the campaigns
    sandbox.world.advance(minutes=30, update=40, entities=["static_vouchers"])
    sandbox.faults.replace([Fault(FaultKind.ERROR_500, route=REDEEMED.route, after=3)])
    with pytest.raises(PartialLoad):
        run(pipeline, **{**args, "max_attempts": 1})
    # Then no row still in the filter was deleted, nothing but leavers went, and the next
    # run catches up exactly
    truth, table = _redeemed_truth(sandbox), _redeemed_table(pipeline)
    assert loaded & truth <= table <= loaded | truth
    sandbox.faults.replace([])
    run(pipeline, **args)
    assert _redeemed_table(pipeline) == _redeemed_truth(sandbox)

