"""Rows of records deleted upstream get `_wallet_deleted_at`, after the load that saw it.

The source cannot flag them itself: the record is gone from the API, so there is no row to
load, and a merged row with only the key and the flag would blank every other column. So the
state keeps, per list read whole, the keys its last complete read answered and the ones it
no longer answers (`deleted`, with the run that first missed each; sources/wallet/
strategies.py `Runner._present`), and this step updates those rows in the destination. It
runs after every load from the state that load committed, and sets only flags not yet set:
a run killed between the load and this step is caught up by the next one, and a failed read,
whose state never moves, flags nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import dlt

from wallet_elt.sources.wallet import history
from wallet_elt.sources.wallet.catalog import entries_by_name
from wallet_elt.sources.wallet.columns import DELETED_AT, flags_deletions
from wallet_elt.sources.wallet.strategies import NO_PARENT
from wallet_elt.sources.wallet.windows import parse

CHUNK = 500  # keys per statement: well under every destination's parameter limit


def pending(pipeline: dlt.Pipeline) -> Iterator[tuple[str, str | None, str, list[str]]]:
    """(resource, parent or None, deleted-at, keys) for every deletion the state records."""
    resources = pipeline.state.get("sources", {}).get("wallet", {}).get("resources", {})
    entries = entries_by_name()
    for name, state in sorted(resources.items()):
        entry = entries.get(name)
        if entry is None or not flags_deletions(entry):
            continue
        for parent, slice_ in sorted(state.get("parents", {}).items()):
            by_time: dict[str, list[str]] = defaultdict(list)
            for key, at in slice_.get("deleted", {}).items():
                by_time[at].append(key)
            for at, keys in sorted(by_time.items()):
                yield name, None if parent == NO_PARENT else parent, at, sorted(keys)


def flag_deleted(pipeline: dlt.Pipeline) -> int:
    """Set `_wallet_deleted_at` on the current rows of deleted records (in history mode also
    closing their version, so a record that comes back opens a new one); the number of
    statements issued."""
    statements = 0
    entries = entries_by_name()
    schema = pipeline.default_schema if pipeline.default_schema_name else None
    # Tables loaded before the column existed get it with their next load.
    work = [item for item in pending(pipeline)
            if schema and DELETED_AT in schema.tables.get(item[0], {}).get("columns", {})]
    if not work:
        return 0
    assert schema is not None
    with pipeline.sql_client() as client:
        for name, parent, at, keys in work:
            entry = entries[name]
            versioned = history.VALID_TO in schema.get_table_columns(name)
            table = client.make_qualified_table_name(name)
            column = client.escape_column_name
            (key_column,) = entry.primary_key
            assignments = [f"{column(DELETED_AT)} = %s"]
            conditions = [f"{column(DELETED_AT)} IS NULL"]
            if versioned:
                assignments.append(f"{column(history.VALID_TO)} = %s")
                conditions.append(f"{column(history.VALID_TO)} IS NULL")
            scope: list[Any] = []
            if parent is not None and entry.parent_key:
                conditions.append(f"{column(entry.parent_key)} = %s")
                scope.append(parent)
            when = parse(at)
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start:start + CHUNK]
                marks = ", ".join(["%s"] * len(chunk))
                sql = (f"UPDATE {table} SET {', '.join(assignments)} "
                       f"WHERE {' AND '.join(conditions)} AND {column(key_column)} IN ({marks})")
                client.execute_sql(sql, *([when] * len(assignments)), *scope, *chunk)
                statements += 1
    return statements
