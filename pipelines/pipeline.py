"""Building and running the wallet pipeline for a destination; no HTTP here."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
from dlt.common.pipeline import LoadInfo
from dlt.common.runtime.collector import LogCollector
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from pipelines.lock import exclusive_run
from sources.wallet import wallet_source
from sources.wallet.client import WalletError
from sources.wallet.strategies import Extraction

PIPELINE_NAME = "wallet"
DEFAULT_DATASET = "wallet_data"
# The DuckDB file must not be named like the dataset (dlt fails on the second run then).
DEFAULT_DUCKDB_FILE = "wallet.duckdb"
# Each destination's fast load format (DuckDB's default insert_values is ~80x slower).
# BigQuery: jsonl, because its loader takes json columns (nested objects) only from jsonl.
DUCKDB_MEMORY_LIMIT = "256MB"
FILE_FORMATS = {"duckdb": "parquet", "postgres": "csv", "bigquery": "jsonl"}
# Pages travel as Arrow tables except to BigQuery: in the jsonl it needs, dlt writes an Arrow
# json column (text) as a JSON string, where rows give the object itself.
ROWS_ONLY = {"bigquery"}


@dataclass
class RunSummary:
    rows: dict[str, int] = field(default_factory=dict)
    arrow_rows: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    load_info: LoadInfo | None = None
    failures: dict[str, str] = field(default_factory=dict)
    drift: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{table}: {count} rows" for table, count in sorted(self.rows.items())]
        out.append(f"{sum(self.rows.values())} rows in {len(self.rows)} tables "
                   f"({sum(self.arrow_rows.values())} as Arrow tables, the rest as rows); "
                   f"{self.requests} requests ({self.retries} retried); {self.seconds:.1f} s")
        out += [f"type drift: {line}" for line in self.drift]
        return out


class PartialLoad(WalletError):
    """Some resources failed; everything else loaded, and their cursors moved."""

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary
        failed = "; ".join(f"{name}: {why}" for name, why in sorted(summary.failures.items()))
        super().__init__(f"{len(summary.failures)} resource(s) did not load: {failed}. The "
                         "others loaded; rerun to retry the failed ones from their cursors.")


def adopt_friendly_key() -> None:
    """`WALLET_API_KEY` works as well as dlt's `SOURCES__WALLET__API_KEY`."""
    key = os.environ.get("WALLET_API_KEY")
    if key and not os.environ.get("SOURCES__WALLET__API_KEY"):
        os.environ["SOURCES__WALLET__API_KEY"] = key


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*$", re.IGNORECASE)
_UNIT_MB = {"k": 1 / 1000, "m": 1, "g": 1000, "t": 1000 ** 2}


def duckdb_threads(memory_limit: str, cores: int) -> int | None:
    """DuckDB's threads share its memory cap; under 256MB two threads spill where one does
    not (load step 2.3 -> 2.0 s on 2 cores, same peak RSS). One thread per 256MB of the cap,
    at most one per core; None (DuckDB decides) for a limit this cannot read."""
    match = _SIZE.match(memory_limit)
    if not match:
        return None
    megabytes = float(match.group(1)) * _UNIT_MB[match.group(2)[0].lower()]
    return max(1, min(cores, int(megabytes // 256)))


def make_pipeline(destination: str = "duckdb", dataset_name: str | None = None,
                  pipelines_dir: str | None = None, duckdb_path: str | None = None,
                  progress: bool = False,
                  export_schema_path: str | None = None) -> dlt.Pipeline:
    """A pipeline for `destination`; `export_schema_path` writes the schema dlt ended up with,
    for review against the pinned one (schemas/wallet.schema.yaml). With `progress`, long
    runs report every 10 s on stdout."""
    # Intermediate files are written once and read once on this machine: gzip only costs
    # (it was over half of extract time). An explicit setting in config or env still wins.
    if "DATA_WRITER__DISABLE_COMPRESSION" not in os.environ:
        dlt.config["data_writer.disable_compression"] = True
    # A completed package's job files hold every row it loaded (personal data included) and
    # no resume reads them: only unfinished packages are. dlt keeps the package's metadata
    # (schema updates, state, metrics), which `dlt pipeline info` and the trace read.
    if "LOAD__DELETE_COMPLETED_JOBS" not in os.environ:
        dlt.config["load.delete_completed_jobs"] = True
    target: Any = destination
    if destination == "duckdb":
        path = duckdb_path or str(Path.cwd() / DEFAULT_DUCKDB_FILE)
        # DuckDB takes 80% of RAM by default; merges of a large first load spill to disk
        # instead of growing the process (WALLET_DUCKDB_MEMORY_LIMIT overrides).
        limit = os.environ.get("WALLET_DUCKDB_MEMORY_LIMIT", DUCKDB_MEMORY_LIMIT)
        settings: dict[str, Any] = {"memory_limit": limit}
        threads = duckdb_threads(limit, os.cpu_count() or 1)
        if threads:
            settings["threads"] = threads
        target = dlt.destinations.duckdb(DuckDbCredentials(path, global_config=settings))
    return dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=target,
        dataset_name=dataset_name or DEFAULT_DATASET,
        pipelines_dir=pipelines_dir,
        export_schema_path=export_schema_path,
        progress=LogCollector(log_period=10, logger="stdout", dump_system_stats=False)
        if progress else None,
    )


def run(pipeline: dlt.Pipeline, **source_args: Any) -> RunSummary:
    """Extract, normalize and load; returns what was loaded and what it cost."""
    adopt_friendly_key()
    started = time.monotonic()
    before = _variant_columns(pipeline)
    runs: list[Extraction] = []
    destination = pipeline.destination.destination_name if pipeline.destination else "duckdb"
    if destination in ROWS_ONLY:
        source_args = {**source_args, "arrow": False}
    source = wallet_source(observe=runs.append, **source_args)
    try:
        with exclusive_run(pipeline.working_dir, pipeline.pipeline_name):
            info = pipeline.run(source,
                                loader_file_format=FILE_FORMATS.get(destination, "parquet"))
    finally:
        for ctx in runs:
            ctx.client.close()
    summary = RunSummary(load_info=info)
    for ctx in runs:
        # Counted as extracted: dlt's normalize counts are off for some file formats (csv).
        summary.rows = {table: n for table, n in ctx.rows.items() if n}
        summary.arrow_rows = dict(ctx.arrow_rows)
        summary.requests, summary.retries = ctx.client.requests_made, ctx.client.retries
        summary.failures = dict(ctx.failures)
    summary.drift = sorted(_variant_columns(pipeline) - before)
    summary.seconds = time.monotonic() - started
    if summary.failures:
        raise PartialLoad(summary)
    return summary


def _variant_columns(pipeline: dlt.Pipeline) -> set[str]:
    """`table.column` for every variant column: a value arrived with another type than its
    column's, and dlt kept it beside the column rather than lose or coerce it."""
    if not pipeline.default_schema_name:
        return set()
    schema = pipeline.default_schema
    return {f"{table}.{column}" for table in schema.data_table_names()
            for column in schema.get_table_columns(table) if "__v_" in column}
