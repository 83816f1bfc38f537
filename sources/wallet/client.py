"""The only module that speaks HTTP to the Wallet API: auth, timeouts, retries, the shared
request budget, and turning every failure into an error that names the route."""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
logger = logging.getLogger(__name__)
_warned_plain_http: set[str] = set()


class WalletError(Exception):
    """A failure the operator can act on; the message never contains the API key."""


class AuthRejected(WalletError):
    """401/403: the key is wrong; nothing else can succeed, so the run stops."""


class RouteFailed(WalletError):
    """One route keeps failing (after retries) or answers something unusable."""


class RouteNotServed(RouteFailed):
    """404/410 from a route whose base URL is known good, on a path that never answered 2xx
    in this run: the account (or this API version) does not serve it. Not retried."""


class BaseUrlWrong(WalletError):
    """Nothing at the base URL is the Wallet API (nothing listens, or its paths do not exist):
    no route can succeed, so the run stops at once instead of failing every route slowly."""


DEFAULT_BASE_URL = "https://api.wall.et"
BASE_URL_SETTING = "sources.wallet.base_url in .dlt/config.toml or SOURCES__WALLET__BASE_URL"
# Refused connections before the API ever answered: this many mean nobody listens there.
UNREACHABLE_AFTER = 3
# Reference data every account serves: asked once when the first answer of a run is a 404,
# to tell a wrong base URL (404 here too) from a route this account does not serve.
CANARY_PATH = "/system/countries/all"
NOT_FOUND = frozenset({404, 410})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    backoff_base: float = 0.5  # seconds; doubles per attempt, with full jitter
    backoff_max: float = 30.0
    max_total_wait: float = 300.0


class FairSlots:
    """A semaphore that serves waiters in arrival order. threading.Semaphore lets the thread
    that just released a slot take it back before the woken waiter runs, so under a rate limit
    one parent's chain of pages could starve for seconds and finish alone at the end, using a
    fraction of the budget (measured: the last 2 s of a 13 s load ran at half the rate)."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._lock = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self) -> None:
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return
            handoff = threading.Lock()
            handoff.acquire()
            self._waiters.append(handoff)
        handoff.acquire()  # release() hands its slot over directly: nobody can barge in

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._free += 1


class RequestBudget:
    """One budget for the whole run: at most `rate` requests/s and `concurrency` in flight.

    The rate follows AIMD, as TCP does: a 429 cuts it to half of what the server was actually
    accepting (answers other than 429 over the last few seconds), and every success adds back a
    little, `step` requests/s per second of successes, never above the configured cap. With no
    configured rate (0) requests go as fast as `concurrency` allows until the first 429, which
    makes the budget adopt a rate of its own: without that, a rate-limited run only retries
    into the limit and its parents run out of attempts. Only 429s count as a signal: a steady
    share of 5xx or resets does not shrink by sending slower, and `Retry-After` is honoured by
    the retry loop anyway.
    """

    MIN_RATE = 1.0  # requests/s: a floor, or a burst of 429s could stall the run
    WINDOW = 5.0  # seconds of answers the achieved rate is measured over

    def __init__(self, rate: float, concurrency: int, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.cap = rate if rate > 0 else math.inf
        self.rate = max(0.0, rate)  # 0: not paced (yet)
        self._floor = min(self.MIN_RATE, self.cap)
        self._step = self._floor
        self._slots = FairSlots(max(1, concurrency))
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._sent = 0
        # Tickets below this were sent before the last cut: their 429s are old news.
        self._cut_at = 0
        self._first: float | None = None
        self._answers: deque[float] = deque()

    def acquire(self) -> int:
        """Wait for a slot and the rate; returns the request's ticket for `answered`."""
        self._slots.acquire()
        with self._lock:
            now = self._clock()
            if self._first is None:
                self._first = now
            ticket = self._sent
            self._sent += 1
            start = now
            if self.rate > 0:
                start = max(now, self._next)
                self._next = start + 1.0 / self.rate
        if start > now:
            self._sleep(start - now)
        return ticket

    def release(self) -> None:
        self._slots.release()

    def answered(self, ticket: int, status: int) -> None:
        """Adapt the rate to one answer (a status; not called when no answer came)."""
        with self._lock:
            now = self._clock()
            if status == 429:
                if ticket >= self._cut_at:
                    self._cut(now)
                return
            self._answers.append(now)
            if 200 <= status < 300 and 0 < self.rate < self.cap:
                self.rate = min(self.cap, self.rate + self._step / self.rate)

    def _achieved(self, now: float) -> float:
        """Answers per second over the last WINDOW seconds (or since the first request)."""
        while self._answers and self._answers[0] < now - self.WINDOW:
            self._answers.popleft()
        span = min(self.WINDOW, now - (self._first if self._first is not None else now))
        return len(self._answers) / span if span > 0 else 0.0

    def _cut(self, now: float) -> None:
        current = self.rate if self.rate > 0 else math.inf
        self.rate = min(self.cap, max(self._floor, min(current, self._achieved(now)) / 2))
        # Back to the old rate in about ten seconds of successes, whatever its size.
        self._step = max(self._floor, self.rate / 10)
        self._cut_at = self._sent
        self._next = max(self._next, now)


