"""A resource whose route fails leaves its table exactly as it was, whatever its write
disposition. Used directly through dlt, such a failure fails the run unless a partial load was
asked for, and then it is reported where dlt users look; the source closes its connections."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from wallet_elt.pipelines.pipeline import PartialLoad, run
from wallet_elt.sandbox.faults import Fault, FaultKind
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet import ResourceFailed, RunReport, wallet_source
from wallet_elt.sources.wallet.catalog import entries_by_name
from tests.conftest import new_pipeline, query, source_args

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = entries_by_name()
# merge on id (cursor), a snapshot that replaces its table, one that fans out over a parent
# (employees), and a count series (its rows are keyed by capture time)
RESOURCES = ["members", "invoices", "employee_permissions", "member_counts"]
FAST = {"max_attempts": 2, "request_timeout": 2.0}
INVOICES = ENTRIES["invoices"].route


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the socket is closed


def _every_route(kind: FaultKind) -> list[Fault]:
    return [Fault(kind, route=ENTRIES[name].route) for name in RESOURCES]


# name: (faults, base URL or None for the sandbox's, resources that fail)
FAILURES: dict[str, Any] = {
    "html": lambda: (_every_route(FaultKind.HTML), None, RESOURCES),
    "malformed": lambda: (_every_route(FaultKind.MALFORMED), None, RESOURCES),
    "closed-port": lambda: ([], _closed_port_url(), RESOURCES),
    # the child's route fails after two of its parents loaded
    "child-halfway": lambda: ([Fault(FaultKind.HTML, route=ENTRIES["employee_permissions"].route,
                                     after=2)], None, ["employee_permissions"]),
}


def _table(pipeline: dlt.Pipeline, name: str) -> list[tuple[Any, ...]]:
    """Every row with every value, dlt's load and row ids included, in a stable order."""
    return query(pipeline, f"SELECT * FROM {pipeline.dataset_name}.{name} ORDER BY ALL")


def _state(pipeline: dlt.Pipeline, name: str) -> Any:
    return pipeline.state["sources"]["wallet"]["resources"].get(name)


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_resource_leaves_its_table_exactly_as_it_was(
        sandbox: Sandbox, tmp_path: Path, failure: str) -> None:
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=RESOURCES, **FAST)
    run(pipeline, **args)
    before = {name: _table(pipeline, name) for name in RESOURCES}
    assert all(before.values())
    states = {name: _state(pipeline, name) for name in RESOURCES}
    # a healthy run now would change members; every run rewrites snapshots and adds counts
    sandbox.world.advance(minutes=5, update=50, entities=["members"])
    faults, base_url, failed = FAILURES[failure]()
    sandbox.faults.replace(faults)
    with pytest.raises((PartialLoad, PipelineStepFailed)) as failure:
        run(pipeline, **{**args, "base_url": base_url or sandbox.base_url})
    if base_url is None:
        assert isinstance(failure.value, PartialLoad)
        assert set(failure.value.summary.failures) == set(failed)
    else:  # nothing listens there: the run stops at once, naming the base URL
        assert "cannot reach the Wallet API at " + base_url in str(failure.value)
    for name in failed:
        assert _table(pipeline, name) == before[name], f"{name} changed"
        assert _state(pipeline, name) == states[name], f"{name}: its state moved"


