"""The pinned schema: generated files stay in sync, money is exact, drift is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from wallet_elt.pipelines import schema_files
from wallet_elt.pipelines.pipeline import run
from wallet_elt.sandbox.faults import Fault, FaultKind
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet.catalog import ENTRIES, canonical_tables, entries_by_name
from wallet_elt.sources.wallet.columns import column_hints, is_money
from tests.conftest import new_pipeline, query, source_args


def test_generated_files_match_the_catalog() -> None:
    stale = schema_files.stale_files()
    assert not stale, f"regenerate with `wallet-elt schema --write`: {stale}"


def test_the_diagram_draws_every_reference_between_canonical_tables() -> None:
    erd = schema_files.erd_text()
    canonical = set(canonical_tables().values())
    for entry in ENTRIES:
        for column, target in entry.foreign_keys.items():
            parent = target.split(".")[0]
            if entry.name in canonical and parent in canonical:
                assert f'{parent} ||--o{{ {entry.name} : "{column}"' in erd
                assert f"{column} FK" in erd


def test_the_dictionary_describes_columns_from_the_reference() -> None:
    text = schema_files.dictionary_text()
    members = text[text.index("## members\n"):text.index("## member_counts\n")]
    assert "**canonical** table of `members`" in members
    assert "| `membership_tier_id` | " in members and "→ `membership_tiers.id`" in members
    described = schema_files.reference_descriptions(entries_by_name()["membership_tiers"])
    assert described["tier_name"] == "The tier name as defined by the merchant"
    assert "| `tier_name` | inferred |  | The tier name as defined by the merchant |" in text


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
def test_type_drift_is_kept_and_reported(sandbox: Sandbox, tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    run(pipeline, **source_args(sandbox, resources=["members"]))
    sandbox.world.advance(minutes=5, update=3, entities=["members"])
    # pointsAccrued (the first integer field of a member) arrives as text
    sandbox.faults.replace([Fault(FaultKind.TYPE_CHANGE, route="POST /v2/membership/member/page")])
    summary = run(pipeline, **source_args(sandbox, resources=["members"]))
    assert len(summary.drift) == 1
    assert summary.drift[0].startswith("members.points_accrued__v_text: 3 rows")
    assert any("type drift: members.points_accrued" in line for line in summary.lines())
    kept = query(pipeline, f"SELECT count(*) FROM {pipeline.dataset_name}.members "
                           "WHERE points_accrued__v_text IS NOT NULL")[0][0]
    assert kept >= 3, "the drifted values are kept, not dropped"


def test_frozen_contract_stops_on_type_drift(sandbox: Sandbox, tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=["members"], schema_contract="freeze")
    run(pipeline, **args)
    sandbox.world.advance(minutes=5, update=3, entities=["members"])
    sandbox.faults.replace([Fault(FaultKind.TYPE_CHANGE, route="POST /v2/membership/member/page")])
    with pytest.raises(Exception, match="points_accrued"):
        run(pipeline, **args)


@pytest.mark.parametrize("arrow", [True, False], ids=["arrow", "rows"])
def test_frozen_contract_stops_on_a_new_field(sandbox: Sandbox, tmp_path: Path,
                                              arrow: bool) -> None:
    """A field the schema does not hold stops a frozen run the same way whether its pages
    travel as Arrow tables or as rows, and nothing of that run lands."""
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=["members"], schema_contract="freeze", arrow=arrow)
    first = run(pipeline, **args)
    sandbox.world.advance(minutes=5, update=3, entities=["members"])
    sandbox.faults.replace([Fault(FaultKind.NEW_FIELD, route="POST /v2/membership/member/page")])
    with pytest.raises(Exception, match="sandbox_drift_field"):
        run(pipeline, **args)
    assert "sandbox_drift_field" not in pipeline.default_schema.get_table_columns("members")
    loaded = query(pipeline, f"SELECT count(*) FROM {pipeline.dataset_name}.members")
    assert loaded == [(first.rows["members"],)]
