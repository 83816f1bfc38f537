"""`wallet-elt check`, run as a user runs it: one request for the key, one cheap request per
route, each route's verdict as a table or JSON; exit 0 when the key works, 2 when not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wallet_elt.pipelines.check import Prober
from wallet_elt.sandbox.faults import Fault, FaultKind
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet.catalog import ENTRIES, entries_by_name
from wallet_elt.sources.wallet.client import RetryPolicy, WalletClient

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_MEMBERS = entries_by_name()["dashboard_count_members"]
CHILD = entries_by_name()["employee_permissions"]


def _check(box: Sandbox, *args: str, key: str | None = None, cwd: Path
           ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WALLET_API_KEY": key or box.api_key,
           "SOURCES__WALLET__MAX_ATTEMPTS": "2"}  # the client's retries, from the config
    return subprocess.run([sys.executable, "-m", "wallet_elt.pipelines.cli", "check",
                           "--base-url", box.base_url, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_check_json_says_what_each_route_does(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.faults.remove(["/v2/dashboard/*", CHILD.route], 410)
    sandbox.faults.replace([Fault(FaultKind.ERROR_503, route="GET /v2/news/all")])
    result = _check(sandbox, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    verdicts = {probe["resource"]: probe["verdict"] for probe in report["routes"]}
    assert list(verdicts) == [entry.name for entry in ENTRIES]
    assert report["key"] == "works"
    assert verdicts["dashboard_count_members"] == "not served"
    assert verdicts[CHILD.name] == "not served"  # asked for one parent
    assert verdicts["news_articles"] == "failing"
    assert verdicts["members"] == "served" and verdicts["employees"] == "served"
    assert report["verdicts"]["not served"] == 21
    # news_articles and its child (no parent key): the only ones failing
    assert report["verdicts"] == {"not served": 21, "failing": 2,
                                  "served": len(ENTRIES) - 23}, report["verdicts"]
    # cheap: about one request per route (parents once each, a few empty windows, retries)
    assert report["requests"] == sandbox.stats()["requests"] < 1.5 * len(ENTRIES)
    # members: its own probe, and once for a parent key of its children
    assert sandbox.stats()["routes"][entries_by_name()["members"].route] == {"200": 2}
    # its own probe and its child's parent lookup, each retried once (max_attempts 2)
    assert sandbox.stats()["routes"]["GET /v2/news/all"] == {"503": 4}


def test_check_prints_a_table_and_a_tally(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.faults.remove([DASHBOARD_MEMBERS.route])
    result = _check(sandbox, "--resources", "members,dashboard_count_members", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["resource", "verdict", "ms"]
    assert lines[1].split()[:2] == ["members", "served"]
    assert lines[2].split()[:3] == ["dashboard_count_members", "not", "served"]
    assert "answered 404" in lines[2]
    assert lines[-1].startswith(f"the key works at {sandbox.base_url}; 2 routes: "
                                "1 not served, 1 served;")


def test_check_exits_2_when_the_key_does_not_work(sandbox: Sandbox, tmp_path: Path) -> None:
    result = _check(sandbox, "--json", key="not-the-key", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "rejected the API key (401)" in result.stderr and "WALLET_API_KEY" in result.stderr
    assert "not-the-key" not in result.stderr + result.stdout
    assert sandbox.stats()["requests"] == 1  # the key is tried once, not once per route
    assert not result.stdout


# The delay is the sandbox's, at least 300 ms: above a 0.2 s threshold, far below 60 s.
@pytest.mark.parametrize(("threshold", "verdict"), [(60.0, "served"), (0.2, "slow")])
def test_a_slow_route_is_slow(sandbox: Sandbox, threshold: float, verdict: str) -> None:
    sandbox.faults.replace([Fault(FaultKind.LATENCY, route="GET /v2/news/all", value=300)])
    client = WalletClient(sandbox.base_url, sandbox.api_key, retry=RetryPolicy(max_attempts=1))
    prober = Prober(client, slow_seconds=threshold)
    probe = prober.probe(entries_by_name()["news_articles"])
    assert probe.verdict == verdict, probe
