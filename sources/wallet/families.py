"""Route families: the first segment of a route's path after its version (`/v2/analytics/...`
is `analytics`, `/system/countries/all` is `system`), lower-cased. The SDKs add and drop
whole families at once (July 2026: Analytics and Dashboard), so a family is what the
`disabled_families` setting switches off."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from wallet_elt.sources.wallet.catalog import ENTRIES, Entry

_VERSION = re.compile(r"^v\d+$")
SETTING = "disabled_families (sources.wallet.disabled_families)"


def family_of(path: str) -> str:
    segments = [part for part in path.split("/") if part]
    if len(segments) > 1 and _VERSION.match(segments[0]):
        segments = segments[1:]
    return segments[0].lower() if segments else ""


FAMILIES: frozenset[str] = frozenset(family_of(entry.operation.path) for entry in ENTRIES)


def checked_families(names: Sequence[str] | None) -> frozenset[str]:
    """The families named, lower-cased; an unknown name fails, naming the setting."""
    if isinstance(names, str):
        raise ValueError(f"{SETTING} must be a list of family names, got the string {names!r}")
    wanted = frozenset(name.strip().lower() for name in names or ())
    unknown = sorted(wanted - FAMILIES)
    if unknown:
        raise ValueError(f"{SETTING}: unknown famil{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(unknown)}; known: {', '.join(sorted(FAMILIES))}")
    return wanted


def enabled(entries: Iterable[Entry], disabled: frozenset[str]) -> list[Entry]:
    return [entry for entry in entries if family_of(entry.operation.path) not in disabled]
