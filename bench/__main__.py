"""The connector's benchmark: one figure per line as `name: value`, all measured in one run.

    python -m bench            # full: throughput at world scale 200k, memory at 100k and 1M
    python -m bench --quick    # ~80 s here: scale 20k, memory at 20k and 200k

The sandbox runs in a child process (bench.serve) so serving does not share the pipeline's
GIL; each memory figure comes from a child process of its own (bench.memrun). See
bench/RESULTS.md for the figures, the machine and what each one means.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from typing import Any

import orjson
import pendulum

from bench.common import (
    LATENCY_SUBSET,
    ROOT,
    SUBSET,
    SUBSET_ENTITIES,
    Server,
    duckdb_pipeline,
    sandbox_process,
    served_ok,
    served_status,
    temp_dir,
)

PG_URL = "postgresql://postgres:x@127.0.0.1:5432/test"
LATENCY_MS = 100.0
RATE_LIMIT = 20.0
MAX_CONCURRENCY = 8


def emit(name: str, value: Any) -> None:
    if isinstance(value, float):
        value = f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    print(f"{name}: {value}", flush=True)


def phase_seconds(pipeline: Any) -> dict[str, float]:
    out = {}
    for step in pipeline.last_trace.steps:
        if step.step in ("extract", "normalize", "load") and step.finished_at:
            out[step.step] = (step.finished_at - step.started_at).total_seconds()
    return out


def connector_load(server: Server, pipeline: Any, resources: tuple[str, ...],
                   **extra: Any) -> Any:
    from wallet_elt.pipelines.pipeline import run

    return run(pipeline, **server.source_args(resources, **extra))


# 1, 2, 4, 6 -------------------------------------------------------------------------------
def throughput_section(scale: int) -> None:
    from bench.replay import replay

    with sandbox_process(scale) as server, temp_dir("tp") as tmp:
        emit("world_scale", scale)
        # 1. connector full load vs fetch-only replay of the same requests
        server.reset()
        pipeline = duckdb_pipeline(tmp)
        summary = connector_load(server, pipeline, SUBSET)
        full_stats = server.stats()
        log = server.requests_log()
        rows = sum(summary.rows.values())
        emit("connector_rows", rows)
        emit("connector_requests", summary.requests)
        emit("connector_requests_answered_200", served_ok(full_stats))
        emit("connector_seconds", summary.seconds)
        for step, seconds in phase_seconds(pipeline).items():
            emit(f"connector_{step}_seconds", seconds)
        emit("connector_rows_per_s", rows / summary.seconds)
        emit("connector_rows_as_arrow", sum(summary.arrow_rows.values()))
        # The Arrow lever, measured: the same load with every page going as rows.
        with temp_dir("rows") as rows_tmp:
            as_rows = duckdb_pipeline(rows_tmp)
            plain = connector_load(server, as_rows, SUBSET, arrow=False)
            emit("rows_path_seconds", plain.seconds)
            for step, seconds in phase_seconds(as_rows).items():
                emit(f"rows_path_{step}_seconds", seconds)
            emit("rows_path_over_arrow_seconds", plain.seconds / summary.seconds)
        records, sequential = replay(server.base_url, server.api_key, log)
        _, concurrent = replay(server.base_url, server.api_key, log, workers=MAX_CONCURRENCY)
        emit("fetch_only_requests", len(log))
        emit("fetch_only_records_decoded", records)  # parents are fetched twice, see README
        emit("fetch_only_sequential_seconds", sequential)
        emit(f"fetch_only_{MAX_CONCURRENCY}_threads_seconds", concurrent)
        fetch_seconds = min(sequential, concurrent)  # the limit is the faster of the two
        emit("fetch_only_seconds", fetch_seconds)
        # The limit: the connector's rows, had they cost only their requests.
        emit("fetch_only_rows_per_s", rows / fetch_seconds)
        emit("connector_over_fetch_only_throughput", fetch_seconds / summary.seconds)

        # 2. the plain rest_api baseline, same subset, same sandbox
        # (in a process of its own: insert_values takes GBs, which would otherwise stay in
        # this process's heap for the rest of the run)
        server.reset()
        end = pendulum.now("UTC").add(days=1).to_iso8601_string()
        out = subprocess.run([sys.executable, "-m", "bench.baseline", server.base_url,
                              server.api_key, server.start_date, end],
                             cwd=ROOT, check=True, capture_output=True)
        base = orjson.loads(out.stdout.strip().splitlines()[-1])
        emit("baseline_rows", base["rows"])
        emit("baseline_requests", served_ok(server.stats()))
        emit("baseline_seconds", base["seconds"])
        emit("baseline_rows_per_s", base["rows"] / base["seconds"])
        emit("baseline_peak_rss_mb", base["peak_rss_mb"])
        emit("connector_seconds_over_baseline_seconds", summary.seconds / base["seconds"])
        emit("baseline_seconds_over_connector_seconds", base["seconds"] / summary.seconds)

        # 6. the same load into Postgres, when one answers
        guarded("postgres", postgres_section, server)

        # 4. incremental: 1% of each subset entity created and 1% updated, then a rerun
        changed = server.advance_subset(SUBSET_ENTITIES, 0.01)
        emit("incremental_changed_records",
             sum(c["created"] + c["updated"] for c in changed["changed"].values()))
        server.reset()
        again = connector_load(server, pipeline, SUBSET)
        emit("incremental_rows", sum(again.rows.values()))
        emit("incremental_requests", again.requests)
        emit("incremental_seconds", again.seconds)
        emit("incremental_over_full_requests", again.requests / summary.requests)
        # Its strategies' minimum: every distinct request it made (each reads a page or a
        # window no other request covers; the cursor lists have no server-side change filter,
        # so all their pages are in it). Repeats are what it spent beyond that.
        distinct = len({(method, path, orjson.dumps(body)) for method, path, body
                        in server.requests_log()})
        emit("incremental_distinct_requests", distinct)
        emit("incremental_over_minimum_requests", again.requests / distinct)
        emit("incremental_over_full_seconds", again.seconds / summary.seconds)


def guarded(name: str, section: Any, *args: Any) -> None:
    """Run a section; a failure is a figure (`name_error: ...`), not the end of the run."""
    try:
        section(*args)
    except Exception as err:  # noqa: BLE001 (reported, the other sections still run)
        while err.__cause__ is not None and isinstance(err.__cause__, Exception):
            err = err.__cause__  # the innermost cause names the problem
        message = " ".join(str(err).split())
        emit(f"{name}_error", f"{type(err).__name__}: {message[:300]}")


def postgres_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
        return True
    except OSError:
        return False


def postgres_section(server: Server) -> None:
    if not postgres_reachable():
        emit("postgres", "skipped (127.0.0.1:5432 not reachable)")
        return
    import psycopg2

    from wallet_elt.pipelines.pipeline import make_pipeline

    os.environ["DESTINATION__POSTGRES__CREDENTIALS"] = PG_URL
    dataset = f"wallet_bench_{os.getpid()}_{int(time.time())}"
    try:
        with temp_dir("pg") as tmp:
            server.reset()
            pipeline = make_pipeline("postgres", dataset_name=dataset,
                                     pipelines_dir=str(tmp / "pipelines"))
            summary = connector_load(server, pipeline, SUBSET)
            # Counted in the tables: RunSummary.rows (dlt's normalize row counts) is inflated
            # ~20-40x for the csv load format.
            rows = postgres_rows(dataset, list(summary.rows))
            emit("postgres_rows", rows)
            emit("postgres_runsummary_rows", sum(summary.rows.values()))
            emit("postgres_seconds", summary.seconds)
            for step, seconds in phase_seconds(pipeline).items():
                emit(f"postgres_{step}_seconds", seconds)
            emit("postgres_rows_per_s", rows / summary.seconds)
    finally:
        with psycopg2.connect(PG_URL) as conn, conn.cursor() as cur:
            for name in (dataset, f"{dataset}_staging"):
                cur.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        conn.close()


def postgres_rows(dataset: str, tables: list[str]) -> int:
    import psycopg2

    with psycopg2.connect(PG_URL) as conn, conn.cursor() as cur:
        total = 0
        for table in tables:
            cur.execute(f'SELECT count(*) FROM "{dataset}"."{table}"')
            total += cur.fetchone()[0]
    conn.close()
    return total


# 3 ----------------------------------------------------------------------------------------
def latency_section(scale: int) -> None:
    with sandbox_process(scale, latency_ms=LATENCY_MS, rate_limit=RATE_LIMIT) as server, \
            temp_dir("lat") as tmp:
        server.reset()
        pipeline = duckdb_pipeline(tmp)
        summary = connector_load(server, pipeline, LATENCY_SUBSET,
                                 requests_per_second=RATE_LIMIT,
                                 max_concurrency=MAX_CONCURRENCY)
        stats = server.stats()
        ok = served_ok(stats)
        ideal = ok / RATE_LIMIT
        phases = phase_seconds(pipeline)
        emit("latency_scale", scale)
        emit("latency_requests", ok)
        emit("latency_429s", served_status(stats, "429"))
        emit("latency_ideal_seconds", ideal)
        emit("latency_actual_seconds", summary.seconds)
        emit("latency_extract_seconds", phases.get("extract", 0.0))
        emit("latency_efficiency", ideal / summary.seconds)
        if phases.get("extract"):
            emit("latency_efficiency_extract_only", ideal / phases["extract"])


# 5 ----------------------------------------------------------------------------------------
def memory_run(scale: int, incremental: bool = False) -> dict[str, Any]:
    with sandbox_process(scale) as server:
        out = subprocess.run(
            [sys.executable, "-m", "bench.memrun", *(["--incremental"] if incremental else []),
             server.base_url, server.api_key, server.start_date, *SUBSET],
            cwd=ROOT, check=True, capture_output=True)
    return orjson.loads(out.stdout.strip().splitlines()[-1])


def memory_section(small: int, large: int) -> None:
    results = {}
    for scale in (small, large):
        # 4 again at the large scale: a large merchant's scheduled run against its backfill
        # (the peak RSS is the full load's, measured before the incremental run).
        result = memory_run(scale, incremental=scale == large)
        results[scale] = result
        emit(f"memory_scale_{scale}_rows", result["rows"])
        emit(f"memory_scale_{scale}_seconds", result["seconds"])
        emit(f"memory_scale_{scale}_peak_rss_mb", result["peak_rss_mb"])
    big = results[large]
    emit(f"incremental_at_{large}_rows", big["incremental_rows"])
    emit(f"incremental_at_{large}_requests", big["incremental_requests"])
    emit(f"incremental_at_{large}_seconds", big["incremental_seconds"])
    emit(f"incremental_at_{large}_over_full_requests",
         big["incremental_requests"] / big["requests"])
    emit(f"incremental_at_{large}_over_full_seconds",
         big["incremental_seconds"] / big["seconds"])
    emit("memory_large_over_small_rss",
         results[large]["peak_rss_mb"] / results[small]["peak_rss_mb"])
    emit("memory_large_over_small_rows", results[large]["rows"] / results[small]["rows"])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small scales, about a minute")
    parser.add_argument("--only", choices=("throughput", "latency", "memory"),
                        help="run one section (development)")
    parser.add_argument("--scale", type=int, help="override the throughput world scale")
    args = parser.parse_args()
    scale = args.scale or (20_000 if args.quick else 200_000)
    memory_scales = (20_000, 200_000) if args.quick else (100_000, 1_000_000)
    started = time.perf_counter()
    emit("mode", "quick" if args.quick else "full")
    if args.only in (None, "throughput"):
        guarded("throughput", throughput_section, scale)
    if args.only in (None, "latency"):
        guarded("latency", latency_section, 20_000)
    if args.only in (None, "memory"):
        guarded("memory", memory_section, *memory_scales)
    emit("bench_seconds", time.perf_counter() - started)


if __name__ == "__main__":
    main()
