"""What the benchmark's parts share: the resource subsets, a sandbox process, temp pipelines."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx
import orjson

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

ROOT = Path(__file__).resolve().parent.parent

# The throughput subset: the big tables, plus the small parents they fan out from (loaded by
# both the connector and the baseline, so both write the same tables).
BIG_TABLES = (
    "members",
    "phone_number_outbound_sms_pages",
    "ledger_transactions",
    "static_voucher_campaign_static_voucher_pages",
    "opt_in_list_subscriber_pages",
    "performance_ticket_pages",
    "phone_number_inbound_sms_pages",
)
PARENTS = ("phone_numbers", "static_voucher_campaigns", "opt_in_lists", "performances")
SUBSET = PARENTS + BIG_TABLES
# World entities behind the subset (for the 1% change of the incremental run).
SUBSET_ENTITIES = ("members", "outbound_sms", "ledger_entries", "static_vouchers",
                   "subscribers", "tickets", "inbound_sms")

# The latency-bound subset: few rows, many requests (date windows x pages x parents), spread
# over several resources that could run side by side.
LATENCY_SUBSET = ("phone_numbers", "phone_number_inbound_sms_pages",
                  "phone_number_outbound_sms_pages", "ledger_transactions", "members")


def advance_subset(base_url: str, entities: tuple[str, ...], fraction: float) -> dict[str, Any]:
    """Creates and updates `fraction` of each entity's records in a bench.serve sandbox."""
    with httpx.Client(base_url=base_url, timeout=120) as client:
        response = client.post("/_bench/advance_subset",
                               content=orjson.dumps({"entities": list(entities),
                                                     "fraction": fraction}))
        response.raise_for_status()
        return orjson.loads(response.content)


@dataclass
class Server:
    """A sandbox running in a child process (see bench.serve)."""

    base_url: str
    api_key: str
    start_date: str
    records: int
    process: subprocess.Popen[bytes]

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=120)

    def reset(self) -> None:
        with self.http() as client:
            client.post("/_bench/reset").raise_for_status()

    def stats(self) -> dict[str, Any]:
        with self.http() as client:
            return orjson.loads(client.get("/_sandbox/stats").content)

    def requests_log(self) -> list[list[Any]]:
        with self.http() as client:
            return orjson.loads(client.get("/_bench/requests").content)

    def advance_subset(self, entities: tuple[str, ...], fraction: float) -> dict[str, Any]:
        return advance_subset(self.base_url, entities, fraction)

    def source_args(self, resources: tuple[str, ...], **extra: Any) -> dict[str, Any]:
        return {"api_key": self.api_key, "base_url": self.base_url,
                "start_date": self.start_date, "resources": list(resources), **extra}


@contextmanager
def sandbox_process(scale: int, *, latency_ms: float = 0.0, rate_limit: float = 0.0,
                    seed: int = 7) -> Iterator[Server]:
    cmd = [sys.executable, "-m", "bench.serve", "--scale", str(scale), "--seed", str(seed),
           "--latency-ms", str(latency_ms), "--rate-limit", str(rate_limit)]
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"sandbox process failed to start: {cmd}")
        info = orjson.loads(line)
        yield Server(info["base_url"], info["api_key"], info["start_date"], info["records"],
                     process)
    finally:
        process.terminate()  # only the process started above
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"wallet-bench-{prefix}-") as name:
        yield Path(name)


def duckdb_pipeline(tmp: Path, name: str = "bench") -> Any:
    from wallet_elt.pipelines.pipeline import make_pipeline

    return make_pipeline("duckdb", duckdb_path=str(tmp / f"{name}.duckdb"),
                         pipelines_dir=str(tmp / "pipelines"))


class Timer:
    def __enter__(self) -> Self:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def served_ok(stats: dict[str, Any]) -> int:
    """Requests the sandbox answered with 200."""
    return sum(codes.get("200", 0) for codes in stats["routes"].values())


def served_status(stats: dict[str, Any], status: str) -> int:
    return sum(codes.get(status, 0) for codes in stats["routes"].values())


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not `getrusage(...).ru_maxrss`: Linux carries the
    forking parent's peak over into a child across exec, so a child started by a big parent
    would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
