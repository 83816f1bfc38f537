"""The catalog covers the API reference: every loadable read route is an entry or excluded."""

from __future__ import annotations

import pytest

from wallet_elt.sources.wallet import spec
from wallet_elt.sources.wallet.catalog import (
    ENTRIES,
    EXCLUDED,
    LINKS,
    LOADED_READ_KINDS,
    MAX_NAME,
    REPEATS,
    Strategy,
    canonical_tables,
    entries_by_name,
    singular,
)


def _must_be_covered() -> set[str]:
    routes = set()
    for row in spec.endpoint_rows():
        kind = row["read_kind"]
        singleton = kind == "get_one" and "{" not in row["path"]
        if kind in LOADED_READ_KINDS or singleton:
            routes.add(f"{row['method']} {row['path']}")
    return routes


def test_every_loadable_read_route_is_in_the_catalog_or_excluded_with_a_reason() -> None:
    covered = {entry.route for entry in ENTRIES} | set(EXCLUDED)
    missing = sorted(_must_be_covered() - covered)
    assert not missing, f"routes neither in the catalog nor excluded: {missing}"
    assert all(len(reason) > 20 for reason in EXCLUDED.values())


def test_no_route_is_both_loaded_and_excluded_and_all_exist() -> None:
    loaded = {entry.route for entry in ENTRIES}
    assert not loaded & set(EXCLUDED)
    for route in loaded | set(EXCLUDED):
        spec.operation(route)  # raises for a route the spec does not have


def test_resource_names_are_unique_snake_case_and_fit_postgres() -> None:
    names = [entry.name for entry in ENTRIES]
    assert len(names) == len(set(names))
    assert max(len(name) for name in names) <= MAX_NAME
    assert all(name == name.lower() and " " not in name for name in names)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.parent], ids=lambda e: e.name)
def test_children_name_a_parent_and_carry_its_key(entry) -> None:
    parent = entries_by_name()[entry.parent]
    assert parent.parent is None, "fan-out is one level deep"
    assert entry.parent_key == f"{singular(entry.parent)}_id"
    keyed = entry.parent_key in entry.primary_key or entry.primary_key == ("id",)
    assert keyed or entry.write_disposition == "replace"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_entry_has_a_consistent_loading_contract(entry) -> None:
    op = entry.operation
    if entry.strategy in (Strategy.WINDOW, Strategy.DAILY, Strategy.PER_WINDOW):
        assert op.window_params, "windowed strategies need a server-side window"
    if entry.strategy is Strategy.CURSOR:
        assert entry.cursor and entry.primary_key == ("id",)
    if entry.write_disposition == "merge":
        assert entry.primary_key, "merge needs a key"
    if entry.archive_flag and entry.strategy in (Strategy.CURSOR, Strategy.SNAPSHOT):
        assert entry.params.get("isArchiveIncluded") is True, "archived records must be seen"


def test_singular_names_children() -> None:
    assert singular("phone_numbers") == "phone_number"
    assert singular("opt_in_lists") == "opt_in_list"
    assert singular("static_voucher_campaigns") == "static_voucher_campaign"
    assert singular("openai_threads") == "openai_thread"
    assert singular("news_articles") == "news_article"


def test_every_record_family_has_exactly_one_canonical_table() -> None:
    families: dict[str, list[str]] = {}
    for entry in ENTRIES:
        if entry.family:
            families.setdefault(entry.family, []).append(entry.name)
    canonical = canonical_tables()
    assert set(canonical) == set(families)
    for family, tables in families.items():
        assert [t for t in tables if entries_by_name()[t].canonical] == [canonical[family]], \
            f"{family}: tables {tables}"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_a_table_beside_its_familys_canonical_one_says_what_it_adds(entry) -> None:
    if entry.family is None:
        assert not entry.adds and not entry.family_name, "only record tables have a family"
    elif not entry.canonical:
        assert len(entry.adds) > 20, f"{entry.name}: what does it add to {entry.family}?"


def test_a_route_excluded_as_a_repeat_names_the_canonical_table_it_repeats() -> None:
    canonical = set(canonical_tables().values())
    for route, (table, why) in REPEATS.items():
        assert table in canonical, f"{route}: {table} is not a canonical table"
        assert route in EXCLUDED and table in EXCLUDED[route] and why


def test_every_link_names_a_canonical_table_keyed_on_id() -> None:
    canonical = set(canonical_tables().values())
    for field_name, table in LINKS.items():
        assert table in canonical, field_name
        assert entries_by_name()[table].primary_key == ("id",), table
