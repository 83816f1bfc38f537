"""Which fields of the API reference are secrets and which are personal data, declared once.

Every field of the vendored reference (components and inline schemas alike) is classified from
its name and its descriptions; `OVERRIDES` corrects what those heuristics get wrong. The source
drops secrets always and applies `pii_policy` to personal fields (privacy.py), the pinned schema
leaves secrets out (columns.py), the data dictionary marks both (schema_files.py), and the tests
check the result against their own list.

A classification holds for a wire name wherever it sits, nested objects included: the records
nest other records (a message's `fromEmployee` is an Employee), so a rule per name is the one
that reaches every copy.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from wallet_elt.sources.wallet import spec


class Sensitivity(StrEnum):
    SECRET = "secret"  # credentials, tokens, passwords, keys, cookies, card data: never loaded
    PERSONAL = "personal"  # identifies a person: follows pii_policy


# Credentials and what stands for them: a token or cookie replays a session, a signature or
# keystore signs as the merchant, card track data and CVV pay (PCI DSS forbids storing them).
SECRET_NAME = re.compile(
    r"password|passwd|secret|token|cookie|cfuvid|credential|signature|keystore|cvv"
    r"|cardSwipeTrack|(api|session|private|access|signing)Key$|verificationCode|^otp$|^pin$",
    re.IGNORECASE)
SECRET_DESCRIPTION = re.compile(
    r"\b(api key|password|secret|access token|credentials?|private key)\b", re.IGNORECASE)
# Names, emails, phone numbers, street addresses, birthdays, IPs, usernames, faces, handles.
PERSONAL_NAME = re.compile(
    r"^(first|last|middle|full|caller|contact)Name$|EmployeeName$|email|birth"
    r"|phone|mobileNumber|whatsApp|^(to|from)(Localized)?$|^ip$|ipAddress|username"
    r"|(street)?address[12]$|profilePicture|avatar"
    r"|^(facebook|instagram|twitter|linkedIn|youTube)$",
    re.IGNORECASE)
PERSONAL_DESCRIPTION = re.compile(
    r"date of birth|\b(first|last) name\b|e-?mail address|phone number|ip address",
    re.IGNORECASE)
# Flags and keys of other records are about a person's data, not the data itself.
NOT_PERSONAL_NAME = re.compile(r"^(is|has)[A-Z]|IDs?$|Id$")

# Where the heuristics above are wrong, with the reason.
OVERRIDES: dict[str, Sensitivity | None] = {
    # The login of the merchant's Watson service account: half of a credential pair.
    "watsonUsername": Sensitivity.SECRET,
    # Card account numbers (PAN) on POS requests: with an expiry date they pay.
    "accountNum": Sensitivity.SECRET,
    "authAccountNum": Sensitivity.SECRET,
    # A country's dialling code (+44), not anyone's number.
    "phone_code": None,
}


def classify(name: str, schemas: list[dict[str, Any]]) -> Sensitivity | None:
    """One field, from its wire name and every schema the reference gives it."""
    if name in OVERRIDES:
        return OVERRIDES[name]
    resolved = [spec.resolve(schema) for schema in schemas]
    descriptions = " ".join(schema.get("description", "") for schema in resolved)
    if SECRET_NAME.search(name) or SECRET_DESCRIPTION.search(descriptions):
        return Sensitivity.SECRET
    flag = bool(resolved) and all(schema.get("type") == "boolean" for schema in resolved)
    if flag or NOT_PERSONAL_NAME.search(name):
        return None
    if PERSONAL_NAME.search(name) or PERSONAL_DESCRIPTION.search(descriptions):
        return Sensitivity.PERSONAL
    return None


def _properties(node: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, schema) of every property declared anywhere under `node`."""
    if isinstance(node, dict):
        for name, schema in (node.get("properties") or {}).items():
            if isinstance(schema, dict):
                yield name, schema
        for value in node.values():
            yield from _properties(value)
    elif isinstance(node, list):
        for value in node:
            yield from _properties(value)


@functools.cache
def reference_fields() -> dict[str, Sensitivity | None]:
    """Every wire field name of the reference, classified."""
    document = spec.document()
    schemas: dict[str, list[dict[str, Any]]] = {}
    for name, schema in _properties([document["components"], document["paths"]]):
        schemas.setdefault(name, []).append(schema)
    return {name: classify(name, found) for name, found in sorted(schemas.items())}


def fields_of(kind: Sensitivity) -> frozenset[str]:
    return frozenset(name for name, found in reference_fields().items() if found is kind)


SECRET_FIELDS = fields_of(Sensitivity.SECRET)
PERSONAL_FIELDS = fields_of(Sensitivity.PERSONAL)


def is_secret(field: str) -> bool:
    return reference_fields().get(field) is Sensitivity.SECRET
