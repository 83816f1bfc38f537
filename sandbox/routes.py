"""Every read route of the Wallet API, answered from the world.

Routes come from the vendored reference (`sandbox.reference`); which entity a route serves,
scoped by which parent, and how it answers, from `sandbox.route_map`. Response shapes follow
the reference: records of the route's own schema, scalars of its type; where it leaves them
untyped the shapes are the documented assumptions in `ASSUMPTIONS`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from wallet_elt.sandbox import reference
from wallet_elt.sandbox.reference import Operation
from wallet_elt.sandbox.route_map import Service, record_schema_name, service_of
from wallet_elt.sandbox.world import (
    CATEGORIES,
    DAY,
    ENTITY_DEFS,
    World,
    make_id,
    parse_time,
)

SCALAR_TYPES = frozenset({"string", "boolean", "integer", "number"})

# Where string answers (file and import download URLs) point: a host that never resolves.
FILE_URL = "https://files.sandbox.invalid"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

# Every place the sandbox had to choose a shape the spec does not type.
ASSUMPTIONS: tuple[str, ...] = (
    ("Untyped record lists (`object` or `array of object`) return a bare JSON array of records "
     "of the resource's named schema, or of a generic record {id, merchantID, createdAt, "
     "updatedAt, isActive, name, description, status[, amount]} where none is named."),
    ("By-date analytics return [{date: 'YYYY-MM-DD', count|amount}] (typed ones use the field "
     "their schema names, e.g. points), one element per day with data in the window: days "
     "of the request's `timezone` (an IANA name; 422 if unknown) where the route takes one, "
     "UTC days where it takes none."),
    "By-dimension analytics return [{<dimension>: value, count|amount}] over the window.",
    ("Scalar windowed analytics and counts return {count} or {amount}; reach statistics return "
     "ReachPerformanceStats computed from outbound SMS in the window."),
    "Windows are half-open [start, end) on createdAt; both bounds are ISO 8601 date-times.",
    ("Lists return records oldest first (by createdAt); pages are 1-based; a page past the end "
     "is an empty page; the default page size is 100 and the largest 1000."),
    ("Money fields are integer cents; their *_decimal and *_string twins are '12.34' and "
     "'$12.34'."),
    "Errors are JSON {error: {name, message}}: 401 AuthError, 404 NotFound, 422 FalsumError.",
    ("Routes typed with another schema than their entity's (e.g. WTTicket by id, tiers with "
     "memberCount) answer records of that schema over the same entity records (same ids, "
     "times and flags); a `<child>Count` field counts the child entity's records linking to "
     "the record; an anyOf/oneOf record takes its first branch with fields."),
    ("Scalar answers follow the spec's type: boolean = the request selects any record (by-id: "
     "the record exists); integer = how many; string = a download URL "
     f"{FILE_URL}/<entity>/<id> of the record."),
    ("Body-paged POST routes take pageNum/pageSize in the JSON body; body-windowed InfoGenesis "
     "routes take startDateTime/endDateTime in the body (query also accepted for the one route "
     "whose spec puts them in the query)."),
)


class ApiError(Exception):
    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status, self.name, self.message = status, name, message


@dataclass(frozen=True)
class Route:
    operation: Operation
    service: Service
    pattern: re.Pattern[str]

    @property
    def key(self) -> str:
        return self.operation.key

    @property
    def entity(self) -> str:
        return self.service.entity

    @property
    def parent_entity(self) -> str | None:
        return self.service.parent

    # Facts the serve path reads on every request, worked out once per route.
    @functools.cached_property
    def record_schema(self) -> str | None:
        """The schema the reference types this route's records with, where its fields differ
        from the entity's own (records it answers are then built of it over the entity's
        arrays)."""
        name = record_schema_name(self.operation)
        own = ENTITY_DEFS[self.entity].schema
        if not name or name == own:
            return None
        return name if _shape(name) != (_shape(own) if own else frozenset()) else None

    @functools.cached_property
    def scalar(self) -> str | None:
        """The JSON type of a scalar answer (string, boolean, integer, number), if it is one."""
        kind = reference.resolve(self.operation.response).get("type")
        return kind if kind in SCALAR_TYPES else None

    @functools.cached_property
    def archive_flag(self) -> bool:
        """The route offers isArchiveIncluded (elsewhere archived records always show)."""
        return self.operation.takes("isArchiveIncluded")

    @functools.cached_property
    def typed_object(self) -> bool:
        """The reference types the answer as one object (not an untyped list, no envelope)."""
        op = self.operation
        return bool(reference.resolve(op.response).get("properties")) and not op.returns_array


def _pattern(path: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(f"^{regex}$")


@functools.cache
def _shape(schema: str) -> frozenset[str]:
    """The field names of a component schema's records."""
    return frozenset(reference.properties(reference.component(schema)))


