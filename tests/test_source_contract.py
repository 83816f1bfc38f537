"""Contract test over every catalog resource: loaded from the sandbox over HTTP into DuckDB,
it has rows, a unique primary key, and the metadata columns with their declared types."""

from __future__ import annotations

from typing import Any

import pytest

from wallet_elt.sources.wallet.catalog import ENTRIES, Entry, snake
from wallet_elt.sources.wallet.columns import column_hints
from tests.conftest import query
from tests.truth import RECORD_STRATEGIES, record_ids



def _table_columns(pipeline: Any, table: str) -> dict[str, Any]:
    return pipeline.default_schema.get_table_columns(table)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_resource_loads_rows_with_a_unique_key(full_load: Any, entry: Entry) -> None:
    pipeline, summary = full_load
    assert summary.rows.get(entry.name, 0) > 0, f"{entry.name} loaded no rows"
    dataset = pipeline.dataset_name
    total = query(pipeline, f"SELECT count(*) FROM {dataset}.{entry.name}")[0][0]
    assert total > 0
    if entry.primary_key:
        key = ", ".join(snake(k) if k[0] != "_" else k for k in entry.primary_key)
        distinct = query(pipeline, f"SELECT count(*) FROM (SELECT DISTINCT {key} "
                                   f"FROM {dataset}.{entry.name})")[0][0]
        assert distinct == total, f"{entry.name}: primary key {key} is not unique"
    columns = _table_columns(pipeline, entry.name)
    for name, hint in column_hints(entry).items():
        if name in columns:
            assert columns[name]["data_type"] == hint["data_type"], f"{entry.name}.{name}"
    variants = [name for name in columns if "__v_" in name]
    assert not variants, f"values that did not fit their declared type: {variants}"
    if entry.parent_key:
        nulls = query(pipeline, f"SELECT count(*) FROM {dataset}.{entry.name} "
                                f"WHERE {entry.parent_key} IS NULL")[0][0]
        assert nulls == 0, "every child row carries its parent's key"


def test_full_load_equals_the_sandbox_for_members_and_ledger(full_load: Any,
                                                             shared_sandbox: Any) -> None:
    pipeline, _ = full_load
    world = shared_sandbox.world
    dataset = pipeline.dataset_name
    members = world.entities["members"]
    assert query(pipeline, f"SELECT count(*) FROM {dataset}.members")[0][0] == members.count
    archived = query(pipeline, f"SELECT count(*) FROM {dataset}.members WHERE _wallet_archived")
    assert archived[0][0] == int((~members.active).sum()) > 0
    ledger = world.entities["ledger_entries"]
    loaded = query(pipeline, f"SELECT count(*) FROM {dataset}.ledger_transactions")[0][0]
    assert loaded == ledger.count


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.strategy in RECORD_STRATEGIES
                                   and e.primary_key == ("id",)], ids=lambda e: e.name)
def test_full_load_rows_equal_the_sandbox(full_load: Any, shared_sandbox: Any,
                                          entry: Entry) -> None:
    pipeline, _ = full_load
    loaded = {row[0] for row in query(pipeline, f"SELECT id FROM "
                                                f"{pipeline.dataset_name}.{entry.name}")}
    assert loaded == record_ids(shared_sandbox, entry)
