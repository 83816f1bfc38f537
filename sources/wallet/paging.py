"""Walking a route's pages: query or body page numbers, the three envelopes, bare arrays."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from wallet_elt.sources.wallet.client import RouteFailed, WalletClient
from wallet_elt.sources.wallet.spec import Operation


def records_of(op: Operation, payload: Any) -> tuple[list[dict[str, Any]], int | None]:
    """(records, total if the envelope states one) of one decoded response."""
    envelope = op.envelope
    if envelope:
        items, total_field = envelope
        if not isinstance(payload, dict) or not isinstance(payload.get(items), list):
            raise RouteFailed(f"{op.key} answered an unexpected envelope: expected an object "
                              f"with a '{items}' list, got {type(payload).__name__}")
        total = payload.get(total_field)
        return payload[items], int(total) if isinstance(total, (int, float)) else None
    if isinstance(payload, list):
        return payload, None
    if isinstance(payload, dict):
        return [payload], None
    raise RouteFailed(f"{op.key} answered {type(payload).__name__}, not records")


def pages(client: WalletClient, op: Operation, path: str, params: dict[str, Any],
          body: dict[str, Any], page_size: int,
          on_time: Callable[[float | None], None] | None = None
          ) -> Iterator[list[dict[str, Any]]]:
    """Yield each page's records until the envelope's total is reached, or, where no total is
    stated, until a short or empty page. `on_time` is given the server's time of the first
    answer (when the list began to be read).

    A first page shorter than asked is either the whole list or the server's cap on the page
    size (the reference states none; the sandbox caps at 1,000). Paging goes on with the size
    the server used, so page n starts at record (n - 1) * size and the pages stay aligned:
    with a total, while it says there is more; without one, until an empty page (one request
    more for a list shorter than page_size). A short page past the first, before the total,
    fails the route: stopping there would silently drop the rest of the list."""
    paging = op.page_params
    if paging is None:
        payload = client.request(op.method, path, params=params or None, body=body or None,
                                 on_time=on_time)
        yield records_of(op, payload)[0]
        return
    number_name, size_name = paging
    target = body if op.pages_in_body else params
    number, seen, size = 1, 0, page_size
    while True:
        target.update({number_name: number, size_name: size})
        payload = client.request(op.method, path, params=params or None, body=body or None,
                                 on_time=on_time if number == 1 else None)
        records, total = records_of(op, payload)
        if records:
            yield records
        seen += len(records)
        if total is not None and seen >= total:
            return
        if number == 1 and 0 < len(records) < size:
            size = len(records)
        elif len(records) < size:
            if total is None:
                return
            raise RouteFailed(
                f"{op.key} answered {len(records)} records on page {number} (page size "
                f"{size}, page_size = {page_size}) while its total says {total} and "
                f"{seen} were read: the list would be incomplete, so it is not trusted")
        number += 1
