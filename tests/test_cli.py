"""The `wallet-elt` command as an operator uses it."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from wallet_elt.pipelines.cli import main
from wallet_elt.pipelines.lock import exclusive_run
from wallet_elt.pipelines.progress import Progress
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet.catalog import ENTRIES
from wallet_elt.sources.wallet.client import BaseUrlWrong, RouteFailed, WalletClient

CLI = [sys.executable, "-m", "wallet_elt.pipelines.cli"]
ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([*CLI, *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=300)


def test_resources_json_lists_every_catalog_entry(tmp_path: Path) -> None:
    result = _cli("resources", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [item["name"] for item in listed] == [entry.name for entry in ENTRIES]
    assert {"route", "strategy", "cursor", "write_disposition"} <= set(listed[0])


def test_run_with_a_rejected_key_fails_clearly_without_leaking_it(sandbox: Sandbox,
                                                                   tmp_path: Path) -> None:
    secret = "wrong-key-DO-NOT-PRINT-42"
    result = _cli("run", "--resources", "members", "--base-url", sandbox.base_url,
                  cwd=tmp_path, env={"WALLET_API_KEY": secret})
    assert result.returncode == 2  # a setting to fix, not a run to retry
    assert "rejected the API key" in result.stderr
    assert "WALLET_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert secret not in result.stdout + result.stderr


def test_run_loads_the_sandbox_through_environment_config(sandbox: Sandbox,
                                                          tmp_path: Path) -> None:
    pipelines = tmp_path / "pipelines"
    result = _cli("run", "--resources", "members,phone_numbers", "--pipelines-dir",
                  str(pipelines), cwd=tmp_path,
                  env={"WALLET_API_KEY": sandbox.api_key,
                       "SOURCES__WALLET__BASE_URL": sandbox.base_url})
    assert result.returncode == 0, result.stderr
    members = sandbox.world.entities["members"].count
    assert f"members: {members} rows" in result.stdout
    as_arrow = re.search(r"\((\d+) as Arrow tables, the rest as rows\)", result.stdout)
    assert as_arrow and int(as_arrow.group(1)) >= members, result.stdout
    assert (tmp_path / "wallet.duckdb").exists()
    # dlt's own CLI works on the pipeline like on any other
    for command in ("info", "trace", "schema"):
        dlt_cli = subprocess.run([sys.executable, "-m", "dlt", "pipeline", "--pipelines-dir",
                                  str(pipelines), "wallet", command], cwd=tmp_path,
                                 capture_output=True, text=True, timeout=120)
        assert dlt_cli.returncode == 0, dlt_cli.stderr
        assert "members" in dlt_cli.stdout, command


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cwd: Path,
          *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """The CLI in this process (no start-up cost), in `cwd`, with `env` added."""
    monkeypatch.chdir(cwd)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_bare_pytest_collects_every_test_module() -> None:
    pytest_script = shutil.which("pytest") or str(Path(sys.executable).with_name("pytest"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # A module that imports `tests.*`: those imports failed collection under bare pytest.
    result = subprocess.run([pytest_script, "--collect-only", "-q",
                             "tests/test_source_contract.py"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "error" not in result.stdout.splitlines()[-1], result.stdout[-2000:]


def test_closed_port_fails_at_once_naming_the_base_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    # Before: 354 s of retries, then a 57 KB line; the timeout here would fail that.
    result = _cli("run", "--base-url", url, "--pipelines-dir", str(tmp_path / "p"),
                  cwd=tmp_path, env={"WALLET_API_KEY": "sandbox-key-0123456789"})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot reach the Wallet API at {url}" in lines[0], lines
    assert "SOURCES__WALLET__BASE_URL" in lines[0] and "Traceback" not in result.stderr


def test_wrong_base_path_stops_after_a_few_requests(sandbox: Sandbox, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    wrong = sandbox.base_url + "/api/v1"
    code, out, err = _main(monkeypatch, capsys, tmp_path, "run", "--base-url", wrong,
                           "--pipelines-dir", str(tmp_path / "p"),
                           env={"WALLET_API_KEY": sandbox.api_key})
    assert code == 2, out + err
    assert f"{wrong} does not look like the Wallet API" in err
    assert "sources.wallet.base_url" in err
    # Before: every one of the 249 routes was asked (and answered 404).
    assert sandbox.stats()["requests"] < 40, sandbox.stats()["requests"]


def test_one_missing_route_fails_alone_when_the_base_url_is_right(sandbox: Sandbox) -> None:
    client = WalletClient(sandbox.base_url, sandbox.api_key)
    with pytest.raises(RouteFailed, match="answered 404"):
        client.request("GET", "/v2/no/such/route")
    assert client.request("GET", "/system/countries/all")
    wrong = WalletClient(sandbox.base_url + "/v9", sandbox.api_key)
    with pytest.raises(BaseUrlWrong, match="/v9 does not look like the Wallet API"):
        wrong.request("GET", "/v2/no/such/route")


def _load_members(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                  box: Sandbox, cwd: Path, *extra: str) -> tuple[int, str, str]:
    return _main(monkeypatch, capsys, cwd, "run", "--resources", "members",
                 "--pipelines-dir", str(cwd / "pipelines"), *extra,
                 env={"WALLET_API_KEY": box.api_key, "SOURCES__WALLET__BASE_URL": box.base_url})


def test_pipeline_names_keep_their_own_lock_and_state(sandbox: Sandbox, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    pipelines = tmp_path / "pipelines"
    with exclusive_run(str(pipelines / "wallet"), "wallet"):
        code, _, err = _load_members(monkeypatch, capsys, sandbox, tmp_path)
        assert code == 1 and "another run of pipeline 'wallet' is in progress" in err
        code, out, err = _load_members(monkeypatch, capsys, sandbox, tmp_path,
                                       "--pipeline-name", "shop_two")
        assert code == 0, err
    assert "pipeline 'shop_two'" in out
    assert (pipelines / "shop_two" / "state.json").exists()
    monkeypatch.setenv("PIPELINE_NAME", "from_config")  # the config key, through the env
    code, _, err = _load_members(monkeypatch, capsys, sandbox, tmp_path)
    assert code == 0 and (pipelines / "from_config" / "state.json").exists(), err


def test_full_refresh_reloads_rows_deleted_from_the_warehouse(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    members = sandbox.world.entities["members"].count
    assert _load_members(monkeypatch, capsys, sandbox, tmp_path)[0] == 0
    database = str(tmp_path / "wallet.duckdb")
    with duckdb.connect(database) as con:
        con.execute("DELETE FROM wallet_data.members WHERE id IN "
                    "(SELECT id FROM wallet_data.members LIMIT 100)")
    assert _load_members(monkeypatch, capsys, sandbox, tmp_path)[0] == 0
    with duckdb.connect(database) as con:  # an incremental run does not bring them back
        assert con.execute("SELECT count(*) FROM wallet_data.members").fetchone() == (
            members - 100,)
    code, _, err = _load_members(monkeypatch, capsys, sandbox, tmp_path, "--full-refresh")
    assert code == 0, err
    with duckdb.connect(database) as con:
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM wallet_data.members"
                       ).fetchone() == (members, members)


def test_full_refresh_refuses_while_another_run_holds_the_lock(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert _load_members(monkeypatch, capsys, sandbox, tmp_path)[0] == 0
    working = tmp_path / "pipelines" / "wallet"
    before = sorted(path.relative_to(working) for path in working.rglob("*"))
    with exclusive_run(str(working), "wallet"):  # the run in progress
        code, _, err = _load_members(monkeypatch, capsys, sandbox, tmp_path,
                                     "--full-refresh")
    assert code == 1 and "another run of pipeline 'wallet' is in progress" in err
    # Before: drop() ran before the lock and deleted the running pipeline's folder.
    assert sorted(path.relative_to(working) for path in working.rglob("*")) == before
    with duckdb.connect(str(tmp_path / "wallet.duckdb")) as con:
        assert con.execute("SELECT count(*) FROM wallet_data.members").fetchone() == (
            sandbox.world.entities["members"].count,)


def test_progress_is_one_line_per_period() -> None:
    out = io.StringIO()
    progress = Progress(period=0, out=out)
    progress.watch(lambda: 12, lambda: 3)
    with progress("Extract wallet"):
        progress.update("Resources", 0, total=249)
        for table in ("members", "tiers", "members"):
            progress.update(table, inc=100)
    with progress("Load wallet"):
        progress.update("Jobs", 0, inc_total=40)
        progress.update("Jobs")
    lines = out.getvalue().splitlines()
    assert len(lines) == 6  # one per update, never one per table or counter
    assert re.fullmatch(r"\[0:00\] extract: 12 requests, 300 rows extracted, "
                        r"3/249 resources done", lines[3]), lines
    assert lines[-1].endswith("3/249 resources done, 1/40 load jobs"), lines


def test_sandbox_on_a_busy_port_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["sandbox", "--port", str(port), "--scale", "100"])
    err = capsys.readouterr().err
    assert code == 2 and f"cannot serve on port {port}" in err and "--port" in err, err