def server_time(response: httpx.Response) -> float | None:
    """The server's clock when it answered (its `Date` header, whole seconds), as seconds
    since the epoch; None without a readable one."""
    value = response.headers.get("date")
    try:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    return parsed.timestamp() if parsed else None


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds or an HTTP-date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class WalletClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 60.0,
                 budget: RequestBudget | None = None, retry: RetryPolicy | None = None,
                 key_location: str = "sources.wallet.api_key") -> None:
        api_key = clean_key(api_key, key_location)
        warn_if_plain_http(base_url)
        self.key_location = key_location
        self.budget = budget or RequestBudget(rate=0, concurrency=8)
        self.retry = retry or RetryPolicy()
        self.requests_made = 0
        self.retries = 0
        self._count_lock = threading.Lock()
        self.base_url = base_url.rstrip("/")
        # What the run has learnt about the base URL (see _first_contact / _first_not_found).
        self._answered = False  # some response came back
        self._served = False  # some route answered 2xx (or the canary did)
        self._refused = 0
        self._verdict_lock = threading.Lock()
        self._wrong_base: BaseUrlWrong | None = None
        # Paths that answered 2xx in this run: a 404 there later is a failure, not a route
        # that is not served.
        self._served_paths: set[str] = set()
        self._http_args: dict[str, Any] = {
            "base_url": self.base_url,
            "headers": {"access-token": api_key, "accept": "application/json"},
            "timeout": timeout,
            "limits": httpx.Limits(max_connections=32, max_keepalive_connections=32),
        }
        self._http_client: httpx.Client | None = None

    @property
    def _http(self) -> httpx.Client:
        """The connection pool, opened on first use and again after `close()`: the source
        closes it whenever none of its resources is running, and a resource that dlt starts
        later must still find one."""
        with self._count_lock:
            if self._http_client is None:
                self._http_client = httpx.Client(**self._http_args)
            return self._http_client

    def close(self) -> None:
        with self._count_lock:
            http, self._http_client = self._http_client, None
        if http is not None:
            http.close()

    def _count(self, retried: bool) -> None:
        with self._count_lock:
            self.requests_made += 1
            self.retries += retried

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: dict[str, Any] | None = None,
                on_time: Callable[[float | None], None] | None = None) -> Any:
        """Send one request (with retries) and return its decoded JSON; `on_time` is given the
        server's time of the answer (see server_time)."""
        route = f"{method} {path}"
        waited = 0.0
        for attempt in range(1, self.retry.max_attempts + 1):
            ticket = self.budget.acquire()
            try:
                response = self._http.request(method, path, params=params,
                                              content=orjson.dumps(body) if body else None,
                                              headers={"content-type": "application/json"}
                                              if body else None)
                problem: str | None = None
                retry_after = None
                status = response.status_code
            except httpx.TransportError as err:
                response, status = None, 0
                problem = f"{type(err).__name__} (connection reset, timeout or refused)"
                retry_after = None
                if isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout)):
                    self._refused_before_contact(err)
            finally:
                self.budget.release()
            self._count(attempt > 1)
            if response is not None:
                self.budget.answered(ticket, status)
                self._answered = True
                if status in (401, 403):
                    raise AuthRejected(
                        f"the Wallet API rejected the API key ({status}) on {route}: check "
                        f"WALLET_API_KEY or {self.key_location} in .dlt/secrets.toml")
                if status == 200 or status == 201:
                    if on_time is not None:
                        on_time(server_time(response))
                    self._served = True
                    self._served_paths.add(path)
                    return decode(response, route)
                if status in NOT_FOUND and not self._served:
                    self._check_base_url(route, status)
                if status in NOT_FOUND and self._served and path not in self._served_paths:
                    raise RouteNotServed(f"{route} answered {status}: {_snippet(response)}")
                if status not in RETRY_STATUSES:
                    raise RouteFailed(f"{route} answered {status}: {_snippet(response)}")
                retry_after = retry_after_seconds(response.headers.get("retry-after"))
                problem = f"status {status}"
            if attempt == self.retry.max_attempts:
                break
            delay = retry_after if retry_after is not None else random.uniform(
                0, min(self.retry.backoff_max, self.retry.backoff_base * 2 ** (attempt - 1)))
            if waited + delay > self.retry.max_total_wait:
                break
            waited += delay
            time.sleep(delay)
        raise RouteFailed(f"{route} still failing after {attempt} attempts ({problem}); the "
                          "API may be down or rate-limiting: rerun later, nothing was lost")

    def _refused_before_contact(self, err: httpx.TransportError) -> None:
        """Refusals once the API has answered are transient (retried); before it ever
        answered, a few of them (from any thread) mean the base URL points nowhere."""
        if self._answered:
            return
        with self._verdict_lock:
            self._refused += 1
            if self._refused >= UNREACHABLE_AFTER and self._wrong_base is None:
                self._wrong_base = BaseUrlWrong(
                    f"cannot reach the Wallet API at {self.base_url} ({type(err).__name__}: "
                    f"{err or 'connection refused'}, {self._refused} times before any answer): "
                    f"check the base URL, {BASE_URL_SETTING}")
            if self._wrong_base is not None:
                raise self._wrong_base

    def _check_base_url(self, route: str, status: int) -> None:
        """A 404 before any route answered: ask the canary once. If it is missing too, the
        base URL is wrong and the run stops; if it is there, this one route is not served
        (the caller raises RouteNotServed)."""
        with self._verdict_lock:
            if self._wrong_base is None and not self._served:
                try:
                    canary = self._http.get(CANARY_PATH)
                except httpx.TransportError:
                    return  # no verdict: this route fails alone, the next 404 asks again
                finally:
                    self._count(False)
                if canary.status_code in (401, 403):
                    raise AuthRejected(
                        f"the Wallet API rejected the API key ({canary.status_code}) on GET "
                        f"{CANARY_PATH}: check WALLET_API_KEY or {self.key_location} in "
                        ".dlt/secrets.toml")
                if canary.status_code in NOT_FOUND:
                    self._wrong_base = BaseUrlWrong(
                        f"{self.base_url} does not look like the Wallet API: {route} answered "
                        f"{status} and so did GET {CANARY_PATH}: check the base URL (its path "
                        f"too), {BASE_URL_SETTING}")
                else:
                    self._served = True
            if self._wrong_base is not None:
                raise self._wrong_base


