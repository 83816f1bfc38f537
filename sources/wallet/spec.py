"""The vendored Wallet API reference (schemas/wallet-api.openapi.json), read as typed facts.

Both the connector and the sandbox derive wire details (parameter names, paging style, page
envelope, date-window parameters) from here, so the catalog only states what the spec cannot.
The reference is package data (`wallet_elt.schemas`), so it is found in a wheel as in a checkout.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

SCHEMAS = resources.files("wallet_elt.schemas")
SPEC_PATH = SCHEMAS / "wallet-api.openapi.json"
# One row per operation with its read classification (the API reference's endpoints.tsv).
ENDPOINTS_PATH = SCHEMAS / "wallet-api.endpoints.tsv"

# (start, end) parameter pairs that bound a server-side date window, in order of preference.
WINDOW_PAIRS: tuple[tuple[str, str], ...] = (
    ("startDate", "endDate"),
    ("startDateTime", "endDateTime"),
    ("broadcastScheduledStartAt", "broadcastScheduledEndAt"),
)

# Page envelopes: records field and total field, by the keys the envelope schema declares.
ENVELOPES: dict[str, tuple[str, str]] = {
    "results": ("results", "total"),
    "data": ("data", "totalRows"),
    "entries": ("entries", "totalRecords"),
}


@dataclass(frozen=True)
class Operation:
    """Wire facts of one operation, as the spec states them."""

    method: str
    path: str
    operation_id: str
    summary: str
    query_params: tuple[str, ...]
    required_query_params: tuple[str, ...]
    path_params: tuple[str, ...]
    body_schema: str | None
    body_fields: tuple[str, ...]
    response: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def page_params(self) -> tuple[str, str] | None:
        """(page number, page size) parameter names, in query or body, if the route pages."""
        for number, size in (("pageNum", "pageSize"), ("pagenum", "pagesize")):
            if number in self.query_params or number in self.body_fields:
                return number, size
        return None

    @property
    def pages_in_body(self) -> bool:
        return "pageNum" in self.body_fields

    @property
    def window_params(self) -> tuple[str, str] | None:
        for start, end in WINDOW_PAIRS:
            if start in self.query_params or start in self.body_fields:
                return start, end
        return None

    @property
    def envelope(self) -> tuple[str, str] | None:
        """(records field, total field) of the page envelope; None for a bare array or object."""
        props = resolve(self.response).get("properties", {})
        for key, fields in ENVELOPES.items():
            if key in props:
                return fields
        return None

    @property
    def returns_array(self) -> bool:
        return resolve(self.response).get("type") == "array"

    def record_schema(self) -> dict[str, Any]:
        """Schema of one record: the array item, the envelope's item, or the object itself."""
        schema = resolve(self.response)
        if schema.get("type") == "array":
            return resolve(schema.get("items", {}))
        envelope = self.envelope
        if envelope:
            inner = resolve(schema["properties"][envelope[0]])
            return resolve(inner.get("items", {})) if inner.get("type") == "array" else {}
        return schema


@functools.cache
def document() -> dict[str, Any]:
    return orjson.loads(SPEC_PATH.read_bytes())


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref`s (and single-branch wrappers) to the schema they name."""
    while "$ref" in schema:
        schema = document()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def component(name: str) -> dict[str, Any]:
    return resolve({"$ref": f"#/components/schemas/{name}"})


def _operation(method: str, path: str, op: dict[str, Any]) -> Operation:
    params = op.get("parameters", [])
    body_ref = (
        op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    )
    body_name = body_ref["$ref"].rsplit("/", 1)[1] if "$ref" in body_ref else None
    body_fields = tuple(resolve(body_ref).get("properties", {})) if body_ref else ()
    responses = op.get("responses", {})
    ok = responses.get("200") or responses.get("201") or {}
    response = ok.get("content", {}).get("application/json", {}).get("schema", {})
    return Operation(
        method=method.upper(),
        path=path,
        operation_id=op.get("operationId", ""),
        summary=op.get("summary", ""),
        query_params=tuple(p["name"] for p in params if p["in"] == "query"),
        required_query_params=tuple(
            p["name"] for p in params if p["in"] == "query" and p.get("required")
        ),
        path_params=tuple(p["name"] for p in params if p["in"] == "path"),
        body_schema=body_name,
        body_fields=body_fields,
        response=response,
    )


@functools.cache
def operations() -> dict[str, Operation]:
    """Every operation of the spec, keyed by "METHOD /path"."""
    ops: dict[str, Operation] = {}
    for path, item in document()["paths"].items():
        for method, op in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                operation = _operation(method, path, op)
                ops[operation.key] = operation
    return ops


def operation(key: str) -> Operation:
    try:
        return operations()[key]
    except KeyError:
        raise KeyError(f"{key!r} is not an operation of the vendored Wallet API spec") from None


@functools.cache
def endpoint_rows() -> tuple[dict[str, str], ...]:
    text = ENDPOINTS_PATH.read_text(encoding="utf-8")
    return tuple(csv.DictReader(io.StringIO(text, newline=""), delimiter="\t"))


@functools.cache
def _rows_by_route() -> dict[str, dict[str, str]]:
    return {f"{row['method']} {row['path']}": row for row in endpoint_rows()}


def read_kind(route: str) -> str:
    return _rows_by_route()[route]["read_kind"]


@functools.cache
def record_schema_names() -> dict[str, str]:
    """Route -> the schema of one record, where the reference names one."""
    return {route: row["record_schema"] for route, row in _rows_by_route().items()
            if row["record_schema"]}
