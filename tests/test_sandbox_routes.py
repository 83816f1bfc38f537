"""The sandbox answers every read route of the spec with a valid request, the way the spec says.

Real HTTP on loopback against the session sandbox (read-only) or a sandbox of a test's own.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from wallet_elt.sandbox.routes import build_routes
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sandbox.world import DAY, World, iso, parse_time
from wallet_elt.sources.wallet import spec
from tests.conftest import api
from tests.schema_check import is_typed, validate

ROUTES = build_routes()


# Helpers ---------------------------------------------------------------------------------------
def first_id(world: World, entity: str) -> str:
    return world.entities[entity].records(np.array([0]))[0]["id"]


def id_entity(route: Any) -> str:
    """The entity whose id fills the route's path parameter."""
    return route.parent_entity or route.entity


def full_window(world: World) -> tuple[str, str]:
    return iso(world.now - 800 * DAY), iso(world.now + DAY)


def build_request(world: World, route: Any) -> dict[str, Any]:
    """httpx.request kwargs for a valid request to `route` (read from the reference by the
    connector's reader, not the sandbox's)."""
    op = spec.operation(route.key)
    parent_id = first_id(world, id_entity(route))
    path = op.path
    for name in op.path_params:
        path = path.replace("{" + name + "}", parent_id)
    start, end = full_window(world)
    values: dict[str, Any] = {
        "startDate": start, "endDate": end, "startDateTime": start, "endDateTime": end,
        "broadcastScheduledStartAt": start, "broadcastScheduledEndAt": end,
        "locale": "en-US", "timezone": "UTC", "pageNum": 1, "pageSize": 50,
        "pagenum": 1, "pagesize": 50, "id": parent_id, "searchKey": "name",
        "searchValue": "x", "key": "x", "message": "hello", "routingIDs": ["r1"],
        "uniquePostingIDs": ["u1"], "memberID": first_id(world, "members"),
        "phoneNumber": "+15550000000", "toPhoneNumber": "+15550000000",
    }
    params: dict[str, Any] = {}
    for name in op.query_params:
        if name in op.required_query_params or name in values and name in (
                "startDate", "endDate", "startDateTime", "endDateTime", "pageNum",
                "pageSize", "pagenum", "pagesize"):
            params[name] = values.get(name, "x")
    kwargs: dict[str, Any] = {"method": op.method, "url": path, "params": params}
    if op.body_schema:
        body_schema = spec.component(op.body_schema)
        body = {name: values[name] for name in op.body_fields if name in values}
        for name in body_schema.get("required", []):
            body.setdefault(name, "x")
        kwargs["json"] = body
    return kwargs


def test_validator_can_fail() -> None:
    schema = {"type": "object", "required": ["a"],
              "properties": {"a": {"type": "integer"}, "b": {"type": "array",
                                                              "items": {"type": "string"}}}}
    assert validate({"a": 1, "b": ["x"]}, schema) == []
    assert validate({"b": []}, schema)
    assert validate({"a": "1"}, schema)
    assert validate({"a": 1, "b": [1]}, schema)
    assert validate(None, schema)
    assert validate(None, {**schema, "nullable": True}) == []
    assert validate(3, {}) == []
    bounded = {"type": "object", "properties": {
        "n": {"type": "integer", "minimum": 1, "maximum": 20},
        "id": {"type": "string", "minLength": 10, "maxLength": 10},
        "kind": {"type": "string", "enum": ["a", "b"]},
        "at": {"type": "string", "format": "date-time"}}}
    assert validate({"n": 1, "id": "0123456789", "kind": "a",
                     "at": "2026-01-01T00:00:00.000Z"}, bounded) == []
    for bad in ({"n": 0}, {"n": 21}, {"id": "+15550000000"}, {"id": "short"}, {"kind": "c"},
                {"at": "2026-01-01"}):
        assert validate(bad, bounded), bad


# Every route -----------------------------------------------------------------------------------

