"""Every by-date analytics table equals, day by day, the series computed from the world's
records, after a first load and after incremental runs, in UTC and in a timezone with DST."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dlt
import numpy as np
import pendulum
import pytest

from wallet_elt.pipelines.pipeline import run
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sandbox.world import World, iso
from wallet_elt.sources.wallet import windows
from wallet_elt.sources.wallet.catalog import ENTRIES, Entry, Measure, Strategy, entries_by_name
from wallet_elt.sources.wallet.client import WalletClient
from wallet_elt.sources.wallet.strategies import Extraction, Runner, Settings
from tests.conftest import TEST_SCALE, new_pipeline, source_args

DAILY = [entry for entry in ENTRIES if entry.strategy is Strategy.DAILY]
DAILY_ENTITIES = sorted({entry.entity for entry in DAILY})
HISTORY_DAYS = 120
ADVANCE_MINUTES = 360  # two advances cross a UTC and a New York midnight (see _world_now)


def _world_now() -> datetime:
    """20:00 UTC two days before today: 6-hour advances reach 02:00 UTC (past the UTC
    midnight), then 08:00 UTC (past New York's), and the world's clock never passes the wall
    clock the connector windows up to."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=2) + timedelta(hours=20)


@pytest.fixture
def box() -> Iterator[Sandbox]:
    sandbox = Sandbox(World(seed=7, scale=TEST_SCALE, history_days=HISTORY_DAYS,
                            now=_world_now()))
    sandbox.start()
    yield sandbox
    sandbox.stop()


def expected(world: World, entry: Entry, timezone: str) -> dict[str, int]:
    """The series as the reference names it ("count ... by date", "amount ... by date"): per
    day of the route's timezone (UTC where it takes none), how many records of its entity were
    created that day, or the sum of their amount field; read from the records themselves."""
    entity = world.entities[entry.entity]
    zone = ZoneInfo(timezone if "timezone" in entry.operation.query_params else "UTC")
    amount = entity.definition.amount if entry.measure is Measure.AMOUNT else None
    per_day: dict[str, int] = {}
    for record in entity.records(np.arange(entity.count)):
        created = datetime.fromisoformat(record["createdAt"].replace("Z", "+00:00"))
        day = created.astimezone(zone).date().isoformat()
        per_day[day] = per_day.get(day, 0) + (int(record[amount]) if amount else 1)
    return per_day


def check(box: Sandbox, pipeline: dlt.Pipeline, summary: Any, timezone: str,
          first: bool) -> None:
    load_id = summary.load_info.loads_ids[-1]
    schema = pipeline.default_schema
    with pipeline.sql_client() as client:
        for entry in DAILY:
            table = f"{pipeline.dataset_name}.{entry.name}"
            columns = schema.tables[entry.name]["columns"]
            value = next(c for c in columns if c != "date" and not c.startswith("_"))
            rows = client.execute_sql(f"SELECT CAST(date AS VARCHAR), {value}, "
                                      f"_dlt_load_id = '{load_id}' FROM {table}")
            by_day = {day: int(total) for day, total, _ in rows}
            assert len(by_day) == len(rows), f"{entry.name}: a date appears twice"
            assert by_day == expected(box.world, entry, timezone), entry.name
            # The summary counts what this run wrote: every row it wrote carries its load id
            # (a merge rewrites the row); on a first load that is the whole table.
            written = sum(1 for *_, this_load in rows if this_load)
            assert summary.rows.get(entry.name, 0) == written, entry.name
            if first:
                assert written == len(rows), entry.name


def test_daily_series_equal_the_records_day_by_day_across_incremental_runs(
        box: Sandbox, tmp_path: Path) -> None:
    """New York days on the routes that take a timezone (a DST change is in the history), UTC
    days on the three that take none."""
    timezone = "America/New_York"
    # Given a first load in windows that do not divide the history into whole days
    pipeline = new_pipeline(tmp_path)
    args = source_args(box, resources=[entry.name for entry in DAILY], timezone=timezone,
                       window_step_days=9.5)
    check(box, pipeline, run(pipeline, **args), timezone, first=True)
    # When records keep arriving, across midnights, between incremental runs
    for _ in range(2):
        box.world.advance(minutes=ADVANCE_MINUTES, create=7, entities=DAILY_ENTITIES)
        summary = run(pipeline, **args)
        # Then every day of every series equals the records, the re-read days included
        check(box, pipeline, summary, timezone, first=False)


def test_the_current_day_is_read_whole_and_again_next_run_without_lookback(
        box: Sandbox) -> None:
    """With no lookback, the run after one that ended mid-day still re-reads that day from
    its midnight: rows merge on `date`, so a read from the last run's end would replace the
    day's count by the count of its last hours."""
    entry = entries_by_name()["analytics_outbound_sms_count_date_sent"]
    world = box.world
    timezone = "America/New_York"
    settings = Settings(start_date=windows.parse(iso(world.now - HISTORY_DAYS * 86400)),
                        window_step_days=7, analytics_lookback_days=0, timezone=timezone)
    state: dict[str, Any] = {}
    table: dict[str, int] = {}
    client = WalletClient(box.base_url, box.api_key)
    for _ in range(4):
        # The connector's clock is the world's, so each run ends in the world's today.
        ctx = Extraction(client, settings, now=pendulum.from_timestamp(world.now))
        for page in Runner(ctx, entry, state, None).run():
            table.update({row["date"]: row["count"] for row in page})
        assert table == expected(world, entry, timezone)
        world.advance(minutes=ADVANCE_MINUTES, create=5, entities=[entry.entity])
    client.close()


def test_a_bounded_backfill_reads_whole_days(box: Sandbox) -> None:
    """A backfill between two mid-day instants would write two partial days over whole ones:
    it is widened to the midnights around it."""
    entry = entries_by_name()["analytics_outbound_sms_count_date_sent"]
    world = box.world
    timezone = "America/New_York"
    start, end = world.now - 40.3 * 86400, world.now - 20.6 * 86400
    settings = Settings(start_date=windows.parse(iso(start)), timezone=timezone,
                        bounded=windows.Span(windows.parse(iso(start)), windows.parse(iso(end))))
    client = WalletClient(box.base_url, box.api_key)
    ctx = Extraction(client, settings, now=pendulum.from_timestamp(world.now))
    state: dict[str, Any] = {}
    rows = [row for page in Runner(ctx, entry, state, None).run() for row in page]
    client.close()
    zone = ZoneInfo(timezone)
    first = datetime.fromtimestamp(start, zone).date().isoformat()
    last = datetime.fromtimestamp(end, zone).date().isoformat()
    truth = {day: n for day, n in expected(world, entry, timezone).items()
             if first <= day <= last}
    assert {row["date"]: row["count"] for row in rows} == truth
    assert state == {}  # a bounded run leaves the stored window alone


def test_an_unknown_timezone_stops_the_run_before_any_request() -> None:
    with pytest.raises(ValueError, match="IANA time zone"):
        Settings(start_date=pendulum.now("UTC"), timezone="Mars/Olympus_Mons")
