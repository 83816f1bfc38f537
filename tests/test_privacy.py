"""Personal data: kept by default, dropped or replaced by a keyed hash that still joins."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from wallet_elt.pipelines.pipeline import run
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet.client import WalletError
from tests.conftest import new_pipeline, query, source_args

SALT = "pepper-for-tests-9f2c"
RESOURCES = ["members", "merchant_credits"]
JOIN = ("SELECT count(*) FROM {d}.members m JOIN {d}.merchant_credits c "
        "ON m.mobile_number = c.mobile_number")


def test_hashed_personal_data_hides_values_but_still_joins(sandbox: Sandbox,
                                                           tmp_path: Path) -> None:
    plain = new_pipeline(tmp_path, "plain")
    run(plain, **source_args(sandbox, resources=RESOURCES))
    hashed = new_pipeline(tmp_path / "h", "hashed")
    run(hashed, **source_args(sandbox, resources=RESOURCES, pii_policy="hash", pii_salt=SALT))

    emails = dict(query(plain, f"SELECT id, email FROM {plain.dataset_name}.members"))
    hashed_emails = dict(query(hashed, f"SELECT id, email FROM {hashed.dataset_name}.members"))
    for member_id, email in emails.items():
        expected = hmac.new(SALT.encode(), email.encode(), hashlib.sha256).hexdigest()
        assert hashed_emails[member_id] == expected
    joined = query(plain, JOIN.format(d=plain.dataset_name))[0][0]
    assert joined > 0
    assert query(hashed, JOIN.format(d=hashed.dataset_name))[0][0] == joined
    files = [p for p in (tmp_path / "h").rglob("*") if p.is_file()]
    assert not [p for p in files if SALT.encode() in p.read_bytes()], "the salt leaked"


def test_dropped_personal_data_has_no_column(sandbox: Sandbox, tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    run(pipeline, **source_args(sandbox, resources=["members"], pii_policy="keep",
                                pii_fields={"email": "drop", "birthday": "drop"}))
    columns = {name for (name,) in query(
        pipeline, "SELECT column_name FROM information_schema.columns WHERE table_name = "
                  f"'members' AND table_schema = '{pipeline.dataset_name}'")}
    assert "email" not in columns and "birthday" not in columns
    assert {"id", "first_name", "mobile_number"} <= columns


def test_hashing_without_a_salt_is_refused_clearly(sandbox: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(WalletError, match="pii_salt"):
        run(new_pipeline(tmp_path), **source_args(sandbox, resources=["members"],
                                                  pii_policy="hash"))
