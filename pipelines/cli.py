"""`wallet-elt`: run, check, demo, resources, schema, sandbox. Exit codes: 0 loaded (routes
the API no longer serves aside), 1 the run failed (in part or whole; rerun), 2 a setting is
wrong (one line says which; see pipelines/errors.py)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import dlt
import duckdb
from dlt.common.pipeline import TRefreshMode

from wallet_elt.pipelines.errors import MISCONFIGURED, RUN_FAILED, ConfigError, explain, redact
from wallet_elt.pipelines.check import SLOW_SECONDS
from wallet_elt.pipelines.pipeline import (
    DEFAULT_DUCKDB_FILE,
    PartialLoad,
    RunSummary,
    friendly_key,
    make_pipeline,
    run,
)
from wallet_elt.pipelines.run_settings import (
    DESTINATIONS,
    check_date,
    check_destination,
    check_resources,
    check_span,
    pipeline_name,
)
from wallet_elt.sources.wallet import select_entries
from wallet_elt.sources.wallet.catalog import ENTRIES
from wallet_elt.sources.wallet.client import (
    DEFAULT_BASE_URL,
    RequestBudget,
    RetryPolicy,
    WalletClient,
)

DEMO_QUERY = """SELECT date_trunc('month', created_at) AS month, count(*) AS members
FROM wallet_data.members GROUP BY 1 ORDER BY 1 DESC LIMIT 6;"""
# What the `sandbox` extra installs (pyproject.toml): the sandbox needs it, loading does not.
SANDBOX_REQUIRES = ("numpy",)


def _csv(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _print_summary(summary: RunSummary) -> None:
    for line in summary.lines():
        print(line)


def _where_it_went(pipeline: dlt.Pipeline, summary: RunSummary,
                   database: Path | None) -> None:
    """Where the rows are and one query to try on them: the next thing a user wants."""
    dataset = pipeline.dataset_name
    destination = pipeline.destination.destination_name if pipeline.destination else "duckdb"
    table = "members" if "members" in summary.rows else max(
        summary.rows, key=summary.rows.__getitem__, default=None)
    place = f" ({database})" if database else ""
    print(f"Data is in {destination}{place}, dataset {dataset}; pipeline "
          f"'{pipeline.pipeline_name}' (dlt pipeline {pipeline.pipeline_name} info).")
    if table is None:
        return
    sql = f"SELECT count(*) FROM {dataset}.{table}"
    if database:
        print(f"Try: python3 -c \"import duckdb; print(duckdb.connect('{database}', "
              f"read_only=True).sql('{sql}'))\"")
    else:
        print(f"Try: {sql};")


def _sandbox_extra_missing(command: str) -> bool:
    """Says in one line which extra to install when the sandbox's dependencies are absent."""
    missing = [name for name in SANDBOX_REQUIRES if importlib.util.find_spec(name) is None]
    if missing:
        print(f"wallet-elt {command}: the sandbox needs the `sandbox` extra ({', '.join(missing)} "
              "is not installed): pip install 'wallet-elt[sandbox]'", file=sys.stderr)
    return bool(missing)


def cmd_run(args: argparse.Namespace) -> int:
    destination = check_destination(args.destination)
    check_resources(_csv(args.resources))
    check_span(args.start_date, args.end_date)
    check_date("sources.wallet.start_date", dlt.config.get("sources.wallet.start_date", str))
    name = pipeline_name(args.pipeline_name)
    database = Path.cwd() / DEFAULT_DUCKDB_FILE if destination == "duckdb" else None
    pipeline = make_pipeline(destination, args.dataset_name, progress=True,
                             export_schema_path=args.export_schema,
                             pipelines_dir=args.pipelines_dir, pipeline_name=name,
                             duckdb_path=str(database) if database else None)
    source_args = {
        "resources": _csv(args.resources),
        "backfill_start": args.start_date,
        "backfill_end": args.end_date,
    }
    if args.base_url:
        source_args["base_url"] = args.base_url
    refresh: TRefreshMode | None = "drop_resources" if args.full_refresh else None
    print(f"loading the Wallet account into {destination} (dataset {pipeline.dataset_name}"
          f"{', full refresh' if refresh else ''}) ...", flush=True)
    try:
        summary = run(pipeline, refresh=refresh,
                      **{k: v for k, v in source_args.items() if v is not None})
    except PartialLoad as err:
        return _partial(err)
    _print_summary(summary)
    _where_it_went(pipeline, summary, database)
    return 0


