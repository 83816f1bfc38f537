"""An OpenAPI validator for the subset the Wallet API reference uses: types, required fields,
and constraints (bounds, lengths, enum, date-time format). Read with the connector's reader
of the reference, not the sandbox's."""

from __future__ import annotations

import re
from typing import Any

from wallet_elt.sources.wallet import spec

DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def validate(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """Errors of `value` against an OpenAPI schema (the subset the spec uses)."""
    schema = spec.resolve(schema)
    if value is None:
        return [] if schema.get("nullable") or not schema.get("type") and not (
            "anyOf" in schema or "oneOf" in schema or "allOf" in schema) else [
            f"{where}: null not allowed"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [validate(value, branch, where) for branch in schema[key]]
            if all(branches):
                return [f"{where}: matches no {key} branch: {branches[0]}"]
            return []
    if "allOf" in schema:
        return [e for branch in schema["allOf"] for e in validate(value, branch, where)]
    kind = schema.get("type")
    checks = {"object": dict, "array": list, "string": str, "boolean": bool}
    if kind in checks and not isinstance(value, checks[kind]):
        return [f"{where}: expected {kind}, got {type(value).__name__}"]
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return [f"{where}: expected integer, got {type(value).__name__}"]
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return [f"{where}: expected number, got {type(value).__name__}"]
    errors = constraint_errors(value, schema, where)
    if kind == "object" or (kind is None and isinstance(value, dict) and "properties" in schema):
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}: missing required {name!r}")
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                errors += validate(value[name], sub, f"{where}.{name}")
    if kind == "array" and "items" in schema:
        for n, item in enumerate(value[:20]):
            errors += validate(item, schema["items"], f"{where}[{n}]")
    return errors


def constraint_errors(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Errors of a scalar against the reference's constraints (bounds, lengths, enum,
    format), beyond its type."""
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in enum {schema['enum']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} > maximum {schema['maximum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{where}: {value!r} shorter than {schema['minLength']}")
        if len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{where}: {value!r} longer than {schema['maxLength']}")
        if schema.get("format") == "date-time" and not DATE_TIME.fullmatch(value):
            errors.append(f"{where}: {value!r} is not an RFC 3339 date-time")
    return errors


def is_typed(schema: dict[str, Any]) -> bool:
    schema = spec.resolve(schema)
    return bool(schema.get("type") or schema.get("anyOf") or schema.get("oneOf")
                or schema.get("allOf") or schema.get("properties"))
