"""The sandbox world: deterministic, consistent (ids, links, times, counts, sums), small at scale,
and changed by `advance` the same way every time."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest

from wallet_elt.sandbox import causes, values
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sandbox.world import (
    ALPHABET,
    DAY,
    ENTITY_DEFS,
    LINK_TARGETS,
    PAIRS,
    World,
    decode_id,
    id_expression,
    iso,
    make_id,
    parse_time,
)
from wallet_elt.sources.wallet import spec
from tests.conftest import api, start_sandbox
from tests.schema_check import validate

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
SAMPLED = ("members", "outbound_sms", "static_vouchers", "wallet_page_views", "subscribers",
           "ledger_entries", "employees", "tickets", "merchant_credit_history")


def sample(entity: Any, n: int = 200) -> np.ndarray:
    return np.unique(np.linspace(0, entity.count - 1, min(n, entity.count)).astype(np.int64))


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=3, scale=5000, now=NOW)


# Determinism -----------------------------------------------------------------------------------
def test_same_seed_same_records_different_seed_different_records() -> None:
    a, b = World(seed=5, scale=3000, now=NOW), World(seed=5, scale=3000, now=NOW)
    c = World(seed=6, scale=3000, now=NOW)
    assert a.total_records() == b.total_records()
    differs = False
    for name in ENTITY_DEFS:
        idx = sample(a.entities[name], 50)
        assert a.entities[name].records(idx) == b.entities[name].records(idx), name
        if c.entities[name].records(idx) != a.entities[name].records(idx):
            differs = True
    assert differs
    assert a.merchant_id == b.merchant_id != c.merchant_id
    assert not np.array_equal(a.entities["members"].created, c.entities["members"].created)


# Ids -------------------------------------------------------------------------------------------
def test_make_id_round_trips() -> None:
    for prefix, index, length in ((124, 0, 10), (300, 61, 10), (130, 12345678, 12)):
        value = make_id(prefix, index, length)
        assert len(value) == length and decode_id(value) == (prefix, index)
    assert decode_id("short") is None and decode_id("abc-defghi") is None


def test_compiled_ids_equal_make_id() -> None:
    for length in (10, 12, 9):
        spelled = eval(f"lambda i: {id_expression(200, 'i % 1000003', length)}",
                       {"P": PAIRS})
        for index in (0, 1, 61, 62, 3843, 3844, 238327, 10**6, 10**9, 62 ** 7 - 1):
            assert spelled(index) == make_id(200, index % 1000003, length)


def test_records_of_another_schema_share_the_entitys_arrays(world: World) -> None:
    tiers, members = world.entities["membership_tiers"], world.entities["members"]
    idx = np.arange(tiers.count)
    own = tiers.records(idx)
    counted = tiers.records(idx, "WTMembershipTierWithMemberCount")
    assert [{k: r[k] for k in own[0]} for r in counted] == own
    assert [r["memberCount"] for r in counted] == [
        len(members.select(link=("membershipTierID", i))) for i in idx.tolist()]
    assert sum(r["memberCount"] for r in counted) == members.count
    assert tiers.builder("WTMembershipTierWithMemberCount") is tiers.builder(
        "WTMembershipTierWithMemberCount")


@pytest.mark.parametrize("name", sorted(ENTITY_DEFS))
def test_ids_alphanumeric_of_entity_length_and_unique(world: World, name: str) -> None:
    entity = world.entities[name]
    ids = [r["id"] for r in entity.records(np.arange(entity.count))]
    assert len(set(ids)) == len(ids) == entity.count
    assert all(len(i) == entity.definition.id_length and set(i) <= set(ALPHABET) for i in ids)
    assert entity.definition.id_length in (10, 12)
    assert all(world.find(name, i) == n for n, i in enumerate(ids[:50]))


def test_ids_do_not_collide_across_entities(world: World) -> None:
    seen: dict[str, str] = {}
    for name, entity in world.entities.items():
        for record in entity.records(sample(entity, 30)):
            assert seen.setdefault(record["id"], name) == name


# Links -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(n for n, d in ENTITY_DEFS.items() if d.links))
def test_foreign_keys_resolve(world: World, name: str) -> None:
    entity = world.entities[name]
    for record in entity.records(sample(entity)):
        for field, target in entity.definition.links.items():
            index = world.find(target, record[field])
            assert index is not None, (name, field, record[field])
            assert world.entities[target].record(index)["id"] == record[field]


# Constraints -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(n for n, d in ENTITY_DEFS.items() if d.schema))
def test_records_respect_their_schemas_constraints(world: World, name: str) -> None:
    """Types, bounds, lengths, enums and formats of the entity's own schema, every field."""
    entity = world.entities[name]
    schema = spec.component(entity.definition.schema)
    errors = [e for record in entity.records(sample(entity, 60))
              for e in validate(record, schema, record["id"])]
    assert not errors, errors[:10]


