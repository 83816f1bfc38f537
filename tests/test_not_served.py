"""Routes the API no longer serves (404/410 to every request, as the July 2026 SDKs dropped
Analytics and Dashboard): such a resource ends with a warning, loads nothing, keeps its
table and cursor, and the run goes on; the summary lists it apart from failures, and the CLI
exits 0. A family of routes can be switched off altogether."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dlt
import httpx
import pytest

from wallet_elt.pipelines.cli import parser
from wallet_elt.pipelines.pipeline import run
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet import wallet_source
from wallet_elt.sources.wallet.catalog import ENTRIES
from wallet_elt.sources.wallet.client import RouteFailed, RouteNotServed, WalletClient
from wallet_elt.sources.wallet.families import family_of
from tests.conftest import api, new_pipeline, query, source_args

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = [entry.name for entry in ENTRIES if family_of(entry.operation.path) == "dashboard"]
EMPLOYEES = "/v2/merchant/employees/all"


def _table(pipeline: dlt.Pipeline, name: str) -> list[tuple[Any, ...]]:
    return query(pipeline, f"SELECT * FROM {pipeline.dataset_name}.{name} ORDER BY ALL")


def _resource_state(pipeline: dlt.Pipeline, name: str) -> Any:
    return pipeline.state["sources"]["wallet"]["resources"].get(name)


def test_the_dashboard_family_removed_loads_the_rest_and_keeps_its_tables(
        sandbox: Sandbox, tmp_path: Path) -> None:
    assert len(DASHBOARD) == 20
    pipeline = new_pipeline(tmp_path)
    names = ["members", *DASHBOARD]
    first = run(pipeline, **source_args(sandbox, resources=names))
    assert not first.not_served and not first.failures
    loaded = [name for name in DASHBOARD if first.rows.get(name)]
    assert loaded, first.rows  # the tables that must stay as they were
    tables = {name: _table(pipeline, name) for name in loaded}
    states = {name: _resource_state(pipeline, name) for name in DASHBOARD}
    members = query(pipeline, "SELECT count(*) FROM wallet_data.members")[0][0]

    sandbox.faults.remove(["/v2/dashboard/*"])
    sandbox.world.advance(minutes=60, create=30, entities=["members"])
    sandbox.reset_stats()
    summary = run(pipeline, **source_args(sandbox, resources=names))  # no PartialLoad

    assert not summary.failures
    assert sorted(summary.not_served) == sorted(DASHBOARD)
    assert all("answered 404" in why for why in summary.not_served.values())
    assert query(pipeline, "SELECT count(*) FROM wallet_data.members")[0][0] == members + 30
    assert {name: _table(pipeline, name) for name in loaded} == tables
    assert {name: _resource_state(pipeline, name) for name in DASHBOARD} == states
    # one request each says so: the route is not asked again for every window
    routes = sandbox.stats()["routes"]
    assert all(routes[entry.route] == {"404": 1} for entry in ENTRIES if entry.name in DASHBOARD)
    lines = summary.lines()
    assert "20 route(s) not served" in "\n".join(lines)
    assert any(line.startswith("  not served: dashboard_count_members:") for line in lines)


def test_cli_exits_0_when_the_only_problem_is_a_route_not_served(sandbox: Sandbox,
                                                                 tmp_path: Path) -> None:
    sandbox.faults.remove(["/v2/dashboard/count/members"], 410)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WALLET_API_KEY": sandbox.api_key,
           "SOURCES__WALLET__BASE_URL": sandbox.base_url}
    result = subprocess.run(
        [sys.executable, "-m", "wallet_elt.pipelines.cli", "run", "--resources",
         "members,dashboard_count_members", "--pipelines-dir", str(tmp_path / "p")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 route(s) not served" in result.stdout
    assert "not served: dashboard_count_members: GET /v2/dashboard/count/members answered " \
           "410" in result.stdout
    assert "members: " in result.stdout and "did not load" not in result.stderr


def test_a_removed_child_route_is_not_served_even_when_failures_raise(
        sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    child = next(entry for entry in ENTRIES if entry.name == "news_article_page_views")
    sandbox.faults.remove([child.route], 410)
    pipeline = new_pipeline(tmp_path)
    with caplog.at_level(logging.WARNING):
        # on_route_failure="raise" (the default): a route not served is no failure
        info = pipeline.run(wallet_source(**source_args(
            sandbox, resources=["news_articles", child.name], arrow=False,
            max_concurrency=1)))
    assert info.loads_ids
    assert query(pipeline, "SELECT count(*) FROM wallet_data.news_articles")[0][0] > 0
    metrics = pipeline.last_trace.last_extract_info.metrics[info.loads_ids[0]][0]
    not_served = metrics["resource_metrics"][child.name].custom_metrics["wallet_not_served"]
    assert not_served["route"] == child.route and "410" in not_served["cause"]
    assert any("is not served" in r.getMessage() and child.name in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)
    # one parent at a time: five in a row decide, the other parents are not asked
    assert sandbox.world.entities["news_articles"].count > 5
    assert sandbox.stats()["routes"][child.route] == {"410": 5}


def test_a_route_that_answered_before_fails_on_a_404(sandbox: Sandbox) -> None:
    client = WalletClient(sandbox.base_url, sandbox.api_key)
    assert client.request("GET", EMPLOYEES)
    sandbox.faults.remove([EMPLOYEES])
    with pytest.raises(RouteFailed, match="answered 404") as raised:
        client.request("GET", EMPLOYEES)
    assert not isinstance(raised.value, RouteNotServed)
    sandbox.faults.remove(["/v2/dashboard/*"])
    with pytest.raises(RouteNotServed, match="answered 404"):
        client.request("GET", "/v2/dashboard/widgets")


def test_disabled_families_leave_their_routes_out(sandbox: Sandbox,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    source = wallet_source(**source_args(sandbox, disabled_families=["Dashboard", "analytics"]))
    names = set(source.resources)
    assert not names & set(DASHBOARD)
    analytics = [e.name for e in ENTRIES if family_of(e.operation.path) == "analytics"]
    assert len(DASHBOARD) == 20 and len(analytics) > 60  # both families are in the catalog
    assert names == {e.name for e in ENTRIES} - set(DASHBOARD) - set(analytics)
    monkeypatch.setenv("SOURCES__WALLET__DISABLED_FAMILIES", '["dashboard"]')
    from_config = wallet_source(**source_args(sandbox))
    assert len(from_config.resources) == len(ENTRIES) - 20
    with pytest.raises(ValueError, match=r"sources\.wallet\.disabled_families.*dashbord"):
        wallet_source(**source_args(sandbox, disabled_families=["dashbord"]))


def test_sandbox_removed_routes_answer_the_reference_error_shape(sandbox: Sandbox) -> None:
    with api(sandbox) as client:
        control = httpx.post(f"{sandbox.base_url}/_sandbox/faults",
                             json={"removed": ["/v2/dashboard/*"], "removed_status": 410})
        assert control.status_code == 200
        gone = client.get("/v2/dashboard/widgets")
        assert gone.status_code == 410
        assert set(gone.json()["error"]) == {"name", "message"}
        assert client.get(EMPLOYEES).status_code == 200
        bad = httpx.post(f"{sandbox.base_url}/_sandbox/faults",
                         json={"removed": ["*"], "removed_status": 500})
        assert bad.status_code == 422
        httpx.post(f"{sandbox.base_url}/_sandbox/faults", json={"removed": []})
        assert client.get("/v2/dashboard/widgets").status_code == 200
    box = Sandbox(sandbox.world, removed=["GET /v2/dashboard/*"])
    assert box.faults.gone("GET /v2/dashboard/widgets") == 404
    assert box.faults.gone(f"GET {EMPLOYEES}") is None
    args = parser().parse_args(["sandbox", "--removed", "/v2/dashboard/*", "--removed",
                                "/v2/analytics/*", "--removed-status", "410"])
    assert args.removed == ["/v2/dashboard/*", "/v2/analytics/*"] and args.removed_status == 410