@pytest.mark.parametrize("route", ROUTES, ids=[route.key for route in ROUTES])
def test_every_route_answers_a_valid_request_per_spec(shared_sandbox: Sandbox, route) -> None:
    world = shared_sandbox.world
    with api(shared_sandbox) as client:
        response = client.request(**build_request(world, route))
    assert response.status_code == 200, response.text[:500]
    payload = response.json()
    schema = spec.operation(route.key).response
    if is_typed(schema):
        errors = validate(payload, schema)
        assert not errors, errors[:10]
    elif named := spec.record_schema_names().get(route.key):
        # Untyped in the reference, yet its endpoints table names the record schema.
        records = payload if isinstance(payload, list) else [payload]
        errors = [e for n, record in enumerate(records[:20])
                  for e in validate(record, spec.component(named), f"$[{n}]")]
        assert not errors, errors[:10]


def test_by_id_routes_typed_otherwise_answer_the_same_record(shared_sandbox: Sandbox) -> None:
    """A by-id route whose schema is not its entity's answers that entity's record, built of
    the route's schema: same id, times and flags as the entity's record."""
    world = shared_sandbox.world
    with api(shared_sandbox) as client:
        for path, entity, schema in (("/v2/ticket/{}", "tickets", "WTTicket"),
                                     ("/v2/pos/mobile/member/{}", "members", "Member"),
                                     ("/v2/linkBook/{}", "link_books", "WTQuickLink")):
            own = world.entities[entity].records(np.array([2]))[0]
            answer = client.get(path.format(own["id"])).json()
            assert {k: answer[k] for k in ("id", "createdAt", "updatedAt", "isActive")} == {
                k: own[k] for k in ("id", "createdAt", "updatedAt", "isActive")}
            assert validate(answer, spec.component(schema)) == []
            assert client.get(path.format("ZZZZZZZZZZ")).status_code == 404


def test_member_count_is_the_tiers_members(sandbox: Sandbox) -> None:
    world = sandbox.world
    members = world.entities["members"]
    with api(sandbox) as client:
        before = client.get("/v2/membership/tier/allWithMemberCount").json()
        world.advance(create=7, entities=["members"])
        after = client.get("/v2/membership/tier/allWithMemberCount").json()
    for tiers in (before, after):
        assert sum(t["memberCount"] for t in tiers) <= members.count
    for tier in after:
        index = world.find("membership_tiers", tier["id"])
        assert tier["memberCount"] == len(members.select(link=("membershipTierID", index)))
    assert sum(t["memberCount"] for t in after) == sum(t["memberCount"] for t in before) + 7


def test_scalar_answers_follow_the_spec_type(shared_sandbox: Sandbox) -> None:
    world = shared_sandbox.world
    document = first_id(world, "documents")
    start, end = full_window(world)
    with api(shared_sandbox) as client:
        url = client.get(f"/v2/employee/file/download/{document}").json()
        missing = client.get("/v2/employee/file/download/ZZZZZZZZZZ")
        inside = client.post("/v2/pos/infogenesis/campaign",
                             json={"startDateTime": start, "endDateTime": end}).json()
        empty = client.post("/v2/pos/infogenesis/campaign",
                            json={"startDateTime": start, "endDateTime": start}).json()
    assert isinstance(url, str) and url.endswith(f"/{document}")
    assert missing.status_code == 404
    assert inside is True and empty is False


# Auth ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"access-token": "wrong-key"}], ids=["none", "wrong"])
def test_auth_is_required(shared_sandbox: Sandbox, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=shared_sandbox.base_url, headers=headers) as client:
        response = client.get("/v2/payment/design/all")
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["name"] == "AuthError"
    assert "message" in body["error"]


# 422 -------------------------------------------------------------------------------------------
LEDGER = "/v2/pos/ledger/transactions/all"


def ledger_params(world: World, **overrides: Any) -> dict[str, Any]:
    start, end = full_window(world)
    params = {"startDateTime": start, "endDateTime": end, "pageNum": 1, "pageSize": 10}
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


