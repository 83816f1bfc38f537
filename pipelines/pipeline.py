"""Building and running the wallet pipeline for a destination; no HTTP here."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination import TLoaderFileFormat
from dlt.common.pipeline import LoadInfo, TRefreshMode
from dlt.common.runtime.collector import NULL_COLLECTOR
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from wallet_elt.pipelines.deletions import flag_deleted
from wallet_elt.pipelines.lock import exclusive_run
from wallet_elt.pipelines.progress import Progress
from wallet_elt.sources.wallet import RunReport, wallet_source
from wallet_elt.sources.wallet.client import WalletError

PIPELINE_NAME = "wallet"
DEFAULT_DATASET = "wallet_data"
# The DuckDB file must not be named like the dataset (dlt fails on the second run then).
DEFAULT_DUCKDB_FILE = "wallet.duckdb"
# Each destination's fast load format (DuckDB's default insert_values is ~80x slower).
# BigQuery: jsonl, because its loader takes json columns (nested objects) only from jsonl.
DUCKDB_MEMORY_LIMIT = "256MB"
FILE_FORMATS: dict[str, TLoaderFileFormat] = {
    "duckdb": "parquet", "postgres": "csv", "bigquery": "jsonl"}
# Pages travel as Arrow tables except to BigQuery: in the jsonl it needs, dlt writes an Arrow
# json column (text) as a JSON string, where rows give the object itself.
ROWS_ONLY = {"bigquery"}
# Where dlt's merge staging is a schema in the analyst's database (`<dataset>_staging`), it is
# dropped after a load; a merge recreates the tables it needs (local DDL, milliseconds).
# BigQuery keeps it: there it is a dataset of its own, and recreating its tables every run
# would cost an API call per table.
DROPS_STAGING = {"duckdb", "postgres"}


@dataclass
class RunSummary:
    rows: dict[str, int] = field(default_factory=dict)
    arrow_rows: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    load_info: LoadInfo | None = None
    failures: dict[str, str] = field(default_factory=dict)
    not_served: dict[str, str] = field(default_factory=dict)  # not failures: see lines()
    drift: list[str] = field(default_factory=list)
    new_columns: list[str] = field(default_factory=list)
    # packages an interrupted run left: loaded before this run's extract, or dropped by dlt
    resumed: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        if self.resumed:
            out.append(f"finished loading {len(self.resumed)} package(s) that an interrupted "
                       f"run left ({', '.join(self.resumed)}), then ran this load")
        if self.dropped:
            out.append(f"dropped {len(self.dropped)} package(s) that an interrupted first run "
                       f"left before its dataset existed ({', '.join(self.dropped)}); this "
                       "run loaded from the start")
        out += [f"{table}: {count} rows" for table, count in sorted(self.rows.items())]
        out.append(f"{sum(self.rows.values())} rows in {len(self.rows)} tables "
                   f"({sum(self.arrow_rows.values())} as Arrow tables, the rest as rows); "
                   f"{self.requests} requests ({self.retries} retried); {self.seconds:.1f} s")
        if self.not_served:
            out.append(f"{len(self.not_served)} route(s) not served (404/410 to every "
                       "request; not a failure, their tables are as they were):")
            out += [f"  not served: {name}: {why}" for name, why in sorted(
                self.not_served.items())]
        out += [f"type drift: {line}" for line in self.drift]
        out += [f"new column: {name} (a field the API did not send before)"
                for name in self.new_columns]
        return out


class PartialLoad(WalletError):
    """Some resources failed; everything else loaded, and their cursors moved."""

    def __init__(self, summary: RunSummary) -> None:
        self.summary = summary
        failed = "; ".join(f"{name}: {why}" for name, why in sorted(summary.failures.items()))
        super().__init__(f"{len(summary.failures)} resource(s) did not load: {failed}. The "
                         "others loaded; rerun to retry the failed ones from their cursors.")


@contextmanager
def friendly_key() -> Iterator[None]:
    """`WALLET_API_KEY` works as well as dlt's `SOURCES__WALLET__API_KEY`: set as the latter
    in the environment (where dlt resolves it as a secret) while the block runs, and taken
    back after it, so a process that runs several pipelines never keeps another's key."""
    key = os.environ.get("WALLET_API_KEY")
    if not key or os.environ.get("SOURCES__WALLET__API_KEY"):
        yield
        return
    os.environ["SOURCES__WALLET__API_KEY"] = key
    try:
        yield
    finally:
        os.environ.pop("SOURCES__WALLET__API_KEY", None)


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
                  export_schema_path: str | None = None,
                  pipeline_name: str = PIPELINE_NAME) -> dlt.Pipeline:
    """A pipeline for `destination`; `export_schema_path` writes the schema dlt ended up with,
    for review against the pinned one (schemas/wallet.schema.yaml). With `progress`, long
    runs print one progress line every 10 s on stdout. `pipeline_name` keys the state,
    the load packages and the run lock: two projects on one machine need two names."""
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
    elif destination == "postgres":
        # No UNIQUE constraint on `_dlt_id`: a load job that committed its COPY just before a
        # kill runs again on resume, and the constraint would fail it on every rerun (the
        # package stuck for good); every table merges on its key, which drops the second copy.
        target = dlt.destinations.postgres(create_indexes=False)
    return dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=target,
        dataset_name=dataset_name or DEFAULT_DATASET,
        # arg-type: both default to None in dlt, which annotates them as plain str.
        pipelines_dir=pipelines_dir,  # type: ignore[arg-type]
        export_schema_path=export_schema_path,  # type: ignore[arg-type]
        progress=Progress(period=10) if progress else NULL_COLLECTOR,
    )


