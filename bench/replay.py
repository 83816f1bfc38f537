"""The fetch-only limit: the exact requests a load made, replayed with httpx and decoded with
orjson, one after the other like the connector sends them, with nothing loaded."""

from __future__ import annotations

import time
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


def replay(base_url: str, api_key: str, log: list[list[Any]]) -> tuple[int, float]:
    """(records decoded, seconds) for replaying `log` ([method, path?query, body])."""
    records = 0
    headers = {"access-token": api_key, "accept": "application/json"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
        started = time.perf_counter()
        for method, path, body in log:
            response = client.request(method, path,
                                      content=orjson.dumps(body) if body else None,
                                      headers={"content-type": "application/json"}
                                      if body else None)
            response.raise_for_status()
            records += records_in(orjson.loads(response.content))
        seconds = time.perf_counter() - started
    return records, seconds
