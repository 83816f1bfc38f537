"""Faults on demand: what can go wrong between a client and the Wallet API, per route,
deterministically (a fault fires on chosen request numbers, or by a seeded draw)."""

from __future__ import annotations

import fnmatch
import hashlib
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    LATENCY = "latency"  # delay every matching response by `value` ms
    ERROR_500 = "500"
    ERROR_502 = "502"
    ERROR_503 = "503"
    RESET = "reset"  # close the connection without an answer
    TIMEOUT = "timeout"  # hold the request `value` seconds, then close
    TRUNCATED = "truncated"  # valid status, body cut in half
    MALFORMED = "malformed"  # valid status, body not JSON
    HTML = "html"  # status 200 with an HTML error page
    NEW_FIELD = "new_field"  # every record gains an unannounced field
    TYPE_CHANGE = "type_change"  # a numeric field arrives as text ("1260 units")
    PAGE_DRIFT = "page_drift"  # records are inserted after each page served
    EMPTY = "empty"  # a route that answers a bare list answers [] (everything deleted)

    @property
    def is_error_status(self) -> bool:
        return self in (FaultKind.ERROR_500, FaultKind.ERROR_502, FaultKind.ERROR_503)


@dataclass
class Fault:
    """One fault: which routes (a glob on "METHOD /path" template), and when it fires.

    It fires on matching requests after the first `after` ones, at most `times` times (0: no
    limit), each with probability `probability` drawn from the seed and the request number.
    """

    kind: FaultKind
    route: str = "*"
    probability: float = 1.0
    after: int = 0
    times: int = 0
    value: float = 0.0
    seen: int = field(default=0, compare=False)
    fired: int = field(default=0, compare=False)

    def matches(self, route_key: str) -> bool:
        return fnmatch.fnmatchcase(route_key, self.route)

    @classmethod
    def parse(cls, text: str) -> Fault:
        """`kind[,route=GLOB][,p=0.1][,after=N][,times=N][,value=X]`, as the CLI takes it."""
        kind, *options = [part.strip() for part in text.split(",") if part.strip()]
        names = {"route": "route", "p": "probability", "after": "after", "times": "times",
                 "value": "value"}
        kwargs: dict[str, Any] = {}
        for option in options:
            key, _, raw = option.partition("=")
            if key not in names:
                raise ValueError(f"unknown fault option {key!r} in {text!r}")
            target = names[key]
            kwargs[target] = raw if target == "route" else (
                int(raw) if target in ("after", "times") else float(raw))
        return cls(FaultKind(kind), **kwargs)


REMOVED_STATUSES = (404, 410)


def removed_glob(glob: str) -> str:
    """A removed-route glob on the path (`/v2/dashboard/*`) or on "METHOD /path"."""
    return "*" + glob if glob.startswith("/") else glob


class FaultPlan:
    """The active faults and the token-bucket rate limit, shared by all handler threads.
    `removed`: route globs that answer `removed_status` (404 or 410) to every request, as
    a route the API no longer serves; kept apart from the faults, which tests replace."""

    def __init__(self, seed: int, faults: list[Fault] | None = None,
                 rate_limit: float = 0.0, latency_ms: float = 0.0,
                 removed: list[str] | None = None, removed_status: int = 404) -> None:
        self.seed = seed
        self.faults = list(faults or [])
        self.rate_limit = rate_limit
        self.latency_ms = latency_ms
        self._lock = threading.Lock()
        self.removed: list[str] = []
        self.removed_status = 404
        self.remove(removed or [], removed_status)
        self._tokens = rate_limit
        self._refilled = time.monotonic()

    def replace(self, faults: list[Fault], rate_limit: float | None = None,
                latency_ms: float | None = None) -> None:
        with self._lock:
            self.faults = list(faults)
            if rate_limit is not None:
                self.rate_limit, self._tokens = rate_limit, rate_limit
            if latency_ms is not None:
                self.latency_ms = latency_ms

    def remove(self, globs: list[str], status: int = 404) -> None:
        """Routes matching `globs` answer `status` from now on (an empty list restores all)."""
        if status not in REMOVED_STATUSES:
            raise ValueError(f"a removed route answers 404 or 410, not {status}")
        with self._lock:
            self.removed = [removed_glob(glob) for glob in globs]
            self.removed_status = status

    def gone(self, route_key: str) -> int | None:
        """The status a removed route answers, None for a route still served."""
        with self._lock:
            if any(fnmatch.fnmatchcase(route_key, glob) for glob in self.removed):
                return self.removed_status
        return None

    def _draw(self, fault: Fault, route_key: str) -> bool:
        if fault.probability >= 1.0:
            return True
        digest = hashlib.blake2b(f"{self.seed}|{route_key}|{fault.kind}|{fault.seen}".encode(),
                                 digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < fault.probability

    def pick(self, route_key: str) -> list[Fault]:
        """Faults that fire on this request (counted as they fire)."""
        firing = []
        with self._lock:
            for fault in self.faults:
                if not fault.matches(route_key):
                    continue
                fault.seen += 1
                if fault.seen <= fault.after or (fault.times and fault.fired >= fault.times):
                    continue
                if self._draw(fault, route_key):
                    fault.fired += 1
                    firing.append(fault)
        return firing

    def retry_after(self) -> float | None:
        """Seconds until a token is free if the bucket is empty (a 429), else None."""
        if self.rate_limit <= 0:
            return None
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.rate_limit,
                               self._tokens + (now - self._refilled) * self.rate_limit)
            self._refilled = now
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            return (1 - self._tokens) / self.rate_limit
