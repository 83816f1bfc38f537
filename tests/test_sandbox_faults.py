"""Faults on demand: each kind has its observable effect on the wire, deterministically."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from wallet_elt.sandbox.faults import Fault, FaultKind, FaultPlan
from wallet_elt.sandbox.server import Sandbox
from tests.conftest import api

DESIGNS = "/v2/payment/design/all"
DESIGNS_KEY = f"GET {DESIGNS}"


def statuses(box: Sandbox, n: int, path: str = DESIGNS) -> list[int]:
    with api(box) as client:
        return [client.get(path).status_code for _ in range(n)]


def test_every_kind_is_covered() -> None:
    covered = {"latency", "500", "502", "503", "reset", "timeout", "truncated", "malformed",
               "html", "new_field", "type_change", "page_drift", "empty"}
    assert {kind.value for kind in FaultKind} == covered


def test_empty_answers_a_bare_list_with_no_record(sandbox: Sandbox) -> None:
    sandbox.faults.replace([Fault.parse(f"empty,route={DESIGNS_KEY},times=1")])
    with api(sandbox) as client:
        assert client.get(DESIGNS).json() == []
        assert len(client.get(DESIGNS).json()) > 0


def test_latency(sandbox: Sandbox) -> None:
    sandbox.faults.replace([Fault(FaultKind.LATENCY, value=300)])
    with api(sandbox) as client:
        t = time.perf_counter()
        response = client.get(DESIGNS)
        elapsed = time.perf_counter() - t
    assert response.status_code == 200 and elapsed >= 0.3


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_error_status_with_after_and_times(sandbox: Sandbox, kind: str) -> None:
    sandbox.faults.replace([Fault.parse(f"{kind},after=1,times=2")])
    assert statuses(sandbox, 5) == [200, int(kind), int(kind), 200, 200]
    with api(sandbox) as client:
        sandbox.faults.replace([Fault(FaultKind(kind), times=1)])
        error = client.get(DESIGNS)
    assert error.json()["error"]["name"]


def test_rate_limit_gives_429_with_retry_after(sandbox: Sandbox) -> None:
    sandbox.faults.replace([], rate_limit=2)
    responses = []
    with api(sandbox) as client:
        for _ in range(6):
            responses.append(client.get(DESIGNS))
    codes = [r.status_code for r in responses]
    assert codes[:2] == [200, 200] and 429 in codes
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.headers["Retry-After"].isdigit() and int(limited.headers["Retry-After"]) >= 1
    sandbox.faults.replace([], rate_limit=0)
    assert statuses(sandbox, 5) == [200] * 5


def test_reset_closes_the_connection(sandbox: Sandbox) -> None:
    sandbox.faults.replace([Fault.parse("reset,times=1")])
    with api(sandbox) as client:
        with pytest.raises(httpx.TransportError):
            client.get(DESIGNS)
        assert client.get(DESIGNS).status_code == 200


def test_timeout_holds_the_request(sandbox: Sandbox) -> None:
    sandbox.faults.replace([Fault(FaultKind.TIMEOUT, value=0.5, times=1)])
    with httpx.Client(base_url=sandbox.base_url, headers={"access-token": sandbox.api_key},
                      timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get(DESIGNS)
    time.sleep(0.4)
    assert statuses(sandbox, 1) == [200]


@pytest.mark.parametrize("kind", ["truncated", "malformed"])
def test_body_not_json(sandbox: Sandbox, kind: str) -> None:
    with api(sandbox) as client:
        json.loads(client.get(DESIGNS).content)  # fine without the fault
        sandbox.faults.replace([Fault(FaultKind(kind))])
        response = client.get(DESIGNS)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_html(sandbox: Sandbox) -> None:
    sandbox.faults.replace([Fault(FaultKind.HTML)])
    with api(sandbox) as client:
        response = client.get(DESIGNS)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.lstrip().startswith("<html")


def test_new_field(sandbox: Sandbox) -> None:
    with api(sandbox) as client:
        plain = client.get(DESIGNS).json()
        sandbox.faults.replace([Fault(FaultKind.NEW_FIELD)])
        drifted = client.get(DESIGNS).json()
    assert plain and all("sandboxDriftField" not in r for r in plain)
    assert all(r["sandboxDriftField"] == "new" for r in drifted)


def test_type_change(sandbox: Sandbox) -> None:
    with api(sandbox) as client:
        plain = client.get(DESIGNS).json()
        sandbox.faults.replace([Fault(FaultKind.TYPE_CHANGE)])
        changed = client.get(DESIGNS).json()
    ints = [k for k, v in plain[0].items() if isinstance(v, int) and not isinstance(v, bool)]
    assert ints
    assert changed[0][ints[0]] == f"{plain[0][ints[0]]} units"
    assert all(not isinstance(changed[0][k], str) for k in ints[1:])


def wait_for_count(entity, expected: int) -> int:
    """The drift lands just after the response is written: wait for it a little."""
    deadline = time.monotonic() + 2
    while entity.count < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return entity.count


def test_page_drift_inserts_records_after_a_page(sandbox: Sandbox) -> None:
    world = sandbox.world
    phone = world.entities["phone_numbers"].record(0)["id"]
    path = f"/v2/sms/outbound/page/{phone}"
    entity = world.entities["outbound_sms"]
    count = entity.count
    sandbox.faults.replace([Fault.parse("page_drift,route=GET /v2/sms/outbound/page/*,value=3")])
    with api(sandbox) as client:
        first = client.get(path, params={"pageNum": 1, "pageSize": 5}).json()
        assert wait_for_count(entity, count + 3) == count + 3
        client.get(DESIGNS)  # another route: no drift
        time.sleep(0.05)
        assert entity.count == count + 3
        second = client.get(path, params={"pageNum": 1, "pageSize": 5}).json()
    assert wait_for_count(entity, count + 6) == count + 6
    assert first["total"] <= second["total"]


def test_probability_faults_are_deterministic() -> None:
    def fired(seed: int) -> list[int]:
        plan = FaultPlan(seed, [Fault(FaultKind.ERROR_503, probability=0.3)])
        return [n for n in range(200) if plan.pick(DESIGNS_KEY)]

    a, b, other = fired(9), fired(9), fired(10)
    assert a == b
    assert 30 < len(a) < 90
    assert a != other


def test_probability_faults_over_http_repeat_per_seed(sandbox: Sandbox) -> None:
    runs = []
    for _ in range(2):
        sandbox.faults.replace([Fault.parse("503,p=0.5")])
        runs.append(statuses(sandbox, 20))
    assert runs[0] == runs[1]
    assert 200 in runs[0] and 503 in runs[0]


def test_route_globs_only_affect_matching_routes(sandbox: Sandbox) -> None:
    sandbox.faults.replace([Fault.parse("503,route=GET /v2/payment/design/*")])
    assert statuses(sandbox, 2) == [503, 503]
    assert statuses(sandbox, 2, "/v2/products/all") == [200, 200]
    sandbox.faults.replace([Fault.parse("503,route=POST *")])
    assert statuses(sandbox, 1) == [200]


def test_stats_count_requests_per_route_and_status(sandbox: Sandbox) -> None:
    sandbox.reset_stats()
    sandbox.faults.replace([Fault.parse("503,times=2")])
    assert statuses(sandbox, 3) == [503, 503, 200]
    with httpx.Client(base_url=sandbox.base_url) as client:
        stats = client.get("/_sandbox/stats").json()
    assert stats["routes"] == {DESIGNS_KEY: {"503": 2, "200": 1}}
    assert stats["requests"] == 3
    assert stats["records"] == sandbox.world.entities["payment_designs"].active.sum()
    assert sandbox.stats() == stats
    with httpx.Client(base_url=sandbox.base_url) as client:
        assert client.post("/_sandbox/stats/reset").status_code == 200
    assert sandbox.stats()["requests"] == 0


def test_faults_control_route(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.base_url) as client:
        response = client.post("/_sandbox/faults", json={"faults": ["503,times=1"]})
    assert response.status_code == 200 and response.json() == {"faults": 1}
    assert statuses(sandbox, 2) == [503, 200]
    with httpx.Client(base_url=sandbox.base_url) as client:
        client.post("/_sandbox/faults", json={"faults": [], "rate_limit": 1})
    assert 429 in statuses(sandbox, 3)


def test_fault_parse() -> None:
    fault = Fault.parse("latency, route=GET /v2/*, p=0.5, after=2, times=3, value=100")
    assert fault == Fault(FaultKind.LATENCY, "GET /v2/*", 0.5, 2, 3, 100.0)
    with pytest.raises(ValueError):
        Fault.parse("503,bogus=1")
    with pytest.raises(ValueError):
        Fault.parse("404")