def test_the_constraints_the_issue_cites(world: World) -> None:
    books = world.entities["link_books"]  # LinkBook.orderNumber: minimum 1
    assert min(b["orderNumber"] for b in books.records(np.arange(books.count))) >= 1
    designs = world.entities["payment_designs"]
    assert max(d["borderRadius"] for d in designs.records(np.arange(designs.count))) <= 20
    lists = world.entities["imported_lists"]
    for record in lists.records(np.arange(lists.count)):
        assert len(record["phoneNumberID"]) == 10
        assert world.find("phone_numbers", record["phoneNumberID"]) is not None


@pytest.mark.parametrize("name", SAMPLED)
def test_link_named_fields_resolve_wherever_they_appear(world: World, name: str) -> None:
    """A field named like a link (`phoneNumberID`, `campaignID`) names a real record, also in
    entities that do not declare the link."""
    entity = world.entities[name]
    for record in entity.records(sample(entity, 50)):
        for field, value in record.items():
            if field in LINK_TARGETS and isinstance(value, str):
                assert world.find(LINK_TARGETS[field], value) is not None, (name, field, value)


# Times -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SAMPLED)
def test_created_not_after_updated_and_not_in_future(world: World, name: str) -> None:
    entity = world.entities[name]
    assert np.all(entity.created <= entity.updated)
    assert np.all(np.diff(entity.created) >= 0)  # creation order = index order
    assert entity.updated.max() <= world.now
    for record in entity.records(sample(entity)):
        assert record["createdAt"] <= record["updatedAt"]
        assert parse_time(record["createdAt"]) <= world.now


# Counts and sums against lists, over HTTP ------------------------------------------------------
def _window(world: World) -> tuple[str, str]:
    return iso(world.now - 200 * DAY), iso(world.now - 20 * DAY)


def _members(client: httpx.Client, archived: bool) -> list[dict[str, Any]]:
    body = {"pageNum": 1, "pageSize": 1000, "searchKey": "name", "searchValue": "x",
            "isArchiveIncluded": archived}
    response = client.post("/v2/membership/member/page", json=body)
    assert response.status_code == 200
    records = response.json()
    assert len(records) < 1000
    return records


def _in_window(records: list[dict[str, Any]], start: str, end: str) -> list[dict[str, Any]]:
    lo, hi = parse_time(start), parse_time(end)
    return [r for r in records if lo <= parse_time(r["createdAt"]) < hi]


def test_sms_count_equals_page_list(shared_sandbox: Sandbox) -> None:
    world = shared_sandbox.world
    phone = world.entities["phone_numbers"].record(1)["id"]
    start, end = _window(world)
    window = {"startDate": start, "endDate": end}
    with api(shared_sandbox) as client:
        count = client.get(f"/v2/sms/outbound/count/{phone}", params=window).json()["count"]
        page = client.get(f"/v2/sms/outbound/page/{phone}",
                          params={**window, "pageNum": 1, "pageSize": 1000}).json()
        everything = client.get(f"/v2/sms/outbound/count/{phone}").json()["count"]
    assert 0 < count < everything
    assert count == page["total"] == len(page["results"])
    assert all(r["phoneNumberID"] == phone for r in page["results"])


