"""`python -m scripts.soak --kills`: issue 11 item 3 for minutes. Every cycle changes the
world, starts `wallet-elt run` and SIGKILLs it during its load step at a point drawn from a
seeded RNG (after the first job file appears, once a job started, after N jobs completed,
each plus a few random milliseconds; or, through tests/kill_switch.py, right after a given
table's job committed, before dlt marked it done, or right after normalize moved its
package), then runs it again to completion. After the rerun the warehouse must hold every
record table's rows exactly once and up to date, and no table without a record id (count
series, replacing snapshots) any row twice."""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts.soak import (
    KINDS,
    RESOURCES,
    Soak,
    advance,
    differences,
    log,
    soak_pipeline,
    tally,
)
from tests.test_kills import KEYLESS

ROOT = Path(__file__).resolve().parents[1]
KILLED = RESOURCES + KEYLESS
KILL_WAIT_S = 300  # a run that reaches no kill point within this ends the soak as failed

Reached = Callable[[Path], bool]


def _jobs(work: Path, folder: str) -> int:
    return sum(1 for path in (work / "pipelines" / "wallet").glob(
        f"load/normalized/*/{folder}/*") if path.is_file())


def choose_point(rng: random.Random) -> tuple[str, Reached | None, float]:
    """(label, condition to SIGKILL at, then delay in s); no condition: the run kills itself
    (kill_switch) right after the label's job committed."""
    kind = rng.choice(["new", "started", "completed", "committed"])
    delay = rng.uniform(0.0, 0.02)
    if kind == "committed":
        jobs = [f"{table}.{kind}" for table in KILLED for kind in ("parquet", "sql")]
        return rng.choice([*jobs, "normalize.commit"]), None, 0.0
    if kind == "completed":
        count = rng.randint(1, 8)
        return (f"{count} completed jobs +{delay * 1000:.0f} ms",
                lambda work: _jobs(work, "completed_jobs") >= count, delay)
    return (f"first {kind} job +{delay * 1000:.0f} ms",
            lambda work: _jobs(work, f"{kind}_jobs") >= 1, delay)


def _command(work: Path, kill_switch: str | None) -> list[str]:
    run = ["run", "--resources", ",".join(KILLED), "--pipelines-dir", str(work / "pipelines")]
    if kill_switch:
        return [sys.executable, "-m", "tests.kill_switch", kill_switch, *run]
    return [sys.executable, "-m", "wallet_elt.pipelines.cli", *run]


def killed_run(work: Path, env: dict[str, str], label: str, reached: Reached | None,
               delay: float) -> bool:
    """Runs the CLI until the point; whether it was SIGKILLed there (False: it ended first)."""
    process = subprocess.Popen(_command(work, None if reached else label), cwd=work, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + KILL_WAIT_S
    while reached and process.poll() is None and time.monotonic() < deadline:
        if reached(work):
            time.sleep(delay)
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    return process.wait(timeout=KILL_WAIT_S) == -signal.SIGKILL


def keyless_duplicates(pipeline: Any) -> int:
    """Rows beyond one per dlt row id or per key, over the tables without a record id."""
    extra = 0
    schema = pipeline.default_schema
    with pipeline.sql_client() as client:
        for table in KEYLESS:
            if table not in schema.data_table_names():
                continue
            key = [name for name, column in schema.get_table_columns(table).items()
                   if column.get("primary_key")]
            ((rows, ids, keys),) = client.execute_sql(
                f"SELECT count(*), count(DISTINCT _dlt_id), count(DISTINCT ({', '.join(key)})) "
                f"FROM {pipeline.dataset_name}.{table}")
            extra += rows - min(ids, keys)
    return extra


def soak_kills(args: argparse.Namespace) -> int:
    soak = Soak.begin(args)
    box, rng, started, deadline = soak.box, soak.rng, soak.started, soak.deadline
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNTIME__DLTHUB_TELEMETRY": "false",
           "WALLET_API_KEY": box.api_key, "SOURCES__WALLET__BASE_URL": box.base_url,
           "SOURCES__WALLET__START_DATE": soak.history_start(),
           "SOURCES__WALLET__PAGE_SIZE": str(args.page_size)}
    totals = dict.fromkeys(["cycles", "kills", "missed_kill_points", "failed_reruns",
                            *(f"{kind}_after_rerun" for kind in KINDS),
                            "keyless_duplicated_after_rerun"], 0)
    stale_window = 0
    with tempfile.TemporaryDirectory(prefix="wallet-soak-kills-") as tmp:
        work = Path(tmp)
        try:
            while totals["cycles"] == 0 or time.monotonic() < deadline:
                totals["cycles"] += 1
                changes = advance(box, rng) if totals["cycles"] > 1 else "first load"
                label, reached, delay = choose_point(rng)
                killed = killed_run(work, env, label, reached, delay)
                totals["kills" if killed else "missed_kill_points"] += 1
                rerun = subprocess.run(_command(work, None), cwd=work, env=env, text=True,
                                       capture_output=True, timeout=KILL_WAIT_S, check=False)
                if rerun.returncode != 0:
                    totals["failed_reruns"] += 1
                    log(f"cycle {totals['cycles']} ({changes}): "
                        f"{'killed at' if killed else 'ended before'} {label}; "
                        f"rerun exit {rerun.returncode}: "
                        f"{rerun.stderr[-300:]}")
                    continue
                pipeline = soak_pipeline(work, "wallet.duckdb")
                found = tally(differences(box, pipeline, RESOURCES))
                doubled = keyless_duplicates(pipeline)
                for kind in KINDS:
                    totals[f"{kind}_after_rerun"] += found[kind]
                totals["keyless_duplicated_after_rerun"] += doubled
                stale_window = found["stale_window"]
                log(f"cycle {totals['cycles']} ({changes}): "
                    f"{'killed at' if killed else 'ended before'} {label}; after the rerun "
                    + ", ".join(f"{found[kind]} {kind}" for kind in KINDS)
                    + f", {doubled} keyless rows twice")
        finally:
            box.stop()
    lines = {**totals, "stale_window_rows": stale_window,
             "seconds": f"{time.monotonic() - started:.1f}"}
    for name, value in lines.items():
        print(f"{name}: {value}")
    wrong = sum(totals[f"{kind}_after_rerun"] for kind in KINDS)
    return 1 if wrong or totals["keyless_duplicated_after_rerun"] or totals[
        "failed_reruns"] else 0
