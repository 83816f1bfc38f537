"""What the sandbox holds for a catalog entry, computed from the world's records rather than
over HTTP or by the code that answers requests, so that tests compare the warehouse against an
independent truth: a bug shared by the connector and the sandbox's responder cannot hide.

The truth reads the catalog's claims (which entity a route returns, its parent, its filters)
and the reference's (whether the route hides archived records), then selects from every
record of the entity: the sandbox's route map is never consulted.
"""

from __future__ import annotations

import numpy as np

from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet import spec
from wallet_elt.sources.wallet.catalog import RECORD_STRATEGIES as RECORD_STRATEGIES
from wallet_elt.sources.wallet.catalog import Entry, entries_by_name


def _hides_archived(entry: Entry) -> bool:
    """The route offers isArchiveIncluded and the entry does not ask for archived records."""
    op = entry.operation
    offered = "isArchiveIncluded" in op.query_params or "isArchiveIncluded" in op.body_fields
    return offered and entry.params.get("isArchiveIncluded") is not True


def record_ids(box: Sandbox, entry: Entry) -> set[str]:
    """Ids of every record the entry's route serves, over every parent, whole history."""
    world = box.world
    entity = world.entities[entry.entity]
    with world.lock:
        records = entity.records(np.arange(entity.count))
    if _hides_archived(entry):
        records = [r for r in records if r["isActive"]]
    records = [r for r in records
               if all(r.get(k) == v for k, v in entry.record_filter.items())]
    if not entry.parent:
        # A singleton route answers one record: the oldest.
        return {r["id"] for r in records[:1]} if _singleton(entry) else {r["id"] for r in records}
    parent = entries_by_name()[entry.parent]
    link = next(f for f, t in entity.definition.links.items() if t == parent.entity)
    parents = record_ids(box, parent)
    kept: dict[str, list[str]] = {}
    for record in records:
        if record[link] in parents:
            kept.setdefault(record[link], []).append(record["id"])
    if _singleton(entry):
        return {ids[0] for ids in kept.values()}
    return {i for ids in kept.values() for i in ids}


def _singleton(entry: Entry) -> bool:
    return spec.read_kind(entry.route) == "get_one"


# A subset with every record strategy and a fan-out, used by the fault suite and the soak.
FAULT_SUBSET = ["members", "phone_numbers", "phone_number_outbound_sms_pages",
                "ledger_transactions", "performance_ticket_pages"]


def routes_of(resources: list[str]) -> list[str]:
    """Every route a run of these resources calls: their own and their parents'."""
    entries = entries_by_name()
    return sorted({entries[name].route for name in resources}
                  | {entries[entries[name].parent].route for name in resources
                     if entries[name].parent})