@pytest.mark.parametrize("overrides", [
    {"startDateTime": None},
    {"pageNum": 0},
    {"pageNum": "abc"},
    {"pageSize": -3},
    {"startDateTime": "not-a-date"},
    {"endDateTime": "2024-13-45T00:00:00Z"},
    {"startDateTime": "2024-02-01T00:00:00Z", "endDateTime": "2024-01-01T00:00:00Z"},
], ids=["missing-start", "page0", "page-abc", "size-negative", "bad-date", "bad-end-date",
        "start-after-end"])
def test_invalid_parameters_are_422(shared_sandbox: Sandbox, overrides: dict[str, Any]) -> None:
    assert "startDateTime" in spec.operation(f"GET {LEDGER}").required_query_params
    with api(shared_sandbox) as client:
        ok = client.get(LEDGER, params=ledger_params(shared_sandbox.world))
        response = client.get(LEDGER, params=ledger_params(shared_sandbox.world, **overrides))
    assert ok.status_code == 200
    assert response.status_code == 422, response.text
    assert response.json()["error"]["name"] == "FalsumError"


def test_unknown_parent_is_404(shared_sandbox: Sandbox) -> None:
    with api(shared_sandbox) as client:
        response = client.get("/v2/sms/outbound/page/ZZZZZZZZZZ")
    assert response.status_code == 404
    assert response.json()["error"]["name"] == "NotFound"


