"""Personal data: kept by default, dropped or replaced by a keyed hash that still joins,
wherever it sits (nested objects included); completed load packages keep no rows on disk."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
from pathlib import Path
from typing import Any

import dlt
import orjson
import pytest

from wallet_elt.pipelines.pipeline import run
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet.client import WalletError
from wallet_elt.sources.wallet import sensitive
from wallet_elt.sources.wallet.columns import column_name
from wallet_elt.sources.wallet.privacy import PrivacyPolicy
from tests.conftest import new_pipeline, query, source_args
from tests.leaks import files_containing, leaked, warehouse_strings, world_values
from tests.test_secrets import REFERENCE_SECRETS

SALT = "pepper-for-tests-9f2c"
RESOURCES = ["members", "merchant_credits"]
JOIN = ("SELECT count(*) FROM {d}.members m JOIN {d}.merchant_credits c "
        "ON m.mobile_number = c.mobile_number")
# Every personal field of the API reference, found by reading its names and descriptions (not
# through the classifier): names, emails, phone numbers, street addresses, birthdays, IPs,
# usernames, pictures of people and their social handles.
REFERENCE_PERSONAL = {
    "firstName", "lastName", "callerName", "actionByEmployeeName", "actionOnEmployeeName",
    "email", "emailAddress", "primaryEmailAddress", "recipientEmailAddress",
    "emailVerified",  # untyped: the reference does not say it is a flag, so it may be the email
    "phoneNumber", "mobileNumber", "mobilePhoneNumber", "cellPhone", "cellPhoneNumber",
    "CellPhoneNumber", "claimedByPhoneNumber", "recipientPhoneNumber", "primaryPhoneNumber",
    "toCellPhone", "to", "from", "fromLocalized",  # SMS ends
    "whatsApp", "primaryWhatsApp",
    "address1", "address2", "streetAddress1", "streetAddress2",
    "birthday", "ip", "username",
    "profilePictureURL", "avatarURL",
    "facebook", "instagram", "linkedIn", "twitter", "youTube",  # a business card's handles
}
FULL_LOAD_ARGS = {"series_window_days": 30, "series_backfill_days": 800}  # as full_load's


def keyed(value: str) -> str:
    return hmac.new(SALT.encode(), value.encode(), hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
def hashed_load(shared_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
                ) -> dlt.Pipeline:
    """Every resource loaded from the shared sandbox with personal data hashed."""
    pipeline = new_pipeline(tmp_path_factory.mktemp("hashed"))
    run(pipeline, **source_args(shared_sandbox, pii_policy="hash", pii_salt=SALT,
                                **FULL_LOAD_ARGS))
    return pipeline


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


def test_every_personal_field_of_the_reference_is_classified_as_one() -> None:
    assert sensitive.PERSONAL_FIELDS == REFERENCE_PERSONAL


def test_hashed_full_load_holds_no_personal_value_and_hashes_join(
        full_load: tuple[dlt.Pipeline, Any], hashed_load: dlt.Pipeline,
        shared_sandbox: Sandbox) -> None:
    by_field = world_values(shared_sandbox)
    plain = leaked(warehouse_strings(full_load[0]), by_field, REFERENCE_PERSONAL,
                   hidden=REFERENCE_SECRETS)
    # The same search finds them in a load that keeps them, nested ones included.
    assert len(plain) > 1000
    assert any(place[1] == "from_employee" for places in plain.values() for place in places)
    hashed = warehouse_strings(hashed_load)
    found = leaked(hashed, by_field, REFERENCE_PERSONAL, hidden=REFERENCE_SECRETS)
    assert not found, f"personal data loaded raw: {sorted(found.items())[:5]}"
    # Same input, same hash, in every place the value sat: joins across tables still work.
    names = REFERENCE_PERSONAL | {column_name(field) for field in REFERENCE_PERSONAL}
    for value, places in plain.items():
        expected = {place for place in places if place[2] in names}
        assert expected <= hashed.get(keyed(value), set()), value
    exclusive = leaked({value: set() for texts in by_field.values() for value in texts},
                       by_field, REFERENCE_PERSONAL, hidden=REFERENCE_SECRETS)
    on_disk = files_containing(Path(hashed_load.pipelines_dir), [*exclusive, SALT])
    assert not on_disk, f"personal data or the salt on disk: {sorted(on_disk.items())[:3]}"


def test_drop_and_per_field_overrides_reach_nested_objects(sandbox: Sandbox,
                                                           tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    run(pipeline, **source_args(
        sandbox, resources=["employees", "employee_messages"], pii_policy="hash",
        pii_salt=SALT,
        pii_fields={"email": "drop", "lastName": "keep", "sessionToken": "keep"}))
    dataset = pipeline.dataset_name
    columns = {name for (name,) in query(
        pipeline, "SELECT column_name FROM information_schema.columns WHERE table_name = "
                  f"'employees' AND table_schema = '{dataset}'")}
    assert "email" not in columns and "session_token" not in columns  # a secret stays out
    senders = [orjson.loads(sender) for (sender,) in query(
        pipeline, f"SELECT from_employee FROM {dataset}.employee_messages")]
    assert senders
    for sender in senders:
        assert "email" not in sender and "sessionToken" not in sender and "cfuvid" not in sender
        assert sender["lastName"].startswith("lastName ")  # kept, as pii_fields says
        assert len(sender["firstName"]) == 64  # hashed, as the policy says
    first_names = {name for (name,) in query(
        pipeline, f"SELECT first_name FROM {dataset}.employees")}
    assert first_names and all(len(name) == 64 for name in first_names)


def test_completed_packages_keep_no_rows_on_disk(sandbox: Sandbox, tmp_path: Path) -> None:
    pipeline = new_pipeline(tmp_path)
    load_ids: list[str] = []
    for _ in range(2):
        summary = run(pipeline, **source_args(sandbox, resources=["members", "employees"]))
        assert summary.load_info is not None
        load_ids += summary.load_info.loads_ids
    assert load_ids
    by_field = world_values(sandbox)
    loaded = by_field["email"] | by_field["firstName"] | by_field["lastName"]
    rows = {value for (value,) in query(
        pipeline, f"SELECT email FROM {pipeline.dataset_name}.members")}
    assert rows and rows <= loaded  # the rows are in the warehouse ...
    on_disk = files_containing(tmp_path / "pipelines", loaded)
    assert not on_disk, f"row data kept on disk: {sorted(on_disk)[:3]}"  # ... and only there
    assert pipeline.last_trace is not None and pipeline.last_trace.steps
    info = subprocess.run(
        [sys.executable, "-m", "dlt", "pipeline", "--pipelines-dir", str(tmp_path / "pipelines"),
         pipeline.pipeline_name, "info"], capture_output=True, text=True, check=True)
    assert f"Has {len(load_ids)} completed load packages" in info.stdout
    assert all(load_id in info.stdout for load_id in load_ids)


def test_fields_the_reference_does_not_declare_are_judged_by_name() -> None:
    # An API that grew fields since the reference was vendored: a token, a nested email.
    policy = PrivacyPolicy("hash", salt=SALT)
    rows = policy.apply([{"id": "r1", "refreshToken": "tok-1", "sandboxDriftField": "new",
                          "owner": {"ownerEmail": "a@example.com", "isOwnerEmailShown": True},
                          "contacts": [{"backupPhone": "+15551230000"}]}])
    assert rows == [{"id": "r1", "sandboxDriftField": "new",
                     "owner": {"ownerEmail": keyed("a@example.com"), "isOwnerEmailShown": True},
                     "contacts": [{"backupPhone": keyed("+15551230000")}]}]
    kept = PrivacyPolicy().apply([{"id": "r2", "sessionSecret": "s", "ownerEmail": "b@x.io"}])
    assert kept == [{"id": "r2", "ownerEmail": "b@x.io"}]