def clean_key(api_key: str, key_location: str) -> str:
    """The key as configured, without the whitespace a copied secret or a file often ends
    with (sent as is, the server rejects it and the run looked like a network failure); a key
    with whitespace or control characters inside is refused at once."""
    key = (api_key or "").strip()
    if not key:
        raise AuthRejected(
            f"no Wallet API key configured: set WALLET_API_KEY or {key_location} in "
            ".dlt/secrets.toml")
    if any(char.isspace() or not char.isprintable() for char in key):
        raise AuthRejected(
            f"the Wallet API key in WALLET_API_KEY or {key_location} contains whitespace or "
            "control characters inside it: copy the key again")
    return key


def warn_if_plain_http(base_url: str) -> None:
    """Warn once per URL when the key would travel unencrypted beyond this machine."""
    url = httpx.URL(base_url)
    if url.scheme != "http" or _is_loopback(url.host) or base_url in _warned_plain_http:
        return
    _warned_plain_http.add(base_url)
    logger.warning("the Wallet API key will be sent over plain http:// to %s; use https:// "
                   "unless this host is on a network you trust", url.host)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def decode(response: httpx.Response, route: str) -> Any:
    content_type = response.headers.get("content-type", "")
    if "html" in content_type or response.content.lstrip()[:1] == b"<":
        raise RouteFailed(f"{route} answered an HTML page instead of JSON (status "
                          f"{response.status_code}): {_snippet(response)}")
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as err:
        raise RouteFailed(f"{route} answered malformed or truncated JSON ({err}); "
                          f"{len(response.content)} bytes received") from None


def _snippet(response: httpx.Response) -> str:
    return response.text[:200].replace("\n", " ")
