"""The `wallet-elt` command as an operator uses it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from sandbox.server import Sandbox
from sources.wallet.catalog import ENTRIES

CLI = [sys.executable, "-m", "pipelines.cli"]
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
    assert result.returncode == 1
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
