"""The sandbox HTTP server: auth, routing, faults, counters and the control surface."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from wallet_elt.sandbox.faults import Fault, FaultKind, FaultPlan
from wallet_elt.sandbox.routes import ApiError, Request, Responder, Route, build_routes
from wallet_elt.sandbox.world import World

DEFAULT_API_KEY = "sandbox-key-0123456789"
HTML_ERROR_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>upstream</body></html>"


class Sandbox:
    """A running sandbox: the world, the routes, the faults and the counters."""

    def __init__(self, world: World, *, api_key: str = DEFAULT_API_KEY,
                 faults: FaultPlan | None = None, removed: list[str] | None = None,
                 removed_status: int = 404) -> None:
        """`removed`: route globs (`/v2/dashboard/*`) that answer `removed_status` (404 or
        410) to every request, as routes the API no longer serves."""
        self.world = world
        self.api_key = api_key
        self.faults = faults or FaultPlan(world.seed)
        if removed:
            self.faults.remove(removed, removed_status)
        self.routes = build_routes()
        # Per method: literal paths by path, then parameterised routes in match order (literal
        # segments before parameters, as build_routes sorts them).
        self._literal: dict[tuple[str, str], Route] = {}
        self._patterned: dict[str, list[Route]] = {}
        for route in self.routes:
            op = route.operation
            if op.path_params:
                self._patterned.setdefault(op.method, []).append(route)
            else:
                self._literal.setdefault((op.method, op.path), route)
        self.counts: Counter[tuple[str, int]] = Counter()
        self.records_served = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Python control surface ------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        with self._lock:
            routes: dict[str, dict[str, int]] = {}
            for (route, status), n in sorted(self.counts.items()):
                routes.setdefault(route, {})[str(status)] = n
            return {"requests": sum(self.counts.values()), "records": self.records_served,
                    "routes": routes}

    def reset_stats(self) -> None:
        with self._lock:
            self.counts.clear()
            self.records_served = 0

    def count(self, route: str, status: int, records: int = 0) -> None:
        with self._lock:
            self.counts[(route, status)] += 1
            self.records_served += records

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        literal = self._literal.get((method, path))
        if literal is not None:
            return literal, {}
        for route in self._patterned.get(method, ()):
            found = route.pattern.match(path)
            if found:
                return route, found.groupdict()
        return None

    # Lifecycle -------------------------------------------------------------------------------
    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        handler = type("BoundHandler", (Handler,), {"sandbox": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the sandbox is not started"
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def serve_forever(self, port: int, host: str = "127.0.0.1") -> None:
        """Serves until interrupted, on `port` unless `start` already bound one (binding it
        again failed with "Address already in use")."""
        if self._server is None:
            self.start(port, host)
        assert self._thread is not None
        self._thread.join()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sandbox: Sandbox

    def setup(self) -> None:
        super().setup()
        # Answers are one write each; without this a write that follows one (a kept-alive
        # connection's next answer) can wait out a delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the counters are the log."""

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    # Plumbing ----------------------------------------------------------------------------------
    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None,
                  body: bytes | None = None) -> None:
        data = body if body is not None else orjson.dumps(payload)
        self.send_raw(status, "application/json; charset=utf-8", data, headers)

    def send_raw(self, status: int, content_type: str, data: bytes,
                 headers: dict[str, str] | None = None) -> None:
        """Status line, headers and body in one write. `Date` is the world's clock, not the
        wall clock, as a real server dates its answers by the clock that stamps its records."""
        self.log_request(status)
        lines = [f"{self.protocol_version} {status} {self.responses[status][0]}",
                 f"Server: {self.version_string()}",
                 f"Date: {self.date_time_string(self.sandbox.world.now)}",
                 f"Content-Type: {content_type}", f"Content-Length: {len(data)}",
                 *(f"{name}: {value}" for name, value in (headers or {}).items()), "", ""]
        self.wfile.write("\r\n".join(lines).encode("latin-1") + data)

    def read_body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        raw = self.rfile.read(length)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(422, "FalsumError", "request body is not JSON") from None
        if not isinstance(body, dict):
            raise ApiError(422, "FalsumError", "request body must be a JSON object")
        return body

    def error(self, route: str, err: ApiError, headers: dict[str, str] | None = None) -> None:
        self.sandbox.count(route, err.status)
        self.send_json(err.status, {"error": {"name": err.name, "message": err.message}},
                       headers)

    def dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/_sandbox/"):
            self.control(method, url.path)
            return
        found = self.sandbox.match(method, url.path)
        if found is None:
            self.error(f"{method} {url.path}", ApiError(404, "NotFound", "no such route"))
            return
        route, params = found
        gone = self.sandbox.faults.gone(route.key)
        if gone is not None:
            # The body is read unparsed, so the kept-alive connection stays in step.
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.error(route.key, ApiError(gone, "NotFound" if gone == 404 else "Gone",
                                           "this route is no longer served"))
            return
        try:
            body = self.read_body()
        except ApiError as err:
            self.error(route.key, err)
            return
        if self.headers.get("access-token") != self.sandbox.api_key:
            self.error(route.key, ApiError(401, "AuthError", "missing or invalid access-token"))
            return
        plan = self.sandbox.faults
        if plan.latency_ms:
            time.sleep(plan.latency_ms / 1000)
        wait = plan.retry_after()
        if wait is not None:
            self.error(route.key, ApiError(429, "TooManyRequests", "rate limit exceeded"),
                       {"Retry-After": str(max(1, math.ceil(wait)))})
            return
        faults = plan.pick(route.key)
        if self.before_answer(route, faults):
            return
        request = Request(dict(parse_qsl(url.query)), body)
        try:
            with self.sandbox.world.lock:
                payload = Responder(self.sandbox.world, route, params, request).respond()
        except ApiError as err:
            self.error(route.key, err)
            return
        self.answer(route, payload, faults)

    def before_answer(self, route: Route, faults: list[Fault]) -> bool:
        """Faults that replace the answer; True when the request is done."""
        for fault in faults:
            kind = fault.kind
            if kind is FaultKind.LATENCY:
                time.sleep(fault.value / 1000)
            elif kind.is_error_status:
                self.error(route.key, ApiError(int(kind), "InternalServerError", "injected"))
                return True
            elif kind in (FaultKind.RESET, FaultKind.TIMEOUT):
                if kind is FaultKind.TIMEOUT:
                    time.sleep(fault.value or 5.0)
                self.sandbox.count(route.key, 0)
                self.close_connection = True
                self.connection.close()
                return True
            elif kind is FaultKind.HTML:
                self.sandbox.count(route.key, 200)
                self.send_raw(200, "text/html", HTML_ERROR_PAGE)
                return True
        return False

    def answer(self, route: Route, payload: Any, faults: list[Fault]) -> None:
        kinds = {fault.kind for fault in faults}
        if FaultKind.EMPTY in kinds and isinstance(payload, list):
            payload = []
        records = _records_of(payload)
        if FaultKind.NEW_FIELD in kinds:
            for record in records:
                record["sandboxDriftField"] = "new"
        if FaultKind.TYPE_CHANGE in kinds:
            for record in records:
                for key, value in record.items():
                    if isinstance(value, int) and not isinstance(value, bool):
                        # text that no longer reads as a number, as after an API change
                        record[key] = f"{value} units"
                        break
        body = orjson.dumps(payload)
        if FaultKind.TRUNCATED in kinds:
            body = body[: max(1, len(body) // 2)]
        if FaultKind.MALFORMED in kinds:
            body = b"{" + body[1:-1].replace(b'":', b'"=') + b"]"
        self.sandbox.count(route.key, 200, len(records))
        self.send_json(200, None, body=body)
        if FaultKind.PAGE_DRIFT in kinds:
            world = self.sandbox.world
            with world.lock:
                world.entities[route.entity].create(max(1, int(fault_value(faults))), world.now)

    def control(self, method: str, path: str) -> None:
        sandbox = self.sandbox
        try:
            body = self.read_body()
        except ApiError as err:
            self.error(path, err)
            return
        if method == "GET" and path == "/_sandbox/stats":
            self.send_json(200, sandbox.stats())
        elif method == "POST" and path == "/_sandbox/stats/reset":
            sandbox.reset_stats()
            self.send_json(200, {"ok": True})
        elif method == "POST" and path == "/_sandbox/advance":
            try:
                self.send_json(200, sandbox.world.advance(**body))
            except (TypeError, KeyError, ValueError) as err:
                self.send_json(422, {"error": {"name": "FalsumError", "message": str(err)}})
        elif method == "POST" and path == "/_sandbox/faults":
            faults = [Fault.parse(text) for text in body.get("faults", [])]
            sandbox.faults.replace(faults, body.get("rate_limit"), body.get("latency_ms"))
            try:
                if "removed" in body:
                    sandbox.faults.remove(body["removed"], body.get("removed_status", 404))
            except ValueError as err:
                self.send_json(422, {"error": {"name": "FalsumError", "message": str(err)}})
                return
            self.send_json(200, {"faults": len(faults)})
        else:
            self.send_json(404, {"error": {"name": "NotFound", "message": path}})


def fault_value(faults: list[Fault]) -> float:
    return next((f.value for f in faults if f.kind is FaultKind.PAGE_DRIFT), 1.0) or 1.0


def _records_of(payload: Any) -> list[dict[str, Any]]:
    if isinstance(payload, list):
        return [r for r in payload if isinstance(r, dict)]
    if isinstance(payload, dict):
        for key in ("results", "data", "entries"):
            if isinstance(payload.get(key), list):
                return payload[key]
        return [payload]
    return []
