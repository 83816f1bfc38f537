"""Personal data policy: per field, keep (the default), drop, or replace by a keyed hash; and
secrets, dropped whatever the policy says. Both apply wherever a field sits, nested objects and
lists included (which fields are which: sensitive.py).

The hash is HMAC-SHA256 with a secret salt, so the same phone number or email hashes to the
same value in every table (joins still work) while the value cannot be recovered or guessed
by hashing candidate numbers without the salt.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from wallet_elt.sources.wallet.client import WalletError
from wallet_elt.sources.wallet.columns import Column, column_name
from wallet_elt.sources.wallet.sensitive import (
    PERSONAL_FIELDS,
    SECRET_FIELDS,
    Sensitivity,
    classify,
    reference_fields,
)

ACTIONS = ("keep", "drop", "hash")
DROP, HASH = "drop", "hash"
# Type hints of a pinned column that a hex digest no longer fits.
_TYPED_HINTS = ("data_type", "precision", "scale", "timezone")
_CONTAINERS = (dict, list)


class PrivacyPolicy:
    def __init__(self, default: str = "keep", fields: Mapping[str, str] | None = None,
                 salt: str | None = None) -> None:
        actions = {name: default for name in PERSONAL_FIELDS}
        actions.update(fields or {})
        bad = {name: action for name, action in actions.items() if action not in ACTIONS}
        if bad:
            raise WalletError(f"unknown personal-data action(s) {bad}: use one of {ACTIONS} "
                              "(config sources.wallet.pii_policy / pii_fields)")
        self.actions = {name: action for name, action in actions.items() if action != "keep"}
        if HASH in self.actions.values() and not salt:
            raise WalletError("personal data is set to be hashed but no salt is configured: "
                              "set sources.wallet.pii_salt in .dlt/secrets.toml (or "
                              "SOURCES__WALLET__PII_SALT)")
        self._key = (salt or "").encode()
        self._default = default
        # What happens to each field name wherever it sits (the module's own constants, so the
        # per-field test is an identity check); a secret goes even if pii_fields keeps it.
        self._rules = {**{name: DROP if action == DROP else HASH
                          for name, action in self.actions.items()},
                       **dict.fromkeys(SECRET_FIELDS, DROP)}
        # Field names already judged; any other (a field the API added since the reference
        # was vendored) is judged by its name when it first arrives.
        self._seen = frozenset(reference_fields()) | frozenset(self.actions)

    def hashed(self, value: Any) -> str:
        # hmac.digest: OpenSSL's one-shot HMAC, 2-3x faster than hmac.new (same digest).
        return hmac.digest(self._key, str(value).encode(), "sha256").hex()

    def columns(self, fields: Iterable[str], hints: Mapping[str, Column]) -> dict[str, Column]:
        """The pinned columns of a record with these wire `fields`, as the policy loads them:
        no column for a dropped field, text for a hashed one (whatever type its values had)."""
        out = dict(hints)
        for field in fields:
            action, name = self._rules.get(field), column_name(field)
            if action == DROP:
                out.pop(name, None)
            elif action == HASH and name in out:
                kept = {k: v for k, v in out[name].items() if k not in _TYPED_HINTS}
                out[name] = {**kept, "data_type": "text"}
        return out

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for row in rows:
            self._clean(row)
        return rows

    def _learn(self, fields: set[str]) -> None:
        """Rules for fields the reference does not declare, by their names. Both maps are
        replaced, not changed in place: other resources' threads read them meanwhile."""
        rules = dict(self._rules)
        for field in fields:
            kind = classify(field, [])
            if kind is Sensitivity.SECRET:
                rules[field] = DROP
            elif kind is Sensitivity.PERSONAL and self._default != "keep":
                rules[field] = DROP if self._default == DROP else HASH
        self._rules = rules
        self._seen = self._seen | fields

    def _clean(self, record: dict[str, Any]) -> None:
        unknown = record.keys() - self._seen
        if unknown:
            self._learn(unknown)
        rules = self._rules
        for key in record.keys() & rules:  # set intersection in C: most fields have no rule
            if rules[key] is DROP:
                del record[key]
            else:
                record[key] = self._hashed_tree(record[key])
        for key, value in record.items():
            # Nested records carry secrets and personal fields too (a hashed value is done).
            if value.__class__ in _CONTAINERS and rules.get(key) is not HASH:
                self._clean_list([value])

    def _clean_list(self, items: list[Any]) -> None:
        for item in items:
            if item.__class__ is dict:
                self._clean(item)
            elif item.__class__ is list:
                self._clean_list(item)

    def _hashed_tree(self, value: Any) -> Any:
        """A personal value hashed leaf by leaf (a list of phone numbers stays a list); a flag
        or a null says nothing about anyone and stays."""
        if value is None or value.__class__ is bool:
            return value
        if value.__class__ is dict:
            return {key: self._hashed_tree(item) for key, item in value.items()
                    if self._rules.get(key) is not DROP}
        if value.__class__ is list:
            return [self._hashed_tree(item) for item in value]
        return self.hashed(value)
