"""The soak's churn mode (scripts/soak_churn.py) runs one short cycle end to end: records
change while the lists are paged, and the quiet run after it leaves nothing missing,
duplicated or stale. The soak itself runs for minutes outside the test suite."""

from __future__ import annotations

import pytest

from scripts.soak import main


def test_one_churn_cycle_ends_equal_to_truth(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--churn", "--minutes", "0", "--scale", "500", "--page-size", "20"]) == 0
    figures = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert figures["cycles"] == "1" and int(figures["records_changed_during_runs"]) > 0
    assert [figures[f"{kind}_after_quiet_run"] for kind in
            ("missing", "duplicated", "extra", "stale")] == ["0"] * 4
