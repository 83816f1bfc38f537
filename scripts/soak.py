"""Soak: the connector against a sandbox whose world keeps changing and whose faults change
every cycle, for a bounded time; after every successful run the warehouse must equal the
sandbox's truth for a subset of record tables.

    python -m scripts.soak --minutes 2 --scale 5000 --seed 1

Each cycle: pick faults (5xx, resets, latency, sometimes a 429 rate limit, sometimes a route
that is down for the whole run) from a seeded RNG, advance the world (create, update and
archive records of several entities), then run the connector into DuckDB in a temp dir. A run
that raises PartialLoad is counted, and the next cycle (never given a down route) must heal it.
A final run without faults closes the soak. All traffic stays on 127.0.0.1.

Prints `name: value` lines at the end; exits 1 on any mismatch or any run that failed with
something other than PartialLoad. Not part of the test suite (tests/ only).

    python -m scripts.soak --convergence --minutes 3 --scale 5000 [--rate-limit 30]

runs issue 11 item 4's mix instead (20% 503s, 5% resets, 2% timeouts, a server rate limit
the connector is not told about) on every run, with default settings, over a subset with
fan-out children; each cycle changes the world, then runs until a run is complete (at most 3),
printing per run the rows missing, duplicated or stale against the truth.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

from wallet_elt.pipelines.pipeline import PartialLoad, RunSummary, make_pipeline, run
from wallet_elt.sandbox.faults import Fault, FaultKind, FaultPlan
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sandbox.world import World, iso, iso_many
from wallet_elt.sources.wallet.catalog import Strategy, entries_by_name
from tests.truth import FAULT_SUBSET, record_ids, routes_of

RESOURCES = FAULT_SUBSET
ENTRIES = entries_by_name()
ROUTES = routes_of(RESOURCES)
# Entities behind the subset that change every cycle; parents only now and then.
BUSY = ["members", "outbound_sms", "ledger_entries", "tickets"]
PARENTS = ["phone_numbers", "performances"]
OUTAGE_ONE_IN = 5  # about one cycle in five has a route down for the whole run


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def choose_faults(rng: random.Random, outage: bool) -> tuple[FaultPlan, str]:
    """This cycle's fault plan (its draws seeded from rng) and a short description."""
    faults = [Fault(kind, probability=rng.uniform(0.0, 0.04))
              for kind in (FaultKind.ERROR_500, FaultKind.ERROR_502, FaultKind.ERROR_503,
                           FaultKind.RESET)]
    faults.append(Fault(FaultKind.LATENCY, probability=rng.uniform(0.0, 0.3),
                        value=rng.uniform(5, 40)))
    rate_limit = rng.uniform(30, 80) if rng.random() < 0.35 else 0.0
    latency_ms = rng.choice([0.0, 0.0, 1.0, 3.0])
    parts = [f"{f.kind}@{f.probability:.3f}" for f in faults]
    if outage:
        route = rng.choice(ROUTES)
        faults.append(Fault(FaultKind.ERROR_503, route=route))
        parts.append(f"down={route}")
    if rate_limit:
        parts.append(f"rate_limit={rate_limit:.0f}/s")
    if latency_ms:
        parts.append(f"latency={latency_ms:.0f}ms")
    return FaultPlan(rng.getrandbits(32), faults, rate_limit, latency_ms), " ".join(parts)


def advance(box: Sandbox, rng: random.Random) -> str:
    """Move the world on, never past the wall clock (the connector's windows end at now)."""
    world = box.world
    room = (time.time() - 120 - world.now) / 60
    minutes = max(0.0, min(float(rng.randint(1, 30)), room))
    create, update, archive = rng.randint(0, 25), rng.randint(0, 25), rng.randint(0, 5)
    world.advance(minutes=minutes, create=create, update=update, archive=archive,
                  entities=BUSY)
    text = f"+{minutes:.0f} min, {create} new, {update} updated, {archive} archived"
    if rng.random() < 0.25:
        world.advance(minutes=0, create=1, update=1, entities=PARENTS)
        text += ", new parents"
    return text


def injected_so_far(box: Sandbox) -> int:
    """Answers that were not a 200: 5xx, 429, and resets (status 0)."""
    routes = box.stats()["routes"].values()
    return sum(n for route in routes for status, n in route.items() if status != "200")


def _stamp(value: Any) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


KINDS = ("missing", "duplicated", "extra", "stale")