def test_member_count_equals_member_list(shared_sandbox: Sandbox) -> None:
    with api(shared_sandbox) as client:
        count = client.get("/v2/membership/member/count").json()
        active = _members(client, archived=False)
        everyone = _members(client, archived=True)
    value = count["count"] if isinstance(count, dict) else count
    assert len(active) < len(everyone)
    # The count route offers no isArchiveIncluded, so it counts every member, archived too.
    assert value == len(everyone)


def test_dashboard_member_count_equals_members_created_in_window(
        shared_sandbox: Sandbox) -> None:
    world = shared_sandbox.world
    start, end = _window(world)
    with api(shared_sandbox) as client:
        count = client.get("/v2/dashboard/count/members",
                           params={"startDateTime": start, "endDateTime": end}).json()["count"]
        created = _in_window(_members(client, archived=True), start, end)
        active = _in_window(_members(client, archived=False), start, end)
    assert count == len(created) > len(active)


def test_daily_analytics_sum_to_members_created(shared_sandbox: Sandbox) -> None:
    world = shared_sandbox.world
    start, end = _window(world)
    with api(shared_sandbox) as client:
        days = client.get("/v2/analytics/membership/member/count",
                          params={"startDate": start, "endDate": end, "locale": "en-US",
                                  "timezone": "UTC"}).json()
        created = _in_window(_members(client, archived=True), start, end)
    assert days and len({d["date"] for d in days}) == len(days)
    value = next(k for k in days[0] if k != "date")
    assert sum(d[value] for d in days) == len(created) > 0
    per_day: dict[str, int] = {}
    for record in created:
        per_day[record["createdAt"][:10]] = per_day.get(record["createdAt"][:10], 0) + 1
    assert {d["date"]: d[value] for d in days} == per_day


def test_dimension_analytics_sum_to_campaigns_created(shared_sandbox: Sandbox) -> None:
    world = shared_sandbox.world
    start, end = iso(world.now - 700 * DAY), iso(world.now)
    entity = world.entities["static_voucher_campaigns"]
    indices = entity.select(window=(parse_time(start), parse_time(end)), include_archived=True)
    records = entity.records(indices)
    with api(shared_sandbox) as client:
        groups = client.get("/v2/analytics/campaigns/count/employee",
                            params={"startDate": start, "endDate": end}).json()
    assert sum(g["count"] for g in groups) == len(records) > 0
    expected: dict[str, int] = {}
    for record in records:
        expected[record["employeeID"]] = expected.get(record["employeeID"], 0) + 1
    assert {g["employeeID"]: g["count"] for g in groups} == expected


# Scale -----------------------------------------------------------------------------------------
def test_a_million_records_are_cheap() -> None:
    code = (
        "import json, resource, time\n"
        "from wallet_elt.sandbox.world import World\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "t = time.perf_counter()\n"
        "w = World(seed=1, scale=1_000_000)\n"
        "elapsed = time.perf_counter() - t\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "rec = w.entities['outbound_sms'].record(w.entities['outbound_sms'].count - 1)\n"
        "print(json.dumps({'elapsed': elapsed, 'total': w.total_records(),\n"
        "                  'growth_kb': after - before, 'id': rec['id']}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["total"] >= 1_000_000
    assert result["elapsed"] < 10
    assert result["growth_kb"] < 400 * 1024
    assert len(result["id"]) == 10


# advance ---------------------------------------------------------------------------------------
ADVANCE = {"minutes": 60, "create": 5, "update": 3, "archive": 2, "entities": ["members"]}


def _advance_over_http(box: Sandbox) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                              dict[str, Any]]:
    with api(box) as client:
        before = _members(client, archived=True)
        response = client.post("/_sandbox/advance", json=ADVANCE)
        assert response.status_code == 200
        after = _members(client, archived=True)
    return before, after, response.json()


