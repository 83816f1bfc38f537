"""The API key never appears in logs, output, traces, state, load packages or the warehouse."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from wallet_elt.pipelines.pipeline import run
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sandbox.world import World
from wallet_elt.sources.wallet.client import AuthRejected, WalletClient
from tests.conftest import new_pipeline, source_args

SECRET = "wk_live_RECOGNISABLE_7f3a9c2e41"
RESOURCES = ["members", "phone_numbers", "phone_number_outbound_sms_pages",
             "ledger_transactions", "member_counts", "analytics_membership_member_count"]


def test_the_api_key_is_nowhere_after_a_load(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # The key comes the way operators give it (environment), so dlt resolves it as a secret.
    monkeypatch.setenv("WALLET_API_KEY", SECRET)
    monkeypatch.delenv("SOURCES__WALLET__API_KEY", raising=False)
    box = Sandbox(World(seed=3, scale=1000), api_key=SECRET)
    box.start()
    caplog.set_level(logging.DEBUG)
    try:
        pipeline = new_pipeline(tmp_path)
        args = source_args(box, resources=RESOURCES)
        del args["api_key"]
        summary = run(pipeline, **args)
    finally:
        box.stop()
    assert summary.rows["members"] > 0
    captured = capsys.readouterr()
    assert SECRET not in caplog.text + captured.out + captured.err
    assert SECRET not in repr(pipeline.last_trace.asdict()) + str(summary.load_info)
    assert SECRET not in repr(pipeline.state)
    leaks = [path for path in tmp_path.rglob("*") if path.is_file()
             and SECRET.encode() in path.read_bytes()]
    assert not leaks, f"the key was written to {leaks}"


def test_a_key_with_a_trailing_newline_works(sandbox: Sandbox, tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    summary = run(pipeline, **source_args(sandbox, resources=["member_counts"],
                                          api_key=f"  {sandbox.api_key}\n"))
    assert summary.rows == {"member_counts": 1}
    assert summary.retries == 0


def test_a_key_with_whitespace_inside_is_refused_before_any_request(
        sandbox: Sandbox, tmp_path: Path) -> None:
    broken = f"{sandbox.api_key[:5]}\n{sandbox.api_key[5:]}"
    with pytest.raises(AuthRejected, match="whitespace or control characters") as refused:
        run(new_pipeline(tmp_path), **source_args(sandbox, resources=["member_counts"],
                                                  api_key=broken))
    assert broken not in str(refused.value) and sandbox.api_key not in str(refused.value)
    assert sandbox.stats()["requests"] == 0


def test_plain_http_beyond_this_machine_warns_once_without_the_key(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    # Building a client sends nothing: no request leaves for these hosts.
    for url in ("https://api.wall.et", "http://127.0.0.1:9", "http://localhost:9",
                "http://[::1]:9", "http://wallet.example.test", "http://wallet.example.test"):
        WalletClient(url, SECRET).close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "plain http://" in warnings[0] and "wallet.example.test" in warnings[0]
    assert SECRET not in caplog.text
