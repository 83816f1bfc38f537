"""Personal data policy: per field, keep (the default), drop, or replace by a keyed hash.

The hash is HMAC-SHA256 with a secret salt, so the same phone number or email hashes to the
same value in every table (joins still work) while the value cannot be recovered or guessed
by hashing candidate numbers without the salt.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from wallet_elt.sources.wallet.client import WalletError

# Wire fields that carry personal data anywhere in the API.
PERSONAL_FIELDS = frozenset({
    "firstName", "lastName", "email", "birthday", "mobileNumber", "phoneNumber", "cellPhone",
    "cellPhoneNumber", "mobilePhoneNumber", "recipientPhoneNumber", "recipientEmailAddress",
    "fromPhoneNumber", "toPhoneNumber", "to", "from", "ip", "callerName",
})
ACTIONS = ("keep", "drop", "hash")


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
        if "hash" in self.actions.values() and not salt:
            raise WalletError("personal data is set to be hashed but no salt is configured: "
                              "set sources.wallet.pii_salt in .dlt/secrets.toml (or "
                              "SOURCES__WALLET__PII_SALT)")
        self._key = (salt or "").encode()

    def hashed(self, value: Any) -> str:
        return hmac.new(self._key, str(value).encode(), hashlib.sha256).hexdigest()

    def drops(self, field: str) -> bool:
        return self.actions.get(field) == "drop"

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.actions:
            return rows
        for row in rows:
            for field, action in self.actions.items():
                if field not in row:
                    continue
                if action == "drop":
                    del row[field]
                elif row[field] is not None:
                    row[field] = self.hashed(row[field])
        return rows
