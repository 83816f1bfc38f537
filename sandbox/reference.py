"""The vendored Wallet API reference, read the way the sandbox needs it.

The sandbox stands on the reference alone (never on the connector's reading of it), so that a
misreading shared by both cannot hide: this module turns the OpenAPI document and its
endpoints table into the facts a server needs to answer a request (paths, methods, parameters
with their schemas, response schemas).
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "schemas"
OPENAPI = REFERENCE_DIR / "wallet-api.openapi.json"
ENDPOINTS = REFERENCE_DIR / "wallet-api.endpoints.tsv"

# The endpoints table's classification of the operations the sandbox answers (reads).
READ_KINDS = frozenset({"list", "child_list", "paged", "count", "analytics", "report", "get_one"})
# Page number / page size parameter names the reference uses (query or body).
PAGING_NAMES = (("pageNum", "pageSize"), ("pagenum", "pagesize"))
# Date-window bounds the reference uses, first match wins.
WINDOW_NAMES = (("startDate", "endDate"), ("startDateTime", "endDateTime"),
                ("broadcastScheduledStartAt", "broadcastScheduledEndAt"))
# Page envelopes by the records field they declare: (records field, total field).
ENVELOPE_FIELDS = {"results": "total", "data": "totalRows", "entries": "totalRecords"}


@functools.cache
def document() -> dict[str, Any]:
    return orjson.loads(OPENAPI.read_bytes())


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema a `$ref` chain ends at (the schema itself when it is no reference)."""
    schemas = document()["components"]["schemas"]
    while "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def component(name: str) -> dict[str, Any]:
    return resolve({"$ref": name})


def ref_name(schema: dict[str, Any]) -> str | None:
    """The component a schema names by `$ref`, if it names one."""
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def properties(schema: dict[str, Any]) -> dict[str, Any]:
    """Fields of one record: of the schema, of all its `allOf` parts, or of its first
    `anyOf`/`oneOf` branch that has any."""
    schema = resolve(schema)
    if "allOf" in schema:
        return {k: v for part in schema["allOf"] for k, v in properties(part).items()}
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key, []):
            if found := properties(branch):
                return found
    return dict(schema.get("properties", {}))


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "query", "path" or "body"
    required: bool
    schema: dict[str, Any]


@dataclass(frozen=True)
class Operation:
    """One operation of the reference, as a server sees it."""

    method: str
    path: str
    read_kind: str
    params: tuple[Param, ...]
    response: dict[str, Any]
    # The endpoints table's name for the schema of one record (it names one also where the
    # OpenAPI document leaves the answer untyped).
    listed_schema: str | None = None

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def names(self, where: str) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if p.where == where)

    @functools.cached_property
    def query_params(self) -> tuple[str, ...]:
        return self.names("query")

    @functools.cached_property
    def path_params(self) -> tuple[str, ...]:
        return self.names("path")

    @functools.cached_property
    def body_fields(self) -> tuple[str, ...]:
        return self.names("body")

    @functools.cached_property
    def required_query_params(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if p.where == "query" and p.required)

    def takes(self, name: str) -> bool:
        """The request may carry `name` (in the query or the body)."""
        return any(p.name == name and p.where != "path" for p in self.params)

    def first_pair(self, pairs: tuple[tuple[str, str], ...]) -> tuple[str, str] | None:
        return next(((a, b) for a, b in pairs if self.takes(a)), None)

    @functools.cached_property
    def page_params(self) -> tuple[str, str] | None:
        return self.first_pair(PAGING_NAMES)

    @functools.cached_property
    def window_params(self) -> tuple[str, str] | None:
        return self.first_pair(WINDOW_NAMES)

    @functools.cached_property
    def envelope(self) -> tuple[str, str] | None:
        """(records field, total field) of a page envelope; None when the answer is bare."""
        declared = resolve(self.response).get("properties", {})
        return next(((k, total) for k, total in ENVELOPE_FIELDS.items() if k in declared), None)

    @functools.cached_property
    def returns_array(self) -> bool:
        return resolve(self.response).get("type") == "array"

    @functools.cached_property
    def record(self) -> dict[str, Any]:
        """The (unresolved) schema of one record of the answer: the array's item, the
        envelope's item, or the answer itself."""
        schema = self.response
        if self.envelope:
            schema = resolve(schema)["properties"][self.envelope[0]]
        if resolve(schema).get("type") == "array":
            schema = resolve(schema).get("items", {})
        return schema


def _operation(row: dict[str, str], raw: dict[str, Any]) -> Operation:
    params = [Param(p["name"], p["in"], bool(p.get("required")), p.get("schema", {}))
              for p in raw.get("parameters", []) if p["in"] in ("query", "path")]
    body = raw.get("requestBody", {}).get("content", {}).get("application/json", {})
    body_schema = resolve(body.get("schema", {}))
    required = set(body_schema.get("required", []))
    params += [Param(name, "body", name in required, sub)
               for name, sub in body_schema.get("properties", {}).items()]
    answers = raw.get("responses", {})
    ok = answers.get("200") or answers.get("201") or {}
    response = ok.get("content", {}).get("application/json", {}).get("schema", {})
    return Operation(row["method"], row["path"], row["read_kind"], tuple(params), response,
                     row["record_schema"] or None)


@functools.cache
def read_operations() -> tuple[Operation, ...]:
    """Every read operation the endpoints table lists, in its order."""
    paths = document()["paths"]
    with ENDPOINTS.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle, delimiter="\t")
                if row["read_kind"] in READ_KINDS]
    return tuple(_operation(row, paths[row["path"]][row["method"].lower()]) for row in rows)

