"""The fetch-only limit: the exact requests a load made, replayed with httpx and decoded with
orjson, with nothing loaded: one after the other, or from `workers` threads at once as the
connector sends them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson

ENVELOPE_KEYS = ("results", "data", "entries")


def records_in(payload: Any) -> int:
    if isinstance(payload, list):
        return len(payload)
    if isinstance(payload, dict):
        for key in ENVELOPE_KEYS:
            if isinstance(payload.get(key), list):
                return len(payload[key])
        return 1
    return 0


def replay(base_url: str, api_key: str, log: list[list[Any]],
           workers: int = 1) -> tuple[int, float]:
    """(records decoded, seconds) for replaying `log` ([method, path?query, body])."""
    headers = {"access-token": api_key, "accept": "application/json"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:

        def fetch(entry: list[Any]) -> int:
            method, path, body = entry
            response = client.request(method, path,
                                      content=orjson.dumps(body) if body else None,
                                      headers={"content-type": "application/json"}
                                      if body else None)
            response.raise_for_status()
            return records_in(orjson.loads(response.content))

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            records = sum(pool.map(fetch, log))
        seconds = time.perf_counter() - started
    return records, seconds