def test_advance_over_http_changes_what_it_says() -> None:
    box = start_sandbox()
    try:
        old_now = box.world.now
        before, after, result = _advance_over_http(box)
    finally:
        box.stop()
    assert box.world.now == old_now + 3600
    assert result["now"] == iso(old_now + 3600)
    assert result["changed"] == {"members": {"created": 5, "updated": 3, "archived": 2}}
    assert len(after) == len(before) + 5
    stamp = iso(box.world.now - 1)
    old = {r["id"]: r for r in before}
    new = {r["id"]: r for r in after}
    assert set(old) < set(new)
    created = [r for i, r in new.items() if i not in old]
    assert all(r["createdAt"] == r["updatedAt"] == stamp and r["isActive"] for r in created)
    touched = [i for i in old if new[i]["updatedAt"] != old[i]["updatedAt"]]
    assert len(touched) == 5
    assert all(new[i]["updatedAt"] == stamp for i in touched)
    newly_archived = [i for i in old if old[i]["isActive"] and not new[i]["isActive"]]
    assert len(newly_archived) == 2 and set(newly_archived) <= set(touched)
    assert sum(not r["isActive"] for r in after) == sum(not r["isActive"] for r in before) + 2
    untouched = set(old) - set(touched)
    assert all(new[i] == old[i] for i in untouched)


def test_advance_is_deterministic_over_http() -> None:
    results = []
    for _ in range(2):
        box = Sandbox(World(seed=11, scale=2000, now=NOW))
        box.start()
        try:
            before, after, _ = _advance_over_http(box)
        finally:
            box.stop()
        old = {r["id"]: r for r in before}
        results.append(sorted(r["id"] for r in after if old.get(r["id"]) != r))
    assert results[0] == results[1] and len(results[0]) == 10


def test_advance_python_api() -> None:
    a, b = World(seed=4, scale=2000, now=NOW), World(seed=4, scale=2000, now=NOW)
    members = a.entities["members"]
    count = members.count
    out_a = a.advance(minutes=30, create=4, update=6, archive=1, entities=["members", "tickets"])
    out_b = b.advance(minutes=30, create=4, update=6, archive=1, entities=["members", "tickets"])
    assert out_a == out_b
    assert a.now == NOW.timestamp() + 1800
    assert members.count == count + 4
    for name in ("members", "tickets"):
        ea, eb = a.entities[name], b.entities[name]
        assert np.array_equal(ea.updated, eb.updated) and np.array_equal(ea.active, eb.active)
        assert int((ea.revision > 0).sum()) == 7
        assert int((ea.updated == a.now - 1).sum()) == 7 + 4
    # Entities not named are untouched; the default changes only the share-scaled entities.
    assert a.entities["outbound_sms"].count == World(seed=4, scale=2000, now=NOW
                                                     ).entities["outbound_sms"].count
    c = World(seed=4, scale=2000, now=NOW)
    c.advance(create=1)
    assert c.entities["outbound_sms"].count == a.entities["outbound_sms"].count + 1
    assert c.entities["payment_designs"].count == a.entities["payment_designs"].count


# Causality and stability -----------------------------------------------------------------------
def _snapshot(world: World) -> dict[str, dict[str, dict[str, Any]]]:
    return {name: {r["id"]: r for r in entity.records(np.arange(entity.count))}
            for name, entity in world.entities.items()}


def test_advance_changes_only_what_it_says_and_no_record_changes_parent() -> None:
    world = World(seed=9, scale=2000, now=NOW)
    before = _snapshot(world)
    result = world.advance(minutes=60, create=20, update=10, archive=2)
    after = _snapshot(world)
    stamp = iso(world.now - 1)
    assert result["caused"], "the changes cause others"
    for name, records in before.items():
        links = world.entities[name].definition.links
        touched = set(result["touched"].get(name, []))
        assert touched <= set(records)
        for record_id, old in records.items():
            new = after[name][record_id]
            assert {f: new[f] for f in links} == {f: old[f] for f in links}, (name, record_id)
            if record_id in touched:
                assert new["updatedAt"] == stamp and new != old, (name, record_id)
            else:
                assert new == old, (name, record_id)
        created = set(after[name]) - set(records)
        expected = result["changed"].get(name, {}).get("created", 0) + result["caused"].get(
            name, {}).get("created", 0)
        assert len(created) == expected, name


def test_new_parents_leave_existing_children_where_they_are() -> None:
    world = World(seed=9, scale=2000, now=NOW)
    campaigns, vouchers = world.entities["static_voucher_campaigns"], world.entities[
        "static_vouchers"]

    def children() -> dict[str, set[str]]:
        return {c["id"]: {v["id"] for v in vouchers.records(
            vouchers.select(link=("campaignID", i)))}
            for i, c in enumerate(campaigns.records(np.arange(campaigns.count)))}

    old = children()
    world.advance(create=20, entities=["static_voucher_campaigns"])
    new = children()
    assert len(new) == len(old) + 20
    assert {k: new[k] for k in old} == old


