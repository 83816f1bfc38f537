"""SIGKILL at ten points across extract, normalize and load; after each, a rerun leaves the
warehouse exactly equal to the sandbox: nothing lost, nothing twice, cursors consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines.pipeline import make_pipeline, run
from sandbox.server import Sandbox
from tests.conftest import query, source_args

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ["members", "phone_numbers", "phone_number_outbound_sms_pages",
             "ledger_transactions", "static_voucher_campaign_static_voucher_pages"]
TRUTH = {"members": "members", "ledger_transactions": "ledger_entries",
         "phone_number_outbound_sms_pages": "outbound_sms",
         "static_voucher_campaign_static_voucher_pages": "static_vouchers"}


def _files(work: Path, folder: str) -> int:
    return sum(1 for _ in (work / "pipelines" / "wallet").glob(f"{folder}/**/*") if _.is_file())


def _after_requests(n: int) -> Callable[[Sandbox, Path], bool]:
    return lambda box, work: box.stats()["requests"] >= n


def _when_files(folder: str, at_least: int = 1) -> Callable[[Sandbox, Path], bool]:
    return lambda box, work: _files(work, folder) >= at_least


# Ten kill points, in the order a run passes them.
KILL_POINTS: dict[str, Callable[[Sandbox, Path], bool]] = {
    "extract-first-request": _after_requests(1),
    "extract-parents-fetched": _after_requests(4),
    "extract-mid-children": _after_requests(12),
    "extract-late": _after_requests(30),
    "extract-last-pages": _after_requests(45),
    "normalize-extracted-package": _when_files("normalize/extracted"),
    "normalize-writing": _when_files("load/new"),
    "load-new-jobs": _when_files("load/normalized/*/new_jobs"),
    "load-started-jobs": _when_files("load/normalized/*/started_jobs"),
    "load-completed-jobs": _when_files("load/normalized/*/completed_jobs", 3),
}


def _cli_run(box: Sandbox, work: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WALLET_API_KEY": box.api_key,
           "SOURCES__WALLET__BASE_URL": box.base_url,
           "SOURCES__WALLET__START_DATE": source_args(box)["start_date"],
           "SOURCES__WALLET__PAGE_SIZE": "50"}
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run",
         "--resources", ",".join(RESOURCES), "--pipelines-dir", str(work / "pipelines")],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _kill_when(process: subprocess.Popen[str], box: Sandbox, work: Path,
               point: Callable[[Sandbox, Path], bool]) -> bool:
    """SIGKILL the run when the point is reached; False if the run ended first."""
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if point(box, work):
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.002)
    process.wait()
    return False


def _assert_equals_truth(box: Sandbox, work: Path) -> None:
    pipeline = make_pipeline("duckdb", duckdb_path=str(work / "wallet.duckdb"),
                             pipelines_dir=str(work / "pipelines"))
    dataset = pipeline.dataset_name
    for table, entity in TRUTH.items():
        records = box.world.entities[entity]
        rows, distinct = query(pipeline, f"SELECT count(*), count(DISTINCT id) "
                                         f"FROM {dataset}.{table}")[0]
        assert (rows, distinct) == (records.count, records.count), table
    archived = query(pipeline, f"SELECT count(*) FROM {dataset}.members WHERE _wallet_archived")
    assert archived[0][0] == int((~box.world.entities["members"].active).sum())


@pytest.mark.parametrize("point", list(KILL_POINTS), ids=list(KILL_POINTS))
def test_rerun_after_kill_loses_nothing_and_loads_nothing_twice(
        sandbox: Sandbox, tmp_path: Path, point: str) -> None:
    # Given a run killed at the point
    killed = _kill_when(_cli_run(sandbox, tmp_path), sandbox, tmp_path, KILL_POINTS[point])
    assert killed, f"the run finished before reaching {point}"
    # When the operator simply runs again
    rerun = _cli_run(sandbox, tmp_path)
    _, errors = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, errors
    # Then the warehouse equals the sandbox, and a further run adds nothing
    _assert_equals_truth(sandbox, tmp_path)
    again = make_pipeline("duckdb", duckdb_path=str(tmp_path / "wallet.duckdb"),
                          pipelines_dir=str(tmp_path / "pipelines"))
    run(again, **source_args(sandbox, resources=RESOURCES, page_size=50))
    _assert_equals_truth(sandbox, tmp_path)