def differences(box: Sandbox, pipeline: Any,
                resources: list[str] = RESOURCES) -> dict[str, dict[str, int]]:
    """Per table, the rows that differ from the sandbox's truth: ids missing, ids held more
    than once, ids not in the sandbox, and rows whose updatedAt is not the sandbox's."""
    found: dict[str, dict[str, int]] = {}
    world = box.world
    schema_tables = set(pipeline.default_schema.data_table_names())
    with pipeline.sql_client() as client:
        for name in resources:
            entry = ENTRIES[name]
            expected = record_ids(box, entry)
            rows = []
            if name in schema_tables:
                rows = list(client.execute_sql(
                    f"SELECT id, updated_at FROM {pipeline.dataset_name}.{name}") or [])
            ids = {row[0] for row in rows}
            entity = world.entities[next(r for r in box.routes if r.key == entry.route).entity]
            held = [(index, updated) for record_id, updated in rows
                    if (index := world.find(entity.name, record_id)) is not None]
            # Stamped as the API serves them (whole milliseconds, truncated).
            served = iso_many(entity.updated[[index for index, _ in held]])
            stale = sum(_stamp(updated) != truth
                        for (_, updated), truth in zip(held, served, strict=True))
            found[name] = {"missing": len(expected - ids), "duplicated": len(rows) - len(ids),
                           "extra": len(ids - expected), "stale": stale}
    return found


def compare(box: Sandbox, pipeline: Any,
            resources: list[str] = RESOURCES) -> tuple[list[str], int]:
    """(mismatches, stale rows of window tables) of the warehouse against the sandbox.

    Mismatches: an id missing, extra or duplicated in any table; for client-cursor tables also
    a row whose updatedAt is not the sandbox's. Window tables only follow createdAt windows,
    so an update to a record older than the lookback is not expected to arrive: counted apart.
    """
    problems: list[str] = []
    stale_window = 0
    for name, counts in differences(box, pipeline, resources).items():
        window = ENTRIES[name].strategy is Strategy.WINDOW
        if window:
            stale_window += counts["stale"]
        problems += [f"{name}: {counts[kind]} {kind}" for kind in KINDS
                     if counts[kind] and not (window and kind == "stale")]
    return problems, stale_window


def tally(found: dict[str, dict[str, int]]) -> dict[str, int]:
    """Rows per kind of difference over all tables; stale rows of window tables (which only
    follow createdAt windows) apart, as `stale_window`."""
    totals = dict.fromkeys([*KINDS, "stale_window"], 0)
    for name, counts in found.items():
        for kind, count in counts.items():
            window = kind == "stale" and ENTRIES[name].strategy is Strategy.WINDOW
            totals["stale_window" if window else kind] += count
    return totals


# --convergence: issue 11 item 4's mix, the same in every run, against default settings.
CONVERGENCE = ["members", "member_points_histories", "phone_numbers",
               "phone_number_outbound_sms", "performance_ticket_pages"]
MAX_RUNS_TO_CONVERGE = 3


@dataclass
class Soak:
    """What every soak mode starts from: a sandbox on a loopback port, a seeded random
    source, the start and the deadline of the soak."""

    box: Sandbox
    rng: random.Random
    started: float
    deadline: float

    @classmethod
    def begin(cls, args: argparse.Namespace) -> Soak:
        box = Sandbox(World(seed=args.seed, scale=args.scale))
        box.start(host="127.0.0.1")
        started = time.monotonic()
        return cls(box, random.Random(args.seed), started, started + args.minutes * 60)

    def history_start(self) -> str:
        """The start of the world's history: the first run loads all of it."""
        world = self.box.world
        return iso(world.now - world.history_days * 86400)

    def source_args(self, resources: list[str], **extra: Any) -> dict[str, Any]:
        return {"api_key": self.box.api_key, "base_url": self.box.base_url,
                "start_date": self.history_start(), "resources": resources, **extra}


def soak_pipeline(work: Path, database: str = "soak.duckdb") -> Any:
    """The DuckDB pipeline a soak loads, in its own folder."""
    return make_pipeline("duckdb", duckdb_path=str(work / database),
                         pipelines_dir=str(work / "pipelines"))


def convergence_faults(seed: int, rate_limit: float) -> FaultPlan:
    """20% 503s, 5% resets, 2% timeouts (held 5 s, then closed) and a server rate limit."""
    return FaultPlan(seed, [Fault(FaultKind.ERROR_503, probability=0.2),
                            Fault(FaultKind.RESET, probability=0.05),
                            Fault(FaultKind.TIMEOUT, probability=0.02)], rate_limit)