# Paging ----------------------------------------------------------------------------------------
def test_query_paging_walks_every_record_once(shared_sandbox: Sandbox) -> None:
    phone = first_id(shared_sandbox.world, "phone_numbers")
    path = f"/v2/sms/outbound/page/{phone}"
    ids: list[str] = []
    with api(shared_sandbox) as client:
        first = client.get(path, params={"pageNum": 1, "pageSize": 7}).json()
        total = first["total"]
        assert total > 14
        pages = -(-total // 7)
        for number in range(1, pages + 1):
            body = client.get(path, params={"pageNum": number, "pageSize": 7}).json()
            assert body["total"] == total
            assert body["length"] == len(body["results"])
            assert len(body["results"]) == (7 if number < pages else total - 7 * (pages - 1))
            ids += [r["id"] for r in body["results"]]
        past = client.get(path, params={"pageNum": pages + 1, "pageSize": 7}).json()
    assert len(ids) == total == len(set(ids))
    assert past["results"] == [] and past["length"] == 0 and past["total"] == total
    # The total is the number of this phone's messages in the world.
    # The total is the number of this phone's messages in the world (archived ones hide only
    # on routes that offer isArchiveIncluded).
    world = shared_sandbox.world
    route = f"GET {path.replace(phone, '{phoneNumberID}')}"
    offers_flag = "isArchiveIncluded" in spec.operation(route).query_params
    assert total == len(world.entities["outbound_sms"].select(
        link=("phoneNumberID", 0), include_archived=offers_flag))


def test_lowercase_paging_params_page_the_data_envelope(shared_sandbox: Sandbox) -> None:
    campaign = first_id(shared_sandbox.world, "static_voucher_campaigns")
    path = f"/v2/payment/staticVoucherCampaign/staticVouchers/page/{campaign}"
    with api(shared_sandbox) as client:
        whole = client.get(path, params={"pagenum": 1, "pagesize": 1000}).json()
        total = whole["totalRows"]
        assert total >= 6 and len(whole["data"]) == total
        ids = []
        for number in range(1, -(-total // 4) + 1):
            body = client.get(path, params={"pagenum": number, "pagesize": 4}).json()
            assert body["totalRows"] == total
            assert 0 < len(body["data"]) <= 4
            ids += [r["id"] for r in body["data"]]
        past = client.get(path, params={"pagenum": -(-total // 4) + 1, "pagesize": 4}).json()
    assert ids == [r["id"] for r in whole["data"]]
    assert past["data"] == []


def test_body_paging_on_post_route(shared_sandbox: Sandbox) -> None:
    path = "/v2/membership/member/page"
    with api(shared_sandbox) as client:
        def page(number: int, size: int) -> list[dict[str, Any]]:
            response = client.post(path, json={"pageNum": number, "pageSize": size,
                                               "searchKey": "name", "searchValue": "x"})
            assert response.status_code == 200
            body = response.json()
            assert isinstance(body, list)
            return body

        whole = page(1, 1000)
        assert len(whole) > 20
        walked = []
        number = 1
        while chunk := page(number, 9):
            assert len(chunk) <= 9
            walked += chunk
            number += 1
    assert [r["id"] for r in walked] == [r["id"] for r in whole]
    assert len({r["id"] for r in walked}) == len(walked)


# Archived --------------------------------------------------------------------------------------
def test_archived_records_only_when_asked(shared_sandbox: Sandbox) -> None:
    path = "/v2/membership/member/page"
    base = {"pageNum": 1, "pageSize": 1000, "searchKey": "name", "searchValue": "x"}
    with api(shared_sandbox) as client:
        without = client.post(path, json=base).json()
        with_false = client.post(path, json={**base, "isArchiveIncluded": False}).json()
        included = client.post(path, json={**base, "isArchiveIncluded": True}).json()
    assert without == with_false
    assert all(r["isActive"] is True for r in without)
    archived = [r for r in included if r["isActive"] is False]
    assert archived, "the world should hold archived members"
    assert len(included) == len(without) + len(archived)
    assert {r["id"] for r in without} == {r["id"] for r in included if r["isActive"]}


def test_archived_flag_in_query(shared_sandbox: Sandbox) -> None:
    world = shared_sandbox.world
    entity = world.entities["products"]
    archived_in_world = int((~entity.active).sum())
    with api(shared_sandbox) as client:
        without = client.get("/v2/products/all").json()
        included = client.get("/v2/products/all", params={"isArchiveIncluded": "true"}).json()
    assert len(included) == entity.count
    assert len(without) == entity.count - archived_in_world


# Windows ---------------------------------------------------------------------------------------
def _ledger_ids(client: httpx.Client, start: float, end: float) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    number = 1
    while True:
        body = client.get(LEDGER, params={"startDateTime": iso(start), "endDateTime": iso(end),
                                          "pageNum": number, "pageSize": 1000}).json()
        items = body if isinstance(body, list) else next(
            body[k] for k in ("results", "data", "entries") if k in body)
        records += items
        if len(items) < 1000:
            return records
        number += 1


def _infogenesis(client: httpx.Client, start: float, end: float) -> list[dict[str, Any]]:
    response = client.post("/v2/pos/infogenesis/redemptions",
                           json={"startDateTime": iso(start), "endDateTime": iso(end)})
    assert response.status_code == 200, response.text
    body = response.json()
    return body if isinstance(body, list) else next(
        body[k] for k in ("results", "data", "entries") if k in body)


@pytest.mark.parametrize("fetch,entity", [(_ledger_ids, "ledger_entries"),
                                          (_infogenesis, "infogenesis_requests")],
                         ids=["query-window", "body-window"])
def test_windows_are_half_open_and_partition(shared_sandbox: Sandbox, fetch, entity) -> None:
    world = shared_sandbox.world
    created = world.entities[entity].created
    # Split exactly on a record's creation time, so the half-open bound matters.
    # Bounds as the wire carries them (millisecond ISO strings).
    middle = parse_time(iso(float(created[len(created) // 2])))
    start = parse_time(iso(world.now - 800 * DAY))
    end = parse_time(iso(world.now + DAY))
    with api(shared_sandbox) as client:
        union = fetch(client, start, end)
        left = fetch(client, start, middle)
        right = fetch(client, middle, end)
    for records, lo, hi in ((left, start, middle), (right, middle, end)):
        for record in records:
            assert lo <= parse_time(record["createdAt"]) < hi
    left_ids = [r["id"] for r in left]
    right_ids = [r["id"] for r in right]
    assert not set(left_ids) & set(right_ids)
    assert sorted(left_ids + right_ids) == sorted(r["id"] for r in union)
    assert left and right
    assert any(parse_time(r["createdAt"]) == pytest.approx(middle, abs=0.001) for r in right)
