"""The `_wallet_*` metadata columns mean what they say: the archive flag exists only where
there are records to archive, `_wallet_extracted_at` is a typed timestamp of the run (one value
per load, the load time dbt freshness can use), and the README's filter keeps only the rows of
loads dlt completed."""

from __future__ import annotations

import re
from pathlib import Path

from wallet_elt.sandbox.server import Sandbox
from wallet_elt.pipelines.pipeline import run
from wallet_elt.sources.wallet.catalog import ENTRIES, Strategy
from wallet_elt.sources.wallet.columns import column_hints
from tests.conftest import new_pipeline, query, source_args

ROOT = Path(__file__).resolve().parents[1]
AGGREGATES = (Strategy.DAILY, Strategy.PER_WINDOW, Strategy.COUNT)
ARCHIVE = {"_wallet_archived", "_wallet_archived_at"}
RESOURCES = ["members", "phone_numbers", "analytics_membership_member_count", "member_counts"]


def test_only_record_tables_have_the_archive_columns() -> None:
    for entry in ENTRIES:
        columns = set(column_hints(entry))
        if entry.strategy in AGGREGATES:
            assert not ARCHIVE & columns, entry.name
        else:
            assert ARCHIVE <= columns, entry.name


def _completed_rows_sql() -> str:
    """The README's query for the rows of completed loads."""
    readme = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```sql\n(.*?)```", readme, re.S) if "_dlt_loads" in b]
    assert len(blocks) == 1, "the README shows one query filtering on _dlt_loads"
    return blocks[0]


def test_extracted_at_is_the_typed_time_of_each_load_and_the_filter_drops_incomplete_loads(
        sandbox: Sandbox, tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    dataset = pipeline.dataset_name
    run(pipeline, **source_args(sandbox, resources=RESOURCES))
    sandbox.world.advance(minutes=60, create=5, entities=["members"])
    run(pipeline, **source_args(sandbox, resources=RESOURCES))
    types = dict(query(pipeline, "SELECT table_name, data_type FROM information_schema.columns "
                                 f"WHERE table_schema = '{dataset}' "
                                 "AND column_name = '_wallet_extracted_at'"))
    assert types == {name: "TIMESTAMP WITH TIME ZONE" for name in RESOURCES}
    for name in RESOURCES:
        # one value per load, never after dlt recorded the load as complete
        per_load = query(pipeline, f"SELECT t._dlt_load_id, count(DISTINCT t._wallet_extracted_at),"
                                   " bool_and(t._wallet_extracted_at <= l.inserted_at) "
                                   f"FROM {dataset}.{name} t JOIN {dataset}._dlt_loads l "
                                   "ON l.load_id = t._dlt_load_id GROUP BY 1")
        assert per_load and all(n == 1 and before for _, n, before in per_load), name
    # A load whose jobs committed but which dlt never marked complete (a killed run) is what
    # the README's filter leaves out.
    loads = [row[0] for row in query(pipeline, f"SELECT load_id FROM {dataset}._dlt_loads "
                                               "ORDER BY load_id")]
    assert len(loads) == 2
    query(pipeline, f"DELETE FROM {dataset}._dlt_loads WHERE load_id = '{loads[1]}'")
    members = {row[0]: row[1] for row in query(
        pipeline, f"SELECT id, _dlt_load_id FROM {dataset}.members")}
    assert loads[1] in members.values()
    shown = query(pipeline, f"SELECT id FROM ({_completed_rows_sql()})")
    assert sorted(row[0] for row in shown) == sorted(
        key for key, load in members.items() if load == loads[0])
