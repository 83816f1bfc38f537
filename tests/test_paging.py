"""Paging reaches every record whatever page size is configured, or fails loudly (Given / When /
Then), against the sandbox over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wallet_elt.sandbox import routes as sandbox_routes
from wallet_elt.pipelines.pipeline import PartialLoad, run
from wallet_elt.sandbox.routes import Responder
from wallet_elt.sandbox.server import Sandbox
from wallet_elt.sources.wallet import spec, wallet_source
from wallet_elt.sources.wallet.catalog import entries_by_name
from wallet_elt.sources.wallet.client import WalletClient
from wallet_elt.sources.wallet.paging import pages
from tests.conftest import new_pipeline, query, source_args

# The member search pages in the body, with a `total` in its envelope (not loaded: it repeats
# `members`, but it is the route whose total the members fixture makes known).
SEARCH = spec.operation("POST /v2/membership/member/search")
SEARCH_BODY = {"searchKey": "email", "searchValue": "", "isArchiveIncluded": True}
# A loaded route paged in the query with a `total` in its envelope.
SUBSCRIBERS = "opt_in_list_subscriber_pages"


def _ids(box: Sandbox) -> list[str]:
    members = box.world.entities["members"]
    return [record["id"] for record in members.records(members.select())]


@pytest.fixture
def capped(monkeypatch: pytest.MonkeyPatch) -> int:
    """The sandbox serves at most 30 records a page, whatever is asked."""
    monkeypatch.setattr(sandbox_routes, "MAX_PAGE_SIZE", 30)
    return 30


def test_a_page_size_above_the_servers_cap_loads_the_whole_bare_list(
        sandbox: Sandbox, capped: int, tmp_path: Path) -> None:
    # Given a server capping pages at 30 and a members list (a bare array, no total) of 100
    assert len(_ids(sandbox)) == 100
    pipeline = new_pipeline(tmp_path)
    # When members are loaded with a page size of 50
    summary = run(pipeline, **source_args(sandbox, resources=["members"], page_size=50))
    # Then all 100 are loaded, each once
    assert summary.rows["members"] == 100
    loaded = query(pipeline, f"SELECT id FROM {pipeline.dataset_name}.members ORDER BY id")
    assert [row[0] for row in loaded] == sorted(_ids(sandbox))


def test_a_page_size_above_the_servers_cap_reaches_the_envelopes_total_in_aligned_pages(
        sandbox: Sandbox, capped: int) -> None:
    # Given a server capping pages at 30 and a route whose envelope states its total (100)
    client = WalletClient(sandbox.base_url, sandbox.api_key)
    # When its pages are read with a page size of 50
    try:
        read = list(pages(client, SEARCH, SEARCH.path, {}, dict(SEARCH_BODY), 50))
    finally:
        client.close()
    # Then the pages are the server's size and hold every record once, in the list's order
    assert [len(page) for page in read] == [30, 30, 30, 10]
    assert [record["id"] for page in read for record in page] == _ids(sandbox)


def test_a_short_page_before_the_total_fails_the_route_naming_it_and_the_page_size(
        sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given a server whose second page of each list's subscribers answers 5 records fewer
    # than asked
    listing = Responder.listing
    route = entries_by_name()[SUBSCRIBERS].route

    def short_second_page(self: Responder) -> Any:
        body = listing(self)
        if self.op.key == route and str(self.request.get("pageNum")) == "2":
            body["results"] = body["results"][:-5]
        return body

    monkeypatch.setattr(Responder, "listing", short_second_page)
    # When they are loaded with pages of 10 (a list of 6 has more than 15 subscribers)
    assert max(_subscribers_per_list(sandbox)) > 15
    with pytest.raises(PartialLoad) as failure:
        run(new_pipeline(tmp_path), **source_args(sandbox, resources=[SUBSCRIBERS], page_size=10))
    # Then the resource fails, saying where and with which page size, rather than ending there
    message = failure.value.summary.failures[SUBSCRIBERS]
    assert route in message
    assert "page 2" in message and "page_size = 10" in message


def _subscribers_per_list(box: Sandbox) -> list[int]:
    subscribers = box.world.entities["subscribers"]
    lists = [record["optInListID"] for record in subscribers.records(subscribers.select())]
    return [lists.count(name) for name in set(lists)]


@pytest.mark.parametrize("size", [0, -5])
def test_a_page_size_below_one_is_rejected_naming_the_argument(size: int) -> None:
    with pytest.raises(ValueError, match=f"page_size .*got {size}"):
        wallet_source(api_key="key", base_url="http://127.0.0.1:9", page_size=size)


def test_the_reference_declares_no_maximum_for_any_page_size() -> None:
    """Paging follows a server's cap as it finds it (above); a maximum the reference declared
    would have to be sent as the page size instead. None is declared today: if a new version
    of the reference declares one, this fails, so that it is respected."""
    document = spec.document()
    declared: dict[str, Any] = {}
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            if not isinstance(op, dict):
                continue
            schemas = {p["name"]: p.get("schema", {}) for p in op.get("parameters", [])}
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            schemas.update(spec.resolve(body.get("schema", {})).get("properties", {}))
            for name, schema in schemas.items():
                if name.lower() == "pagesize" and "maximum" in spec.resolve(schema):
                    declared[f"{method.upper()} {path}"] = spec.resolve(schema)["maximum"]
    paged = [op for op in spec.operations().values() if op.page_params]
    assert len(paged) >= 17  # the check sees the paged routes
    assert declared == {}