def run(pipeline: dlt.Pipeline, refresh: TRefreshMode | None = None,
        **source_args: Any) -> RunSummary:
    """Extract, normalize and load; returns what was loaded and what it cost. `refresh` is
    dlt's (e.g. "drop_resources": the selected tables are dropped and reloaded from scratch,
    their cursors reset), applied under the run lock."""
    with friendly_key():
        return _run(pipeline, refresh, source_args)


def _run(pipeline: dlt.Pipeline, refresh: TRefreshMode | None,
         source_args: dict[str, Any]) -> RunSummary:
    started = time.monotonic()
    before = _columns(pipeline)
    destination = pipeline.destination.destination_name if pipeline.destination else "duckdb"
    if destination in ROWS_ONLY:
        source_args = {**source_args, "arrow": False}
    arrow_with_dlt_ids()
    report = RunReport()
    # A refresh drops the tables it reloads, so a resource that failed would end empty: a
    # refreshing run loads all or nothing; an ordinary run loads what it can (PartialLoad).
    source = wallet_source(report=report, on_route_failure="raise" if refresh else "skip",
                           **source_args)
    if isinstance(pipeline.collector, Progress):
        pipeline.collector.watch(lambda: report.requests, lambda: len(report.finished))
    with exclusive_run(pipeline.working_dir, pipeline.pipeline_name):
        resumed, dropped = _finish_pending(pipeline)
        # arg-type: dlt's `refresh` defaults to None, which its annotation leaves out.
        info = pipeline.run(source, refresh=refresh,  # type: ignore[arg-type]
                            loader_file_format=FILE_FORMATS.get(destination, "parquet"))
        # Under the lock, from the state this load committed (see deletions.py).
        flag_deleted(pipeline)
        if destination in DROPS_STAGING:
            drop_staging(pipeline)
    summary = RunSummary(load_info=info, resumed=resumed, dropped=dropped)
    # Counted as extracted: dlt's normalize counts are off for some file formats (csv).
    summary.rows = {table: n for table, n in report.rows.items() if n}
    summary.arrow_rows = dict(report.arrow_rows)
    summary.requests, summary.retries = report.requests, report.retries
    summary.failures = dict(report.failures)
    summary.not_served = dict(report.not_served)
    after = _columns(pipeline)
    summary.drift = _drift(pipeline, info, before)
    tables = {name.split(".")[0] for name in before}
    summary.new_columns = sorted(c for c in after - before
                                 if "__v_" not in c and c.split(".")[0] in tables)
    summary.seconds = time.monotonic() - started
    if summary.failures:
        raise PartialLoad(summary)
    return summary


