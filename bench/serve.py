"""The sandbox in a process of its own, so that serving does not share a GIL with the
pipeline being measured (a real API is remote too).

    python -m bench.serve --scale 200000 [--seed 7] [--latency-ms 100] [--rate-limit 20]

Prints one JSON line ({base_url, api_key, start_date, records}) once it listens, then serves
until killed. Besides the sandbox's own control routes it answers:

- GET  /_bench/requests        every API request answered (200) since the last reset, as
                               [method, path with query, JSON body or null]
- POST /_bench/reset           clears that log and the sandbox counters
- POST /_bench/advance_subset  {"entities": [...], "fraction": 0.01, "minutes": 60}: creates
                               and updates `fraction` of each entity's records
"""

from __future__ import annotations

import argparse
import sys
import threading
from http.server import ThreadingHTTPServer
from typing import Any

import orjson

from wallet_elt.sandbox.faults import FaultPlan
from wallet_elt.sandbox.server import Handler, Sandbox
from wallet_elt.sandbox.world import World, iso


class RecordingSandbox(Sandbox):
    """A sandbox that also logs each API request (method, path+query, body)."""

    def __init__(self, world: World, **kwargs: Any) -> None:
        super().__init__(world, **kwargs)
        self.log: list[tuple[str, str, Any]] = []
        self.log_lock = threading.Lock()

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        handler = type("BoundHandler", (RecordingHandler,), {"sandbox": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.base_url


class RecordingHandler(Handler):
    sandbox: RecordingSandbox

    def read_body(self) -> dict[str, Any]:
        self.bench_body = super().read_body()
        return self.bench_body

    def answer(self, route: Any, payload: Any, faults: Any) -> None:
        # Only answered requests (not 401/404/429/faults) are logged, for replaying.
        with self.sandbox.log_lock:
            self.sandbox.log.append((self.command, self.path, self.bench_body or None))
        super().answer(route, payload, faults)

    def dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/_bench/"):
            self.control(method, path)
        else:
            super().dispatch(method)

    def control(self, method: str, path: str) -> None:
        box = self.sandbox
        if path == "/_bench/requests":
            with box.log_lock:
                log = list(box.log)
            self.send_json(200, log)
        elif path == "/_bench/reset":
            with box.log_lock:
                box.log.clear()
            box.reset_stats()
            self.send_json(200, {"ok": True})
        elif path == "/_bench/advance_subset":
            body = self.read_body()
            self.send_json(200, advance_subset(box.world, body["entities"],
                                               float(body.get("fraction", 0.01)),
                                               float(body.get("minutes", 60))))
        else:
            super().control(method, path)


def advance_subset(world: World, entities: list[str], fraction: float,
                   minutes: float) -> dict[str, Any]:
    """Create and update `fraction` of each entity's records (the clock moves once)."""
    changed: dict[str, Any] = {}
    for n, name in enumerate(entities):
        k = max(1, int(world.entities[name].count * fraction))
        result = world.advance(minutes=minutes if n == 0 else 0.0, create=k, update=k,
                               entities=[name])
        changed.update(result["changed"])
    return {"now": iso(world.now), "changed": changed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=float, default=0.0)
    args = parser.parse_args()
    world = World(seed=args.seed, scale=args.scale)
    box = RecordingSandbox(world, faults=FaultPlan(args.seed, rate_limit=args.rate_limit,
                                                   latency_ms=args.latency_ms))
    box.start()
    sys.stdout.write(orjson.dumps({
        "base_url": box.base_url, "api_key": box.api_key,
        "start_date": iso(world.now - world.history_days * 86400),
        "records": world.total_records(),
    }).decode() + "\n")
    sys.stdout.flush()
    assert box._thread is not None
    box._thread.join()


if __name__ == "__main__":
    main()