def _partial(err: PartialLoad) -> int:
    """What loaded, then which resources did not and why (the others' cursors moved)."""
    _print_summary(err.summary)
    print(f"wallet-elt: {redact(str(err))}", file=sys.stderr)
    return RUN_FAILED


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when the key works (whatever the routes say), 2 when it does not."""
    from wallet_elt.pipelines.check import Prober, table, tally

    check_resources(_csv(args.resources))
    config = dlt.config
    with friendly_key():
        api_key = dlt.secrets.get("sources.wallet.api_key", str) or ""
    client = WalletClient(
        args.base_url or config.get("sources.wallet.base_url", str) or DEFAULT_BASE_URL,
        api_key,
        timeout=config.get("sources.wallet.request_timeout", float) or 60.0,
        budget=RequestBudget(config.get("sources.wallet.requests_per_second", float) or 0.0,
                             args.workers),
        retry=RetryPolicy(max_attempts=config.get("sources.wallet.max_attempts", int) or 6))
    try:
        prober = Prober(client, timezone=config.get("sources.wallet.timezone", str) or "UTC",
                        locale=config.get("sources.wallet.locale", str) or "en-US",
                        slow_seconds=args.slow_seconds)
        prober.key_works()
        probes = prober.probe_all(select_entries(_csv(args.resources)), args.workers)
    finally:
        client.close()
    counts = tally(probes)
    if args.json:
        print(json.dumps({"base_url": client.base_url, "key": "works",
                          "requests": client.requests_made, "verdicts": counts,
                          "routes": [probe.as_dict() for probe in probes]}, indent=2))
        return 0
    for line in table(probes):
        print(line)
    print(f"the key works at {client.base_url}; {len(probes)} routes: "
          f"{', '.join(f'{n} {verdict}' for verdict, n in sorted(counts.items()))}; "
          f"{client.requests_made} requests")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if _sandbox_extra_missing("demo"):
        return 2
    from wallet_elt.sandbox.server import Sandbox
    from wallet_elt.sandbox.world import World, iso

    world = World(seed=args.seed, scale=args.scale)
    sandbox = Sandbox(world)
    url = sandbox.start()
    print(f"sandbox (simulated Wallet API, {world.total_records()} records) at {url}",
          flush=True)
    database = Path(args.duckdb).resolve()
    work = tempfile.mkdtemp(prefix="wallet-elt-demo-")
    pipeline = make_pipeline("duckdb", duckdb_path=str(database), pipelines_dir=work,
                             progress=True)
    try:
        summary = run(pipeline, api_key=sandbox.api_key, base_url=url,
                      start_date=iso(world.now - world.history_days * 86400))
    except PartialLoad as err:
        return _partial(err)
    finally:
        sandbox.stop()
    _print_summary(summary)
    print(f"\nLoaded into {database}. An example query:\n{DEMO_QUERY}")
    with duckdb.connect(str(database), read_only=True) as con:
        for month, members in con.sql(DEMO_QUERY).fetchall():
            print(f"  {month:%Y-%m}  {members}")
    print(f"Query it yourself: python -c \"import duckdb; "
          f"print(duckdb.connect('{database.name}').sql('SHOW ALL TABLES'))\"")
    return 0


def cmd_resources(args: argparse.Namespace) -> int:
    described = [entry.describe() for entry in ENTRIES]
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    for item in described:
        family = item["family"] or "-"
        print(f"{item['name']:<60} {item['route']:<75} {item['strategy']:<10} "
              f"{item['cursor'] or '-':<10} {item['write_disposition']:<8} "
              f"{family}{' (canonical)' if item['canonical'] else ''}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from wallet_elt.pipelines import schema_files

    if not schema_files.README.is_file():
        print("wallet-elt: `schema` regenerates files of the source repository; run it from a "
              "checkout of wallet-elt", file=sys.stderr)
        return 2
    if args.write:
        for path in schema_files.write_all():
            print(f"wrote {path.relative_to(schema_files.ROOT)}")
        return 0
    stale = schema_files.stale_files()
    for path in stale:
        print(f"out of date: {path.relative_to(schema_files.ROOT)} "
              "(run `wallet-elt schema --write`)")
    return 1 if stale else 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    if _sandbox_extra_missing("sandbox"):
        return 2
    from wallet_elt.sandbox.faults import Fault, FaultPlan
    from wallet_elt.sandbox.server import DEFAULT_API_KEY, Sandbox
    from wallet_elt.sandbox.world import World

    world = World(seed=args.seed, scale=args.scale, history_days=args.history_days)
    plan = FaultPlan(args.seed, [Fault.parse(text) for text in args.faults or []],
                     rate_limit=args.rate_limit, latency_ms=args.latency_ms,
                     removed=args.removed or [], removed_status=args.removed_status)
    sandbox = Sandbox(world, api_key=args.api_key or DEFAULT_API_KEY, faults=plan)
    try:
        sandbox.start(args.port)
    except OSError as err:
        raise ConfigError(f"cannot serve on port {args.port} ({err.strerror}): choose another "
                          "with --port (0 picks a free one)") from None
    print(f"Wallet API sandbox at {sandbox.base_url} ({world.total_records()} records, seed "
          f"{args.seed})\naccess-token: {sandbox.api_key}\nPoint the connector at it:\n"
          f"  SOURCES__WALLET__BASE_URL={sandbox.base_url} WALLET_API_KEY={sandbox.api_key} "
          "wallet-elt run", flush=True)
    try:
        threading.Event().wait()  # start() serves from its own thread; wait for Ctrl-C
    except KeyboardInterrupt:
        sandbox.stop()
    return 0


def parser() -> argparse.ArgumentParser:
    root = OneLineErrors(prog="wallet-elt", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    run_p = commands.add_parser("run", help="load the configured Wallet account")
    run_p.add_argument("--destination", default="duckdb", help=" | ".join(DESTINATIONS))
    run_p.add_argument("--dataset-name")
    run_p.add_argument("--resources", help="comma-separated resource names (default: all)")
    run_p.add_argument("--start-date", help="bounded backfill start (leaves cursors alone)")
    run_p.add_argument("--end-date", help="bounded backfill end")
    run_p.add_argument("--base-url", help="API base URL (default from config)")
    run_p.add_argument("--pipeline-name", metavar="NAME",
                       help="state, packages and run lock are kept per name (default: "
                            "pipeline_name from config, else wallet)")
    run_p.add_argument("--pipelines-dir", metavar="DIR",
                       help="where dlt keeps the pipeline's state and packages "
                            "(default ~/.dlt/pipelines)")
    run_p.add_argument("--export-schema", metavar="DIR",
                       help="write the schema dlt ended up with here (e.g. schemas/export)")
    run_p.add_argument("--full-refresh", action="store_true",
                       help="drop the selected resources' tables and cursors, then load "
                            "them from scratch (waits for no one: refuses while a run is on)")
    run_p.set_defaults(func=cmd_run)

    chk = commands.add_parser("check", help="does the key work, and which routes does the "
                              "account serve (one cheap request per route)")
    chk.add_argument("--base-url", help="API base URL (default from config)")
    chk.add_argument("--resources", help="comma-separated resource names (default: all)")
    chk.add_argument("--slow-seconds", type=float, default=SLOW_SECONDS,
                     help=f"a route slower than this is 'slow' (default {SLOW_SECONDS:g})")
    chk.add_argument("--workers", type=int, default=8, help="requests at once (default 8)")
    chk.add_argument("--json", action="store_true")
    chk.set_defaults(func=cmd_check)

    demo = commands.add_parser("demo", help="load the local sandbox into DuckDB")
    demo.add_argument("--scale", type=int, default=20_000)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--duckdb", default=DEFAULT_DUCKDB_FILE.replace(".duckdb", "_demo.duckdb"))
    demo.set_defaults(func=cmd_demo)

    res = commands.add_parser("resources", help="list every resource")
    res.add_argument("--json", action="store_true")
    res.set_defaults(func=cmd_resources)

    sch = commands.add_parser("schema", help="check (or --write) the files generated from the "
                              "catalog: import schema, data dictionary, README table")
    sch.add_argument("--write", action="store_true")
    sch.set_defaults(func=cmd_schema)

    box = commands.add_parser("sandbox", help="serve the simulated Wallet API")
    box.add_argument("--port", type=int, default=8765)
    box.add_argument("--scale", type=int, default=10_000)
    box.add_argument("--seed", type=int, default=1)
    box.add_argument("--history-days", type=int, default=730)
    box.add_argument("--api-key", help="the key it accepts (default: its own, printed at start)")
    box.add_argument("--latency-ms", type=float, default=0.0)
    box.add_argument("--rate-limit", type=float, default=0.0, help="requests per second")
    box.add_argument("--faults", action="append",
                     help="kind[,route=GLOB][,p=P][,after=N][,times=N][,value=X]; repeatable")
    box.add_argument("--removed", action="append", metavar="GLOB",
                     help="routes that answer 404 as no longer served, e.g. "
                          "'/v2/dashboard/*'; repeatable")
    box.add_argument("--removed-status", type=int, choices=(404, 410), default=404,
                     help="what --removed routes answer (default 404)")
    box.set_defaults(func=cmd_sandbox)
    return root


class OneLineErrors(argparse.ArgumentParser):
    """A mistyped command line ends with one line that says what to fix (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(MISCONFIGURED, f"{self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # The reader stopped reading (`| head`): not a failure; keep Python's flush at exit
        # from raising again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:
        verdict = explain(err)
        if verdict is None:
            raise  # a bug: its traceback is what a report needs
        code, line = verdict
        if code == RUN_FAILED:
            line = f"the run failed: {line}. Cursors did not move; rerun when it is fixed."
        print(f"wallet-elt: {line}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
