"""The pinned schema: generated files stay in sync, money is exact, drift is reported."""

from __future__ import annotations

import pytest

from pipelines import schema_files
from sources.wallet.catalog import ENTRIES
from sources.wallet.columns import column_hints, is_money
from tests.conftest import query


def test_generated_files_match_the_catalog() -> None:
    stale = schema_files.stale_files()
    assert not stale, f"regenerate with `wallet-elt schema --write`: {stale}"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_no_money_column_is_a_float(entry) -> None:
    for name, column in column_hints(entry).items():
        if is_money(name) or name in ("amount", "points"):
            assert column["data_type"] == "decimal", f"{entry.name}.{name}"


def test_money_lands_exact_in_duckdb(full_load) -> None:
    pipeline, _ = full_load
    types = dict(query(pipeline, "SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'ledger_transactions' AND table_schema = "
                                 f"'{pipeline.dataset_name}'"))
    assert types["transaction_amount"] == "DECIMAL(19,0)"
    assert types["transaction_amount_decimal"] == "DECIMAL(19,2)"
    assert types["created_at"] == "TIMESTAMP WITH TIME ZONE"
