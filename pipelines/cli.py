"""`wallet-elt`: run, demo, resources, sandbox."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import duckdb
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines.pipeline import (
    DEFAULT_DUCKDB_FILE,
    PartialLoad,
    RunSummary,
    make_pipeline,
    run,
)
from sources.wallet.catalog import ENTRIES
from sources.wallet.client import WalletError

DEMO_QUERY = """SELECT date_trunc('month', created_at) AS month, count(*) AS members
FROM wallet_data.members GROUP BY 1 ORDER BY 1 DESC LIMIT 6;"""
# What the `sandbox` extra installs (pyproject.toml): the sandbox needs it, loading does not.
SANDBOX_REQUIRES = ("numpy",)


def _csv(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _failure_message(err: BaseException) -> str:
    """The operator-facing cause of a failed run (dlt wraps it a few levels deep)."""
    seen = err
    while seen is not None:
        if isinstance(seen, WalletError):
            return str(seen)
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _print_summary(summary: RunSummary) -> None:
    for line in summary.lines():
        print(line)


def _sandbox_extra_missing(command: str) -> bool:
    """Says in one line which extra to install when the sandbox's dependencies are absent."""
    missing = [name for name in SANDBOX_REQUIRES if importlib.util.find_spec(name) is None]
    if missing:
        print(f"wallet-elt {command}: the sandbox needs the `sandbox` extra ({', '.join(missing)} "
              "is not installed): pip install 'wallet-elt[sandbox]'", file=sys.stderr)
    return bool(missing)


def cmd_run(args: argparse.Namespace) -> int:
    pipeline = make_pipeline(args.destination, args.dataset_name, progress=True,
                             export_schema_path=args.export_schema,
                             pipelines_dir=args.pipelines_dir)
    if args.full_refresh:
        pipeline.drop()
    source_args = {
        "resources": _csv(args.resources),
        "backfill_start": args.start_date,
        "backfill_end": args.end_date,
    }
    if args.base_url:
        source_args["base_url"] = args.base_url
    print(f"loading the Wallet account into {args.destination} "
          f"(dataset {pipeline.dataset_name}) ...", flush=True)
    try:
        summary = run(pipeline, **{k: v for k, v in source_args.items() if v is not None})
    except PartialLoad as err:
        _print_summary(err.summary)
        print(f"wallet-elt: {err}", file=sys.stderr)
        return 1
    except (PipelineStepFailed, WalletError) as err:
        print(f"wallet-elt: the run failed: {_failure_message(err)}", file=sys.stderr)
        print("Cursors did not move; rerun when the cause is fixed.", file=sys.stderr)
        return 1
    _print_summary(summary)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if _sandbox_extra_missing("demo"):
        return 2
    from sandbox.server import Sandbox
    from sandbox.world import World, iso

    world = World(seed=args.seed, scale=args.scale)
    sandbox = Sandbox(world)
    url = sandbox.start()
    print(f"sandbox (simulated Wallet API, {world.total_records()} records) at {url}",
          flush=True)
    database = Path(args.duckdb).resolve()
    work = tempfile.mkdtemp(prefix="wallet-elt-demo-")
    pipeline = make_pipeline("duckdb", duckdb_path=str(database), pipelines_dir=work)
    try:
        summary = run(pipeline, api_key=sandbox.api_key, base_url=url,
                      start_date=iso(world.now - world.history_days * 86400))
    except (PipelineStepFailed, WalletError) as err:
        print(f"wallet-elt: the demo failed: {_failure_message(err)}", file=sys.stderr)
        return 1
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
        print(f"{item['name']:<60} {item['route']:<75} {item['strategy']:<10} "
              f"{item['cursor'] or '-':<10} {item['write_disposition']}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from pipelines import schema_files

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
    from sandbox.faults import Fault, FaultPlan
    from sandbox.server import DEFAULT_API_KEY, Sandbox
    from sandbox.world import World

    world = World(seed=args.seed, scale=args.scale, history_days=args.history_days)
    plan = FaultPlan(args.seed, [Fault.parse(text) for text in args.faults or []],
                     rate_limit=args.rate_limit, latency_ms=args.latency_ms)
    sandbox = Sandbox(world, api_key=args.api_key or DEFAULT_API_KEY, faults=plan)
    sandbox.start(args.port)
    print(f"Wallet API sandbox at {sandbox.base_url} ({world.total_records()} records, seed "
          f"{args.seed})\naccess-token: {sandbox.api_key}\nPoint the connector at it:\n"
          f"  SOURCES__WALLET__BASE_URL={sandbox.base_url} WALLET_API_KEY={sandbox.api_key} "
          "wallet-elt run", flush=True)
    try:
        sandbox.serve_forever(args.port)
    except KeyboardInterrupt:
        sandbox.stop()
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="wallet-elt", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    run_p = commands.add_parser("run", help="load the configured Wallet account")
    run_p.add_argument("--destination", default="duckdb",
                       choices=["duckdb", "postgres", "bigquery"])
    run_p.add_argument("--dataset-name")
    run_p.add_argument("--resources", help="comma-separated resource names (default: all)")
    run_p.add_argument("--start-date", help="bounded backfill start (leaves cursors alone)")
    run_p.add_argument("--end-date", help="bounded backfill end")
    run_p.add_argument("--base-url", help="API base URL (default from config)")
    run_p.add_argument("--pipelines-dir", metavar="DIR",
                       help="where dlt keeps the pipeline's state and packages "
                            "(default ~/.dlt/pipelines)")
    run_p.add_argument("--export-schema", metavar="DIR",
                       help="write the schema dlt ended up with here (e.g. schemas/export)")
    run_p.add_argument("--full-refresh", action="store_true",
                       help="drop the pipeline's state and tables first")
    run_p.set_defaults(func=cmd_run)

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
    box.set_defaults(func=cmd_sandbox)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
