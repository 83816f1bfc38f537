"""The API key never appears in logs, output, traces, state, load packages or the warehouse."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pipelines.pipeline import run
from sandbox.server import Sandbox
from sandbox.world import World
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