@pytest.mark.parametrize("rule", causes.RULES, ids=lambda r: f"{r.entity}-{r.when}-{r.target}")
def test_each_causal_rule_propagates(rule: causes.Rule) -> None:
    world = World(seed=9, scale=2000, now=NOW)
    target = world.entities[rule.target]
    count = target.count
    if rule.when == "created":
        result = world.advance(minutes=10, create=1, entities=[rule.entity])
        source = world.entities[rule.entity]
        record = source.record(source.count - 1)
    else:
        result = world.advance(minutes=10, update=1, entities=[rule.entity])
        record = None
    stamp = iso(world.now - 1)
    if rule.effect == "creates":
        assert target.count == count + 1
        assert target.record(target.count - 1)["createdAt"] == stamp
        assert result["caused"][rule.target]["created"] >= 1
        return
    assert record is not None and rule.link
    parent_id = record[rule.link]
    before = World(seed=9, scale=2000, now=NOW).entities[rule.target]
    index = world.find(rule.target, parent_id)
    assert index is not None
    assert target.record(index)["updatedAt"] == stamp
    assert target.record(index) != before.record(index)
    assert parent_id in result["touched"][rule.target]


def test_a_points_history_row_changes_its_members_points() -> None:
    world = World(seed=9, scale=2000, now=NOW)
    history = world.entities["member_points_history"]
    world.advance(minutes=10, create=1, entities=["member_points_history"])
    member_id = history.record(history.count - 1)["memberID"]
    index = world.find("members", member_id)
    assert index is not None
    old = World(seed=9, scale=2000, now=NOW).entities["members"].record(index)
    new = world.entities["members"].record(index)
    assert new["pointsAccrued"] != old["pointsAccrued"]
    assert new["updatedAt"] == iso(world.now - 1) > old["updatedAt"]


# Consistent states and resolving ids -----------------------------------------------------------
def _all(world: World, name: str) -> list[dict[str, Any]]:
    entity = world.entities[name]
    return entity.records(np.arange(entity.count))


def test_states_agree_with_each_other(world: World) -> None:
    sms = _all(world, "outbound_sms")
    delivered = [m for m in sms if m["status"] == "delivered"]
    assert 0 < len(delivered) < len(sms)
    assert all(m.get("errorCode") is None and m["deliveredAt"] for m in delivered)
    assert all(m["errorCode"] for m in sms if m["status"] in ("failed", "undelivered"))
    vouchers = _all(world, "static_vouchers")
    # (the reference requires refund fields on every voucher: empty where there was none)
    refunded = [v for v in vouchers if v.get("refundedAmount")]
    assert refunded and all(v["isRedeemed"] for v in refunded)
    assert not any(v.get("redeemedTransactionID") for v in vouchers if not v["isRedeemed"])
    ledger = {e["id"]: e for e in _all(world, "ledger_entries")}
    refunds = [e for e in ledger.values() if e["transactionType"] == "refund"]
    assert refunds
    for entry in ledger.values():
        refunded_id = entry.get("refundedLedgerEntryID")
        assert (refunded_id is not None) == (entry["transactionType"] == "refund")
        if refunded_id:
            assert ledger[refunded_id]["transactionType"] == "redemption"


@pytest.mark.parametrize("name,field", [("ledger_entries", "registerID"),
                                        ("ledger_entries", "paymentObjectID"),
                                        ("ledger_entries", "parentObjectID"),
                                        ("static_vouchers", "registerID"),
                                        ("outbound_sms", "paymentObjectBroadcastID"),
                                        ("tickets", "recipientMemberID")])
def test_id_fields_name_real_records(world: World, name: str, field: str) -> None:
    target = values.FIELD_TARGETS[field]
    found = [r[field] for r in _all(world, name) if r.get(field)]
    assert found and all(world.find(target, v) is not None for v in found), (name, field)
