"""What one run of the source did, and how a resource that could not load is reported.

The caller owns a `RunReport` and hands it to `wallet_source`; the source fills it while dlt
extracts (rows per resource, requests, retries, failed and not-served resources), so the
caller reads plain values after the run instead of reaching into the source."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

from wallet_elt.sources.wallet.client import RouteFailed, WalletError

OnRouteFailure = Literal["raise", "skip"]


class ResourceFailed(WalletError):
    """A resource whose route kept failing; raised through dlt (PipelineStepFailed) unless
    the source was asked to skip such resources."""

    def __init__(self, resource: str, cause: RouteFailed) -> None:
        self.resource = resource
        self.cause = cause
        super().__init__(f"resource {resource} did not load: {cause}")

    def __reduce__(self) -> tuple[type[ResourceFailed], tuple[str, RouteFailed]]:
        return ResourceFailed, (self.resource, self.cause)  # survives dlt's process pools


@dataclass
class RunReport:
    rows: dict[str, int] = field(default_factory=dict)
    arrow_rows: dict[str, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    # resource -> why: routes that answered 404/410 to every request (not failures)
    not_served: dict[str, str] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)  # resources that ended (run progress)
    requests: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def counted(self, resource: str, count: int) -> None:
        """Rows extracted per resource: the run summary's figures, whatever the destination."""
        with self._lock:
            self.rows[resource] = self.rows.get(resource, 0) + count

    def counted_arrow(self, resource: str, count: int) -> None:
        """Of those, rows that reached dlt as Arrow tables (the rest went as rows)."""
        with self._lock:
            self.arrow_rows[resource] = self.arrow_rows.get(resource, 0) + count

    def failed(self, resource: str, message: str) -> None:
        with self._lock:
            self.failures[resource] = message

    def not_served_route(self, resource: str, message: str) -> None:
        with self._lock:
            self.not_served[resource] = message

    def requests_seen(self, requests: int, retries: int) -> None:
        with self._lock:
            self.requests, self.retries = requests, retries
