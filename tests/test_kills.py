"""SIGKILL at ten points across extract, normalize and load; after each, a rerun leaves the
warehouse exactly equal to the sandbox: nothing lost, nothing twice, cursors consistent. And
SIGKILL inside the load step, right after a job wrote to the destination and before dlt marked
it done, at each kind of job of the tables without a record id: no table holds a row twice."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dlt
import pytest

from wallet_elt.pipelines.pipeline import RunSummary, make_pipeline, run
from wallet_elt.sandbox.server import Sandbox
from tests.conftest import query, source_args
from tests.test_destinations import postgres_credentials  # noqa: F401 (a fixture)

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


def _cli_env(box: Sandbox) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "WALLET_API_KEY": box.api_key,
           "SOURCES__WALLET__BASE_URL": box.base_url,
           "SOURCES__WALLET__START_DATE": source_args(box)["start_date"],
           "SOURCES__WALLET__PAGE_SIZE": "50"}


def _cli_run(box: Sandbox, work: Path, stdout: int = subprocess.DEVNULL
             ) -> subprocess.Popen[str]:
    env = _cli_env(box)
    return subprocess.Popen(
        [sys.executable, "-m", "wallet_elt.pipelines.cli", "run",
         "--resources", ",".join(RESOURCES), "--pipelines-dir", str(work / "pipelines")],
        cwd=work, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)


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
    rerun = _cli_run(sandbox, tmp_path, stdout=subprocess.PIPE)
    output, errors = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, errors
    # after a kill past extract it says what became of that package, and ran a load of its
    # own (dlt drops a first run's package when the kill came before the dataset existed)
    if point.startswith(("normalize", "load")):
        assert re.search(r"^(finished loading|dropped) 1 package\(s\) that an interrupted",
                         output, re.MULTILINE), output[-2000:]
    requests = re.search(r"; (\d+) requests", output)
    assert requests and int(requests.group(1)) > 0, output[-2000:]
    # Then the warehouse equals the sandbox, and a further run adds nothing
    _assert_equals_truth(sandbox, tmp_path)
    again = make_pipeline("duckdb", duckdb_path=str(tmp_path / "wallet.duckdb"),
                          pipelines_dir=str(tmp_path / "pipelines"))
    run(again, **source_args(sandbox, resources=RESOURCES, page_size=50))
    _assert_equals_truth(sandbox, tmp_path)


def test_a_kill_between_normalize_committing_and_clearing_its_package_does_not_stick(
        sandbox: Sandbox, tmp_path: Path) -> None:
    # Given a loaded dataset, then records changed and a run killed after normalize moved
    # its package on, before it deleted the extracted copy (the package is in both places)
    assert _cli_run(sandbox, tmp_path).wait(timeout=300) == 0
    sandbox.world.advance(minutes=5, create=3, update=5, entities=["members"])
    killed = subprocess.run(
        [sys.executable, "-m", "tests.kill_switch", "normalize.commit", "run", "--resources",
         ",".join(RESOURCES), "--pipelines-dir", str(tmp_path / "pipelines")],
        cwd=tmp_path, env=_cli_env(sandbox), capture_output=True, text=True, timeout=300,
        check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert _files(tmp_path, "normalize/extracted") and _files(tmp_path, "load/normalized")
    # When the operator runs again
    rerun = _cli_run(sandbox, tmp_path, stdout=subprocess.PIPE)
    output, errors = rerun.communicate(timeout=300)
    # Then it loads the package and its own run, and the warehouse equals the sandbox
    assert rerun.returncode == 0, errors[-2000:]
    assert re.search(r"^finished loading 1 package\(s\)", output, re.MULTILINE), output[-2000:]
    _assert_equals_truth(sandbox, tmp_path)


# Tables keyed by capture time (counts) or by dlt's row id (snapshots that replace their
# table): one point per kind of job, parquet (the rows) and sql (the merge that follows).
KEYLESS = ["member_counts", "static_voucher_campaign_loaded_voucher_counts", "invoices",
           "employee_permissions"]
JOB_KILLS = ["member_counts.parquet", "static_voucher_campaign_loaded_voucher_counts.sql",
             "invoices.parquet", "employee_permissions.sql"]


def _killed_after_jobs(box: Sandbox, work: Path, points: list[str], *cli: str) -> None:
    """Runs each killed right after one load job committed: each run resumes the package
    the one before left, then extracts and loads its own."""
    for point in points:
        killed = subprocess.run(
            [sys.executable, "-m", "tests.kill_switch", point, "run", "--resources",
             ",".join(KEYLESS), "--pipelines-dir", str(work / "pipelines"), *cli],
            cwd=work, env=_cli_env(box), capture_output=True, text=True, timeout=300,
            check=False)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])


def _assert_no_row_twice(pipeline: dlt.Pipeline, summary: RunSummary) -> None:
    """By dlt's row id or by the table's key; a snapshot holds exactly the last run's rows."""
    dataset = pipeline.dataset_name
    for table in KEYLESS:
        key = pipeline.default_schema.get_table_columns(table)
        primary = [name for name, column in key.items() if column.get("primary_key")]
        rows, ids, keys = query(pipeline, f"SELECT count(*), count(DISTINCT _dlt_id), "
                                          f"count(DISTINCT ({', '.join(primary)})) "
                                          f"FROM {dataset}.{table}")[0]
        assert rows == ids == keys, f"{table}: {rows} rows, {ids} row ids, {keys} keys"
    for table in ("invoices", "employee_permissions"):
        rows = query(pipeline, f"SELECT count(*) FROM {dataset}.{table}")[0][0]
        assert rows == summary.rows[table], table


def test_kills_between_a_job_commit_and_its_completion_leave_no_duplicate(
        sandbox: Sandbox, tmp_path: Path) -> None:
    # Given runs each killed right after a different load job committed
    _killed_after_jobs(sandbox, tmp_path, JOB_KILLS)
    # When the operator runs again
    pipeline = make_pipeline("duckdb", duckdb_path=str(tmp_path / "wallet.duckdb"),
                             pipelines_dir=str(tmp_path / "pipelines"))
    summary = run(pipeline, **source_args(sandbox, resources=KEYLESS, page_size=50))
    # Then it finished the package the last kill left, and ran a load of its own too
    assert len(summary.resumed) == 1 and summary.requests > 0
    assert set(summary.rows) == set(KEYLESS)
    assert "interrupted run" in summary.lines()[0]
    # and no table holds a row twice
    _assert_no_row_twice(pipeline, summary)


@pytest.mark.usefixtures("postgres_credentials")
def test_a_kill_after_a_job_commit_on_postgres_neither_sticks_nor_duplicates(
        sandbox: Sandbox, tmp_path: Path) -> None:
    dataset = f"wallet_kills_{os.getpid()}"
    try:
        # Postgres loads csv: the count series' rows commit, then the run is killed
        _killed_after_jobs(sandbox, tmp_path, ["member_counts.csv"], "--destination",
                           "postgres", "--dataset-name", dataset)
        pipeline = make_pipeline("postgres", dataset,
                                 pipelines_dir=str(tmp_path / "pipelines"))
        summary = run(pipeline, **source_args(sandbox, resources=KEYLESS, page_size=50))
        assert len(summary.resumed) == 1
        _assert_no_row_twice(pipeline, summary)
    finally:
        cleanup = make_pipeline("postgres", dataset, pipelines_dir=str(tmp_path / "cleanup"))
        with cleanup.sql_client() as client:
            for name in (dataset, f"{dataset}_staging"):
                client.execute_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
