"""Every foreign key the catalog declares resolves in a full load of the sandbox: each non-null
value of the column is a key of the table it names."""

from __future__ import annotations

from typing import Any

import pytest

from wallet_elt.sources.wallet.catalog import ENTRIES, Entry, entries_by_name
from tests.conftest import query

DECLARED = [(entry, column, target) for entry in ENTRIES
            for column, target in entry.foreign_keys.items()]


def test_every_parent_key_is_a_declared_foreign_key() -> None:
    for entry in ENTRIES:
        if entry.parent:
            assert entry.parent_key in entry.foreign_keys, entry.name


@pytest.mark.parametrize("entry, column, target", DECLARED,
                         ids=[f"{e.name}.{c}" for e, c, _ in DECLARED])
def test_declared_foreign_key_names_a_canonical_key(entry: Entry, column: str,
                                                    target: str) -> None:
    table, key = target.split(".")
    referenced = entries_by_name()[table]
    assert referenced.canonical or entry.parent == table, f"{target} is no canonical table"
    assert (key,) == referenced.primary_key, f"{target} is not the key of {table}"


@pytest.mark.parametrize("entry, column, target", DECLARED,
                         ids=[f"{e.name}.{c}" for e, c, _ in DECLARED])
def test_declared_foreign_key_resolves_in_a_full_load(full_load: Any, entry: Entry, column: str,
                                                      target: str) -> None:
    pipeline, _ = full_load
    dataset = pipeline.dataset_name
    assert column in pipeline.default_schema.get_table_columns(entry.name), \
        f"{entry.name} has no column {column}"
    table, key = target.split(".")
    values, orphans = query(pipeline, f"""
        SELECT count(c.{column}), count(c.{column}) FILTER (WHERE p.{key} IS NULL)
        FROM {dataset}.{entry.name} c LEFT JOIN {dataset}.{table} p ON p.{key} = c.{column}
        """)[0]
    assert values > 0, f"{entry.name}.{column} is never set: nothing shows the key resolves"
    assert orphans == 0, f"{orphans} of {values} {entry.name}.{column} name no {target}"