def _finish_pending(pipeline: dlt.Pipeline) -> tuple[list[str], list[str]]:
    """Load the packages an interrupted run left: (loaded, dropped). dlt drops them, and the
    state they carry, when the run was killed before its first load created the dataset; the
    extract that follows then loads everything again."""
    if not pipeline.has_pending_data:
        return [], []
    _drop_committed_extracts(pipeline)
    pending = sorted({*pipeline.list_extracted_load_packages(),
                      *pipeline.list_normalized_load_packages()})
    finished = pipeline.run()  # normalizes and loads what is pending, extracts nothing
    loaded = list(finished.loads_ids) if finished else []
    return loaded, [load_id for load_id in pending if load_id not in loaded]


def _drop_committed_extracts(pipeline: dlt.Pipeline) -> None:
    """dlt's normalize moves a package to the load folder, then deletes its extracted copy: a
    kill between the two leaves the package in both, and normalizing the copy again fails on
    every later run (the load folder already has it). The moved package holds everything the
    copy did, so the copy goes, as normalize would have deleted it."""
    moved = {*pipeline.list_normalized_load_packages(), *pipeline.list_completed_load_packages()}
    for load_id in set(pipeline.list_extracted_load_packages()) & moved:
        shutil.rmtree(Path(pipeline.working_dir) / "normalize" / "extracted" / load_id)


def drop_staging(pipeline: dlt.Pipeline) -> None:
    """Drop dlt's merge staging schema once every package is loaded: it only holds copies of
    rows already merged. A package still pending (a failed or killed load) may have staged
    rows that its merge has yet to read, so then it stays."""
    if pipeline.has_pending_data or not pipeline.default_schema_name:
        return
    with pipeline.sql_client() as client, client.with_staging_dataset():
        if client.has_dataset():
            client.drop_dataset()


def arrow_with_dlt_ids() -> None:
    """Arrow pages get dlt's load id and row id, as rows do (a table that receives both kinds
    would break its NOT NULL columns otherwise): set for the runs of this process, which are
    the wallet pipelines; an environment variable for either still wins."""
    for key in ("add_dlt_load_id", "add_dlt_id"):
        env = f"NORMALIZE__PARQUET_NORMALIZER__{key.upper()}"
        if env not in os.environ:
            dlt.config[f"normalize.parquet_normalizer.{key}"] = True


def _columns(pipeline: dlt.Pipeline) -> set[str]:
    """`table.column` for every data column dlt's schema holds (its own `_dlt_*` aside)."""
    if not pipeline.default_schema_name:
        return set()
    schema = pipeline.default_schema
    return {f"{table}.{column}" for table in schema.data_table_names()
            for column in schema.get_table_columns(table) if not column.startswith("_dlt_")}


def _drift(pipeline: dlt.Pipeline, info: LoadInfo, before: set[str]) -> list[str]:
    """Type drift in this run's loads: per variant column (a value arrived with another type
    than its column's, and dlt kept it beside the column, the column NULL, rather than lose or
    coerce it), the rows this run loaded with such a value. Counted in the destination, so
    every run that receives drifted values says so, not only the one that created the column."""
    variants: dict[str, list[str]] = {}
    for name in sorted(_columns(pipeline)):
        if "__v_" in name:
            table, column = name.split(".", 1)
            variants.setdefault(table, []).append(column)
    if not variants or not info.loads_ids:
        return []
    loads = ", ".join(f"'{load_id}'" for load_id in info.loads_ids)
    found: list[str] = []
    with pipeline.sql_client() as client:
        for table, columns in variants.items():
            counts = ", ".join(f"sum(CASE WHEN {client.escape_column_name(column)} IS NOT NULL "
                               "THEN 1 ELSE 0 END)" for column in columns)
            rows = client.execute_sql(
                f"SELECT {counts} FROM {client.make_qualified_table_name(table)} "
                f"WHERE _dlt_load_id IN ({loads})") or []
            for column, count in zip(columns, rows[0] if rows else (), strict=False):
                name = f"{table}.{column}"
                if count or name not in before:
                    found.append(f"{name}: {int(count or 0)} rows loaded with a value of "
                                 f"another type, kept there ({column.split('__v_')[0]} NULL)")
    return found