def build_routes() -> list[Route]:
    routes = [Route(op, service_of(op), _pattern(op.path)) for op in reference.read_operations()]
    # Literal segments win over parameters: /outbound/page/{id} before /outbound/{id}.
    routes.sort(key=lambda r: (r.operation.path.count("{"), -len(r.operation.path)))
    return routes


class Request:
    """What the handler parsed: query and body parameters as strings/JSON values."""

    def __init__(self, query: dict[str, str], body: dict[str, Any]) -> None:
        self.query, self.body = query, body

    def get(self, name: str) -> Any:
        return self.body[name] if name in self.body else self.query.get(name)


def _bool(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ApiError(422, "FalsumError", f"{name} must be true or false, got {value!r}")


def _int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise ApiError(422, "FalsumError", f"{name} must be a positive integer") from None
    if number < 1:
        raise ApiError(422, "FalsumError", f"{name} must be a positive integer")
    return number


def _time(value: Any, name: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return parse_time(str(value))
    except ValueError:
        raise ApiError(422, "FalsumError", f"{name} must be an ISO 8601 date-time") from None


class Responder:
    """Answers one request to one route from the world."""

    def __init__(self, world: World, route: Route, params: dict[str, str],
                 request: Request) -> None:
        self.world, self.route, self.params, self.request = world, route, params, request
        self.op = route.operation
        self.entity = world.entities[route.entity]

    # Parameters --------------------------------------------------------------------------
    def validate(self) -> None:
        for name in self.op.required_query_params:
            if self.request.get(name) in (None, ""):
                raise ApiError(422, "FalsumError", f"missing required parameter {name}")
        for name in self.op.path_params:
            if not self.params.get(name):
                raise ApiError(422, "FalsumError", f"missing path parameter {name}")

    def window(self) -> tuple[float, float] | None:
        names = self.op.window_params
        if not names:
            return None
        start = _time(self.request.get(names[0]), names[0])
        end = _time(self.request.get(names[1]), names[1])
        if start is None and end is None:
            return None
        start = start if start is not None else 0.0
        end = end if end is not None else self.world.now + DAY
        if start > end:
            raise ApiError(422, "FalsumError", f"{names[0]} is after {names[1]}")
        return start, end

    def link(self) -> tuple[str, int] | None:
        """The parent record a child route is scoped to: its path parameter, or the `id` of
        a body-paged log request."""
        service = self.route.service
        if service.parent is None or service.link_field is None:
            return None
        value = (self.params[self.op.path_params[0]] if self.op.path_params
                 else self.request.get("id"))
        if not isinstance(value, str):
            raise ApiError(422, "FalsumError", "id is required")
        index = self.world.find(service.parent, value)
        if index is None:
            raise ApiError(404, "NotFound", f"no {service.parent} record with id {value!r}")
        return service.link_field, index

    def selection(self) -> np.ndarray:
        # Archived records hide only on routes that offer isArchiveIncluded to show them.
        include = True
        if self.route.archive_flag:
            include = bool(_bool(self.request.get("isArchiveIncluded"), "isArchiveIncluded"))
        indices = self.entity.select(link=self.link(), window=self.window(),
                                     include_archived=include)
        wanted = self.route.service.record_filter
        if wanted:
            # Filters on generated fields need the records; only small selections use them.
            records = self.entity.records(indices)
            keep = [all(r.get(k) == v for k, v in wanted.items()) for r in records]
            indices = indices[np.array(keep, dtype=bool)] if len(indices) else indices
        return indices

    # Shapes ------------------------------------------------------------------------------
    def records(self, indices: np.ndarray) -> list[dict[str, Any]]:
        """Records as this route types them."""
        return self.entity.records(indices, self.route.record_schema)

    def respond(self) -> Any:
        self.validate()
        route = self.route
        answer = route.service.answer
        if route.scalar:
            return self.scalar(route.scalar)
        if answer == "daily":
            return self.daily()
        if answer == "aggregate":
            return self.aggregate()
        if answer == "by_id":
            return self.one()
        if answer == "single":
            records = self.records(self.selection()[:1])
            return records[0] if records else {}
        return self.listing()

    def found(self) -> int:
        """Index of the record a by-id route names in its path (404 if there is none)."""
        value = self.params[self.op.path_params[0]]
        index = self.world.find(self.route.entity, value)
        if index is None:
            raise ApiError(404, "NotFound", f"no {self.route.entity} record with id {value!r}")
        return index

    def one(self) -> dict[str, Any]:
        return self.records(np.array([self.found()]))[0]

    def scalar(self, kind: str) -> Any:
        """A scalar answer of the spec's type, about the record a by-id route names or the
        records the request selects (see ASSUMPTIONS)."""
        by_id = self.op.path_params and self.route.parent_entity is None
        indices = np.array([self.found()]) if by_id else self.selection()
        if kind == "boolean":
            return bool(len(indices))
        if kind != "string":
            return len(indices)
        if not len(indices):
            return ""
        return f"{FILE_URL}/{self.entity.name}/{self.entity.records(indices[:1])[0]['id']}"

    def listing(self) -> Any:
        indices = self.selection()
        pages = self.op.page_params
        total = len(indices)
        if pages:
            number = _int(self.request.get(pages[0]), pages[0]) or 1
            size = min(_int(self.request.get(pages[1]), pages[1]) or DEFAULT_PAGE_SIZE,
                       MAX_PAGE_SIZE)
            indices = indices[(number - 1) * size: number * size]
        records = self.records(indices)
        envelope = self.op.envelope
        if envelope is None and self.route.typed_object:
            return records[0] if records else {}
        if envelope is None:
            return records
        items, total_field = envelope
        body: dict[str, Any] = {items: records, total_field: total}
        if items == "results":
            body["length"] = len(records)
        if items == "entries":
            size = min(_int(self.request.get(pages[1]), pages[1]) or DEFAULT_PAGE_SIZE,
                       MAX_PAGE_SIZE) if pages else max(total, 1)
            body["pageCount"] = -(-total // size)
        return body

    def _values(self, indices: np.ndarray) -> tuple[str, np.ndarray]:
        if self.route.service.measure == "amount" and self.entity.definition.amount:
            return "amount", self.entity.amounts(indices)
        return "count", np.ones(len(indices), dtype=np.int64)

    def aggregate(self) -> Any:
        indices = self.selection()
        if self.op.response.get("$ref", "").endswith("ReachPerformanceStats"):
            return self.reach(indices)
        name, values = self._values(indices)
        if dimension := self.route.service.dimension:
            return self.by_dimension(dimension, indices, name, values)
        total = int(values.sum())
        # Typed count objects with more required numbers (e.g. seats) carry the same total.
        required = reference.resolve(self.op.response).get("required", [])
        return {name: total, **{field: total for field in required if field != name}}

    def by_dimension(self, dimension: str, indices: np.ndarray, name: str,
                     values: np.ndarray) -> list[dict[str, Any]]:
        keys = dimension_keys(self.world, self.entity.name, dimension, indices)
        totals: dict[str, int] = {}
        for key, value in zip(keys, values.tolist(), strict=True):
            totals[key] = totals.get(key, 0) + value
        if dimension == "walletObjectPrefix":
            return [{"walletObjectPrefix": k, "walletObjectName": f"object {k}", "list": [],
                     "count": v} for k, v in sorted(totals.items())]
        return [{dimension: k, name: v} for k, v in sorted(totals.items())]

    def reach(self, indices: np.ndarray) -> dict[str, int]:
        n = len(indices)
        amounts = self.entity.amounts(indices) if n else np.zeros(0, dtype=np.int64)
        return {"sentCount": n, "deliveredCount": n - n // 10, "failedCount": n // 20,
                "undeliveredCount": n // 10 - n // 20, "viewedCount": n // 3,
                "redemptionsCount": n // 5, "valueClaimed": int(amounts[: n // 5].sum()),
                "revenueGenerated": int(amounts.sum()), "refundsCount": n // 50,
                "valueRefunded": int(amounts[: n // 50].sum()),
                "revenueLost": int(amounts[: n // 50].sum())}

    def daily(self) -> list[dict[str, Any]]:
        indices = self.selection()
        name, values = self._values(indices)
        typed = reference.resolve(self.op.record).get("properties", {})
        name = next((f for f in typed if f != "date"), name)
        created = self.entity.created[indices]
        if not len(created):
            return []
        zone = self.zone()
        first = datetime.fromtimestamp(float(created.min()), zone).date()
        last = datetime.fromtimestamp(float(created.max()), zone).date()
        dates = [first + timedelta(days=k) for k in range((last - first).days + 1)]
        # Local midnights as instants: days are 23 or 25 hours long across a DST change.
        starts = np.array([datetime.combine(d, time(), zone).timestamp() for d in dates])
        sums = np.bincount(np.searchsorted(starts, created, side="right") - 1,
                           weights=values, minlength=len(dates))
        return [{"date": day.isoformat(), name: int(total)}
                for day, total in zip(dates, sums.tolist(), strict=True) if total]

    def zone(self) -> ZoneInfo:
        """The timezone by-date answers count days in: the request's `timezone` on routes
        that take one, else UTC."""
        name = self.request.get("timezone") if "timezone" in self.op.query_params else None
        try:
            return ZoneInfo(name or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise ApiError(422, "FalsumError", f"unknown timezone {name!r}") from None


def dimension_keys(world: World, entity: str, dimension: str,
                   indices: np.ndarray) -> list[str]:
    """The value of `dimension` on each record, as the records themselves carry it."""
    target = world.entities[entity]
    if dimension in target.definition.links:
        linked = target.definition.links[dimension]
        count0, prefix = world.count0[linked], world.prefixes[linked]
        length = ENTITY_DEFS[linked].id_length
        return [make_id(prefix, i % count0, length) for i in indices.tolist()]
    if dimension in target.fields:
        return [str(r[dimension]) for r in target.records(indices)]
    return [f"{dimension} {i % CATEGORIES}" for i in indices.tolist()]
