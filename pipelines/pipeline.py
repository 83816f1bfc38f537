"""Building and running the wallet pipeline for a destination; no HTTP here."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
from dlt.common.pipeline import LoadInfo
from dlt.common.runtime.collector import LogCollector

from sources.wallet import wallet_source
from sources.wallet.client import WalletClient

PIPELINE_NAME = "wallet"
DEFAULT_DATASET = "wallet_data"
# The DuckDB file must not be named like the dataset (dlt fails on the second run then).
DEFAULT_DUCKDB_FILE = "wallet.duckdb"
# Each destination's fast load format (DuckDB's default insert_values is ~80x slower).
FILE_FORMATS = {"duckdb": "parquet", "postgres": "csv", "bigquery": "parquet"}


@dataclass
class RunSummary:
    rows: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    load_info: LoadInfo | None = None

    def lines(self) -> list[str]:
        out = [f"{table}: {count} rows" for table, count in sorted(self.rows.items())]
        out.append(f"{sum(self.rows.values())} rows in {len(self.rows)} tables; "
                   f"{self.requests} requests ({self.retries} retried); {self.seconds:.1f} s")
        return out


def adopt_friendly_key() -> None:
    """`WALLET_API_KEY` works as well as dlt's `SOURCES__WALLET__API_KEY`."""
    key = os.environ.get("WALLET_API_KEY")
    if key and not os.environ.get("SOURCES__WALLET__API_KEY"):
        os.environ["SOURCES__WALLET__API_KEY"] = key


def make_pipeline(destination: str = "duckdb", dataset_name: str | None = None,
                  pipelines_dir: str | None = None, duckdb_path: str | None = None,
                  dev_mode: bool = False, progress: bool = False) -> dlt.Pipeline:
    """A pipeline for `destination`; with `progress`, long runs report every 10 s on stdout."""
    target: Any = destination
    if destination == "duckdb":
        target = dlt.destinations.duckdb(duckdb_path or str(Path.cwd() / DEFAULT_DUCKDB_FILE))
    return dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=target,
        dataset_name=dataset_name or DEFAULT_DATASET,
        pipelines_dir=pipelines_dir,
        dev_mode=dev_mode,
        progress=LogCollector(log_period=10, logger="stdout", dump_system_stats=False)
        if progress else None,
    )


def run(pipeline: dlt.Pipeline, **source_args: Any) -> RunSummary:
    """Extract, normalize and load; returns what was loaded and what it cost."""
    adopt_friendly_key()
    started = time.monotonic()
    clients: list[WalletClient] = []
    source = wallet_source(observe_client=clients.append, **source_args)
    destination = pipeline.destination.destination_name if pipeline.destination else "duckdb"
    info = pipeline.run(source, loader_file_format=FILE_FORMATS.get(destination, "parquet"))
    summary = RunSummary(load_info=info)
    normalize = pipeline.last_trace.last_normalize_info
    if normalize:
        summary.rows = {t: n for t, n in normalize.row_counts.items() if not t.startswith("_dlt")}
    for client in clients:
        summary.requests, summary.retries = client.requests_made, client.retries
        client.close()
    summary.seconds = time.monotonic() - started
    return summary
