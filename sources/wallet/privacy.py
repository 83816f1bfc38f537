"""Personal data policy: per field, keep (the default), drop, or replace by a keyed hash; and
secrets, dropped whatever the policy says. Both apply wherever a field sits, nested objects and
lists included (which fields are which: sensitive.py).

The hash is HMAC-SHA256 with a secret salt, so the same phone number or email hashes to the
same value in every table (joins still work) while the value cannot be recovered or guessed
by hashing candidate numbers without the salt.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from sources.wallet.client import WalletError
from sources.wallet.columns import Column, column_name
from sources.wallet.sensitive import PERSONAL_FIELDS, SECRET_FIELDS

ACTIONS = ("keep", "drop", "hash")
DROP, HASH = "drop", "hash"
# Type hints of a pinned column that a hex digest no longer fits.
_TYPED_HINTS = ("data_type", "precision", "scale", "timezone")


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
        # What happens to each field name wherever it sits; a secret goes even if pii_fields
        # says to keep it.
        self._rules = {**self.actions, **dict.fromkeys(SECRET_FIELDS, DROP)}

    def hashed(self, value: Any) -> str:
        return hmac.new(self._key, str(value).encode(), hashlib.sha256).hexdigest()

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

    def _clean(self, record: dict[str, Any]) -> None:
        rules = self._rules
        for key, value in list(record.items()):
            action = rules.get(key)
            if action == DROP:
                del record[key]
            elif action == HASH:
                record[key] = self._hashed_tree(value)
            elif value.__class__ is dict:
                self._clean(value)
            elif value.__class__ is list:
                self._clean_list(value)

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
                    if self._rules.get(key) != DROP}
        if value.__class__ is list:
            return [self._hashed_tree(item) for item in value]
        return self.hashed(value)
