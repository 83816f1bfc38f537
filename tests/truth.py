"""What the sandbox holds for a catalog entry, computed from the world rather than over HTTP,
so that tests compare the warehouse against an independent truth."""

from __future__ import annotations

from sandbox.routes import Request, Responder
from sandbox.server import Sandbox
from sources.wallet import spec
from sources.wallet.catalog import Entry, Strategy, entries_by_name

RECORD_STRATEGIES = (Strategy.CURSOR, Strategy.SNAPSHOT, Strategy.WINDOW, Strategy.FILTERED)


def _wire(value: object) -> object:
    return str(value).lower() if isinstance(value, bool) else value


def record_ids(box: Sandbox, entry: Entry) -> set[str]:
    """Ids of every record the entry's route serves, over every parent, whole history."""
    route = next(r for r in box.routes if r.key == entry.route)
    parents: list[str | None] = [None]
    if entry.parent:
        parents = sorted(record_ids(box, entries_by_name()[entry.parent]))
    query = {k: _wire(v) for k, v in entry.params.items()
             if k not in entry.operation.body_fields}
    body = {k: v for k, v in entry.params.items() if k in entry.operation.body_fields}
    ids: set[str] = set()
    entity = box.world.entities[route.entity]
    for parent in parents:
        path = {entry.path_param: parent} if entry.path_param and parent else {}
        request_body = {**body, "id": parent} if parent and not entry.path_param else body
        with box.world.lock:
            responder = Responder(box.world, route, path, Request(query, request_body))
            selected = responder.selection()
            if spec.read_kind(entry.route) == "get_one":
                selected = selected[:1]  # a singleton route answers one record
            ids.update(r["id"] for r in entity.records(selected))
    return ids


# A subset with every record strategy and a fan-out, used by the fault suite and the soak.
FAULT_SUBSET = ["members", "phone_numbers", "phone_number_outbound_sms_pages",
                "ledger_transactions", "performance_ticket_pages"]


def routes_of(resources: list[str]) -> list[str]:
    """Every route a run of these resources calls: their own and their parents'."""
    entries = entries_by_name()
    return sorted({entries[name].route for name in resources}
                  | {entries[entries[name].parent].route for name in resources
                     if entries[name].parent})
