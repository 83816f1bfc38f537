"""`python -m scripts.soak --churn`: issue 11 item 2 for minutes. Every cycle runs the
connector while a thread keeps changing records (the lists are being paged meanwhile), then
runs it once more with the world quiet; that quiet run must load every change, so the
warehouse then equals the truth computed from the world's records: no row missing,
duplicated or stale on these cursor routes."""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from pathlib import Path

from wallet_elt.pipelines.pipeline import run
from wallet_elt.sandbox.server import Sandbox
from scripts.soak import KINDS, Soak, differences, log, soak_pipeline, tally

# Cursor routes only: windowed ones follow createdAt, so they never promise updates.
CHURN = ["members", "phone_numbers", "phone_number_outbound_sms", "performances",
         "performance_ticket_pages"]
CHURNED = ["members", "outbound_sms", "tickets"]
CHANGE_EVERY_S = 0.05
# Server minutes each change moves the clock: 2 server minutes per wall second, so minutes of
# soak stay within the day the sandbox clock starts behind the wall clock.
CHANGE_MINUTES = 0.1


class Churn(threading.Thread):
    """Changes records every CHANGE_EVERY_S until stopped; counts the changes (a record
    touched twice counts twice)."""

    def __init__(self, box: Sandbox, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.box, self.rng = box, rng
        self.halt = threading.Event()
        self.touched = 0

    def run(self) -> None:
        world = self.box.world
        while not self.halt.wait(CHANGE_EVERY_S):
            if world.now > time.time() - 180:
                continue  # never date a change after the wall clock: windows end at now
            answer = world.advance(minutes=CHANGE_MINUTES, create=self.rng.randint(0, 2),
                                   update=self.rng.randint(1, 6), entities=CHURNED)
            self.touched += sum(len(ids) for ids in answer["touched"].values())


def soak_churn(args: argparse.Namespace) -> int:
    soak = Soak.begin(args)
    box, rng, started, deadline = soak.box, soak.rng, soak.started, soak.deadline
    source_args = soak.source_args(CHURN, page_size=args.page_size)
    totals = dict.fromkeys(["cycles", "records_changed_during_runs", "failed_runs",
                            *(f"{kind}_after_quiet_run" for kind in KINDS)], 0)
    with tempfile.TemporaryDirectory(prefix="wallet-soak-churn-") as tmp:
        work = Path(tmp)
        pipeline = soak_pipeline(work)
        try:
            while totals["cycles"] == 0 or time.monotonic() < deadline:
                totals["cycles"] += 1
                churn = Churn(box, rng)
                churn.start()
                try:
                    busy = run(pipeline, **source_args)
                    churn.halt.set()
                    churn.join()
                    quiet = run(pipeline, **source_args)
                except Exception as err:  # noqa: BLE001 (a connector problem: counted)
                    totals["failed_runs"] += 1
                    log(f"cycle {totals['cycles']}: FAILED {type(err).__name__}: "
                        f"{str(err)[:300]}")
                    continue
                finally:
                    churn.halt.set()
                    churn.join()
                totals["records_changed_during_runs"] += churn.touched
                found = tally(differences(box, pipeline, CHURN))
                for kind in KINDS:
                    totals[f"{kind}_after_quiet_run"] += found[kind]
                log(f"cycle {totals['cycles']}: {churn.touched} record changes while the "
                    f"lists were paged (that run loaded {sum(busy.rows.values())} rows); the "
                    f"quiet run loaded {sum(quiet.rows.values())}; "
                    + ", ".join(f"{found[kind]} {kind}" for kind in KINDS))
        finally:
            box.stop()
    for name, value in {**totals, "seconds": f"{time.monotonic() - started:.1f}"}.items():
        print(f"{name}: {value}")
    wrong = sum(totals[f"{kind}_after_quiet_run"] for kind in KINDS)
    return 1 if wrong or totals["failed_runs"] else 0