def test_a_complete_snapshot_replaces_every_row(sandbox: Sandbox, tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    args = source_args(sandbox, resources=["invoices", "employee_permissions"])
    run(pipeline, **args)
    summary = run(pipeline, **args)
    for name in ("invoices", "employee_permissions"):
        loads = query(pipeline, f"SELECT _dlt_load_id, count(*) FROM "
                                f"{pipeline.dataset_name}.{name} GROUP BY 1")
        assert [count for _, count in loads] == [summary.rows[name]], name  # one load only


def test_a_snapshot_that_became_empty_empties_its_table(sandbox: Sandbox,
                                                        tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    names = ["invoices", "employee_permissions"]
    args = source_args(sandbox, resources=names)
    run(pipeline, **args)
    sandbox.faults.replace([Fault(FaultKind.EMPTY, route=ENTRIES[name].route) for name in names])
    run(pipeline, **args)
    for name in names:
        assert _table(pipeline, name) == [], name
    sandbox.faults.replace([])
    summary = run(pipeline, **args)  # and the next complete snapshot fills it again
    for name in names:
        assert len(_table(pipeline, name)) == summary.rows[name] > 0, name


def _direct(tmp_path: Path) -> dlt.Pipeline:
    return dlt.pipeline("wallet_direct", destination=dlt.destinations.duckdb(
        str(tmp_path / "direct.duckdb")), dataset_name="direct_data",
        pipelines_dir=str(tmp_path / "pipelines"))


def _chain(err: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def test_used_through_dlt_a_failing_route_fails_the_run(sandbox: Sandbox,
                                                        tmp_path: Path) -> None:
    pipeline = _direct(tmp_path)
    args = source_args(sandbox, resources=["members", "invoices"], **FAST)
    pipeline.run(wallet_source(**args))
    before = {name: _table(pipeline, name) for name in ("members", "invoices")}
    cursor = _state(pipeline, "members")
    sandbox.world.advance(minutes=5, update=50, entities=["members"])
    sandbox.faults.replace([Fault(FaultKind.HTML, route=INVOICES)])
    with pytest.raises(PipelineStepFailed) as failure:
        pipeline.run(wallet_source(**args))
    causes = [err for err in _chain(failure.value) if isinstance(err, ResourceFailed)]
    assert causes and causes[0].resource == "invoices"
    assert INVOICES in str(causes[0]) and "HTML page instead of JSON" in str(causes[0])
    # nothing of the run loaded, and no cursor moved, the healthy resource's included
    assert {name: _table(pipeline, name) for name in before} == before
    assert _state(pipeline, "members") == cursor


def test_used_through_dlt_a_partial_load_is_asked_for_and_visible(
        sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pipeline = _direct(tmp_path)
    sandbox.faults.replace([Fault(FaultKind.HTML, route=INVOICES)])
    report = RunReport()
    source = wallet_source(**source_args(sandbox, resources=["members", "invoices"], **FAST),
                           on_route_failure="skip", report=report)
    with caplog.at_level(logging.WARNING):
        pipeline.run(source)
    members = sandbox.world.entities["members"].count
    assert query(pipeline, "SELECT count(*) FROM direct_data.members") == [(members,)]
    # a WARNING naming the resource, route and cause
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                and "invoices" in r.getMessage()]
    assert len(warnings) == 1 and INVOICES in warnings[0] and "HTML page" in warnings[0]
    # the extract step of dlt's trace carries it as the resource's custom metric
    extract = pipeline.last_trace.last_extract_info
    metrics = extract.metrics[extract.loads_ids[-1]][0]["resource_metrics"]
    failed = metrics["invoices"].custom_metrics["wallet_failure"]
    assert failed["route"] == INVOICES and "HTML page" in failed["cause"]
    # the caller's report holds what the run did
    assert set(report.failures) == {"invoices"} and report.rows["members"] == members
    assert report.requests == sandbox.stats()["requests"] > 0
    # and the source closed its connections once its resources ended
    assert _connections_to(sandbox) == 0


def _connections_to(box: Sandbox) -> int:
    """Established TCP connections from this process to the sandbox's port (Linux /proc)."""
    port = int(box.base_url.rsplit(":", 1)[1])
    mine = {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
            if os.path.islink(f"/proc/self/fd/{fd}")}
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == port and fields[3] == "01" and f"socket:[{fields[9]}]" in mine:
            count += 1
    return count


def test_building_the_source_leaves_dlt_config_alone() -> None:
    probe = ("import dlt\nfrom wallet_elt.sources.wallet import wallet_source\n"
             "wallet_source(api_key='k', base_url='http://127.0.0.1:9')\n"
             "print(dlt.config.get('normalize.parquet_normalizer.add_dlt_load_id'),"
             " dlt.config.get('normalize.parquet_normalizer.add_dlt_id'))")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("NORMALIZE__")}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True, env={**env, "PYTHONPATH": str(ROOT)}, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "None"]
