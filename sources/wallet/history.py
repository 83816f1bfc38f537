"""History mode: chosen record tables keep every version of a record (dlt's `scd2` merge).

A plain merge overwrites a member's tier or points; in history mode the old row is retired
(`_wallet_valid_to` set) and the new one inserted (`_wallet_valid_from`), so a query can ask
what was true at any instant the warehouse saw. Off by default: it only adds rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from pendulum import DateTime

from wallet_elt.sources.wallet.catalog import Entry, Strategy, entries_by_name

VALID_FROM = "_wallet_valid_from"
VALID_TO = "_wallet_valid_to"
ROW_VERSION = "_wallet_row_version"
ALL = "*"
# Strategies whose rows are records with a key: their versions are the record's states.
# Aggregates and counts are series already (a row per period or capture); a filtered list
# deletes rows that leave its filter, which scd2 has no marker for.
ELIGIBLE = (Strategy.CURSOR, Strategy.SNAPSHOT, Strategy.WINDOW)
# Columns that differ between two reads of the same record state: a version is a change of
# anything else.
_UNVERSIONED = frozenset({"_wallet_extracted_at", ROW_VERSION})

COLUMNS: dict[str, dict[str, Any]] = {
    ROW_VERSION: {"data_type": "text", "nullable": False,
                  "description": "Digest of the record as loaded (history mode): a new value "
                                 "is a new version"},
}


def eligible(entry: Entry) -> bool:
    return entry.strategy in ELIGIBLE and bool(entry.primary_key)


def chosen(setting: str | Sequence[str] | None) -> set[str]:
    """Names of the resources the `history` setting puts in history mode: a list of resource
    names, or ["*"] for every eligible one. A name that is unknown or not eligible fails,
    naming the setting (a run of other resources leaves the chosen ones alone)."""
    if not setting:
        return set()
    names = {setting} if isinstance(setting, str) else set(setting)
    by_name = entries_by_name()
    if names == {ALL}:
        return {name for name, entry in by_name.items() if eligible(entry)}
    unknown = sorted(names - set(by_name))
    if unknown:
        raise ValueError(f"sources.wallet.history: unknown resources: {', '.join(unknown)} "
                         "(see `wallet-elt resources`)")
    refused = sorted(name for name in names if not eligible(by_name[name]))
    if refused:
        raise ValueError(
            f"sources.wallet.history: {', '.join(refused)} cannot keep history: only keyed "
            f"records ({', '.join(str(s) for s in ELIGIBLE)} strategies) have versions; "
            "aggregates, counts, filtered lists and snapshots without a key do not")
    return names


def columns(pinned: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The resource's columns in history mode: its pinned ones plus the version digest, and
    no `dedup_sort` (dlt applies it only with a primary key, which scd2 does not take)."""
    hints = {name: {k: v for k, v in hint.items() if k != "dedup_sort"}
             for name, hint in pinned.items()}
    return {**hints, **COLUMNS}


def write_hints(entry: Entry, boundary: DateTime) -> tuple[dict[str, Any], None, list[str]]:
    """dlt's (write disposition, primary key, merge key) for an entry in history mode.

    The merge key is the record's key: dlt then retires only the active versions of keys this
    load carries, so a cursor run, which yields the changed records only, leaves every other
    record's version open (without it, scd2 retires whatever a load does not carry).
    The boundary is the run's start, the same instant as `_wallet_extracted_at`: dlt takes one
    boundary per table and load, so a record's own `updatedAt` cannot be each version's
    start; the run's start is when the warehouse learnt the value (the change itself is in
    `updated_at`). Active versions have `_wallet_valid_to` NULL."""
    disposition = {
        "disposition": "merge", "strategy": "scd2",
        "validity_column_names": [VALID_FROM, VALID_TO],
        "active_record_timestamp": None,
        "boundary_timestamp": boundary,
        "row_version_column_name": ROW_VERSION,
    }
    return disposition, None, list(entry.primary_key)


def stamp(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each row its version digest: of every value but the run's timestamps, so the same
    record read again is the same version, and any change of a loaded value is a new one."""
    for row in rows:
        content = {k: v for k, v in row.items() if k not in _UNVERSIONED}
        text = json.dumps(content, sort_keys=True, default=str, separators=(",", ":"))
        row[ROW_VERSION] = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return rows