def soak_convergence(args: argparse.Namespace) -> int:
    """Cycles of: change the world, then run until a run loads everything (a scheduler
    retrying at once), never changing the world in between, so that the warehouse must then
    equal the truth. Prints per run the missing/duplicated/stale rows; fails when a cycle
    needs more than MAX_RUNS_TO_CONVERGE runs or a complete run does not equal the truth."""
    soak = Soak.begin(args)
    box, rng, started, deadline = soak.box, soak.rng, soak.started, soak.deadline
    box.faults = convergence_faults(args.seed, args.rate_limit)
    # Default settings: only the subset and the start of the world's history are given.
    source_args = soak.source_args(CONVERGENCE)
    totals = {"cycles": 0, "runs": 0, "partial_runs": 0, "failed_runs": 0, "unconverged": 0,
              "mismatches": 0, "requests": 0, "answers_429": 0, "answers": 0}
    most_runs = 0
    with tempfile.TemporaryDirectory(prefix="wallet-soak-") as tmp:
        work = Path(tmp)
        pipeline = soak_pipeline(work)
        try:
            while totals["cycles"] == 0 or time.monotonic() < deadline:
                totals["cycles"] += 1
                changes = advance(box, rng) if totals["cycles"] > 1 else "first load"
                for attempt in range(1, MAX_RUNS_TO_CONVERGE + 1):
                    label = f"cycle {totals['cycles']} run {attempt}"
                    box.reset_stats()
                    run_started = time.monotonic()
                    totals["runs"] += 1
                    complete = False
                    try:
                        summary = run(pipeline, **source_args)
                        complete = True
                    except PartialLoad as partial:
                        summary = partial.summary
                        totals["partial_runs"] += 1
                    except Exception as err:  # noqa: BLE001 (a connector problem: reported)
                        totals["failed_runs"] += 1
                        log(f"{label}: FAILED {type(err).__name__}: {str(err)[:300]}")
                        break
                    statuses = list(box.stats()["routes"].values())
                    answers = sum(n for route in statuses for n in route.values())
                    throttled = sum(route.get("429", 0) for route in statuses)
                    totals["answers"] += answers
                    totals["answers_429"] += throttled
                    totals["requests"] += summary.requests
                    problems, _ = compare(box, pipeline, CONVERGENCE)
                    log(f"{label} ({changes}): {'complete' if complete else 'PARTIAL'} in "
                        f"{time.monotonic() - run_started:.1f} s, {summary.requests} requests, "
                        f"{summary.retries} retried, {throttled} of {answers} answers 429; "
                        f"{'; '.join(problems) or 'equal to truth'}"
                        + (f"; failed: {', '.join(sorted(summary.failures))}"
                           if summary.failures else ""))
                    if complete:
                        totals["mismatches"] += len(problems)
                        most_runs = max(most_runs, attempt)
                        break
                else:
                    totals["unconverged"] += 1
                    most_runs = MAX_RUNS_TO_CONVERGE + 1
        finally:
            box.stop()
    lines = {**totals, "most_runs_to_converge": most_runs,
             "share_429": f"{totals['answers_429'] / max(1, totals['answers']):.3f}",
             "seconds": f"{time.monotonic() - started:.1f}"}
    for name, value in lines.items():
        print(f"{name}: {value}")
    return 1 if totals["mismatches"] or totals["failed_runs"] or totals["unconverged"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0, help="time bound (default 2)")
    parser.add_argument("--scale", type=int, default=5000, help="world scale (default 5000)")
    parser.add_argument("--seed", type=int, default=1, help="world and fault seed (default 1)")
    parser.add_argument("--page-size", type=int, default=200, help="connector page size")
    parser.add_argument("--convergence", action="store_true",
                        help="instead: issue 11 item 4's fault mix on every run, default "
                             "settings; every cycle must converge within "
                             f"{MAX_RUNS_TO_CONVERGE} runs")
    parser.add_argument("--rate-limit", type=float, default=30.0,
                        help="server requests/s for --convergence (default 30)")
    parser.add_argument("--churn", action="store_true",
                        help="instead: records change while every run pages its lists; the "
                             "quiet run after each must load every change (issue 11 item 2)")
    parser.add_argument("--kills", action="store_true",
                        help="instead: runs SIGKILLed during their load step at varied "
                             "points; each rerun must leave no row missing or twice "
                             "(issue 11 item 3)")
    args = parser.parse_args(argv)
    if args.convergence:
        return soak_convergence(args)
    # Imported here: those modules build on this one's helpers.
    if args.churn:
        from scripts.soak_churn import soak_churn
        return soak_churn(args)
    if args.kills:
        from scripts.soak_kills import soak_kills
        return soak_kills(args)

    soak = Soak.begin(args)
    box, rng, started, deadline = soak.box, soak.rng, soak.started, soak.deadline
    totals = {"cycles": 0, "rows_loaded": 0, "requests": 0, "retries": 0, "partial_runs": 0,
              "failed_runs": 0, "mismatches": 0, "unhealed": 0, "stale_window_rows": 0}
    source_args = soak.source_args(RESOURCES, page_size=args.page_size, max_attempts=5,
                                   request_timeout=5.0)

    def account(summary: RunSummary) -> None:
        totals["rows_loaded"] += sum(summary.rows.values())
        totals["requests"] += summary.requests
        totals["retries"] += summary.retries

    def check(label: str) -> None:
        problems, stale = compare(box, pipeline)
        totals["mismatches"] += len(problems)
        totals["stale_window_rows"] = stale
        for problem in problems:
            log(f"{label}: MISMATCH {problem}")

    with tempfile.TemporaryDirectory(prefix="wallet-soak-") as tmp:
        work = Path(tmp)
        pipeline = soak_pipeline(work)
        longest = 0.0
        previous_partial = False
        try:
            # Leave room for one more cycle like the longest so far and the closing run.
            while totals["cycles"] == 0 or time.monotonic() + 2 * longest < deadline:
                cycle_started = time.monotonic()
                totals["cycles"] += 1
                label = f"cycle {totals['cycles']}"
                outage = not previous_partial and rng.randrange(OUTAGE_ONE_IN) == 0
                box.faults, faults = choose_faults(rng, outage)
                injected_before = injected_so_far(box)
                changes = advance(box, rng)
                try:
                    summary = run(pipeline, **source_args)
                except PartialLoad as partial:
                    account(partial.summary)
                    totals["partial_runs"] += 1
                    totals["unhealed"] += previous_partial
                    previous_partial = True
                    log(f"{label}: {changes}; {faults}; PARTIAL "
                        f"{', '.join(sorted(partial.summary.failures))} "
                        f"({partial.summary.retries} retried, "
                        f"{injected_so_far(box) - injected_before} faults)")
                except Exception as err:  # noqa: BLE001 (anything else is a connector problem)
                    totals["failed_runs"] += 1
                    previous_partial = True
                    log(f"{label}: {changes}; {faults}; FAILED {type(err).__name__}: "
                        f"{str(err)[:300]}")
                else:
                    account(summary)
                    previous_partial = False
                    log(f"{label}: {changes}; {faults}; {sum(summary.rows.values())} rows, "
                        f"{summary.requests} requests ({summary.retries} retried, "
                        f"{injected_so_far(box) - injected_before} faults)")
                    check(label)
                longest = max(longest, time.monotonic() - cycle_started)
            # Close with a healthy API: whatever failed last must load now.
            box.faults = FaultPlan(args.seed)
            try:
                summary = run(pipeline, **source_args)
            except Exception as err:  # noqa: BLE001 (reported and counted)
                totals["failed_runs"] += 1
                log(f"final run: FAILED {type(err).__name__}: {str(err)[:300]}")
            else:
                account(summary)
                log(f"final run: {sum(summary.rows.values())} rows, {summary.requests} requests")
                check("final run")
        finally:
            box.stop()

    injected = injected_so_far(box)
    lines = {
        "cycles": totals["cycles"],
        "rows_loaded": totals["rows_loaded"],
        "requests": totals["requests"],
        "retries": totals["retries"],
        "faults_injected": injected,
        "partial_runs": totals["partial_runs"],
        "unhealed_partials": totals["unhealed"],
        "failed_runs": totals["failed_runs"],
        "stale_window_rows": totals["stale_window_rows"],
        "mismatches": totals["mismatches"],
        "seconds": f"{time.monotonic() - started:.1f}",
    }
    for name, value in lines.items():
        print(f"{name}: {value}")
    return 1 if totals["mismatches"] or totals["failed_runs"] else 0


if __name__ == "__main__":
    sys.exit(main())
