"""The baseline: the benchmark subset as a plain dlt `rest_api` configuration, written the way
a user first writes one from dlt's REST API source docs.

Defaults throughout: the client's paginator is left to dlt's detection (the un-paged list
routes get a single page), paged routes get the documented `page_number` paginator (1-based,
no total: it stops at the first empty page), children fan out with `resolve`, and nothing sets
a file format, write disposition, primary key, nesting level or parallelism, so the pipeline
loads with `insert_values`, appends, and flattens nested objects. The page size is the
connector's (500) so both make about the same number of data requests.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import dlt
import orjson
from dlt.sources.rest_api import rest_api_source

PAGE_SIZE = 500


def page_number(param: str = "pageNum") -> dict[str, Any]:
    return {"type": "page_number", "base_page": 1, "page_param": param, "total_path": None}


def resolve(resource: str) -> dict[str, Any]:
    return {"type": "resolve", "resource": resource, "field": "id"}


def baseline_config(base_url: str, api_key: str, start: str, end: str) -> dict[str, Any]:
    """`start`/`end`: the one date range the ledger route requires (the whole history)."""
    archived = {"isArchiveIncluded": "true"}
    return {
        "client": {
            "base_url": base_url,
            "auth": {"type": "api_key", "name": "access-token", "api_key": api_key,
                     "location": "header"},
        },
        "resources": [
            # parents
            {"name": "phone_numbers",
             "endpoint": {"path": "v2/merchant/phoneNumbers/all", "params": archived}},
            {"name": "static_voucher_campaigns",
             "endpoint": {"path": "v2/payment/staticVoucherCampaign/all", "params": archived}},
            {"name": "opt_in_lists",
             "endpoint": {"path": "v2/merchant/lists/optIn/all", "params": archived}},
            {"name": "performances",
             "endpoint": {"path": "v2/performances/all", "params": archived}},
            # big tables
            {"name": "members",
             "endpoint": {
                 "path": "v2/membership/member/page", "method": "POST",
                 "json": {"pageSize": PAGE_SIZE, "isArchiveIncluded": True},
                 "paginator": {"type": "page_number", "base_page": 1,
                               "page_body_path": "pageNum", "total_path": None},
             }},
            {"name": "ledger_transactions",
             "endpoint": {
                 "path": "v2/pos/ledger/transactions/all",
                 "params": {"pageSize": PAGE_SIZE, "startDateTime": start,
                            "endDateTime": end},
                 "data_selector": "entries",
                 "paginator": page_number(),
             }},
            {"name": "phone_number_outbound_sms_pages",
             "endpoint": {
                 "path": "v2/sms/outbound/page/{phoneNumberID}",
                 "params": {"phoneNumberID": resolve("phone_numbers"), "pageSize": PAGE_SIZE},
                 "data_selector": "results",
                 "paginator": page_number(),
             }},
            {"name": "phone_number_inbound_sms_pages",
             "endpoint": {
                 "path": "v2/merchant/sms/inbound/page/{phoneNumberID}",
                 "params": {"phoneNumberID": resolve("phone_numbers"), "pageSize": PAGE_SIZE},
                 "data_selector": "results",
                 "paginator": page_number(),
             }},
            {"name": "static_voucher_campaign_static_voucher_pages",
             "endpoint": {
                 "path": "v2/payment/staticVoucherCampaign/staticVouchers/page/{campaignID}",
                 "params": {"campaignID": resolve("static_voucher_campaigns"),
                            "pagesize": PAGE_SIZE},
                 "data_selector": "data",
                 "paginator": page_number("pagenum"),
             }},
            {"name": "opt_in_list_subscriber_pages",
             "endpoint": {
                 "path": "v2/sms/optInList/subscribers/page/{listID}",
                 "params": {"listID": resolve("opt_in_lists"), "pageSize": PAGE_SIZE,
                            **archived},
                 "data_selector": "results",
                 "paginator": page_number(),
             }},
            {"name": "performance_ticket_pages",
             "endpoint": {
                 "path": "v2/performances/tickets/page/{performanceID}",
                 "params": {"performanceID": resolve("performances"), "pageSize": PAGE_SIZE,
                            **archived},
                 "data_selector": "data",
                 "paginator": page_number(),
             }},
        ],
    }


def baseline_source(base_url: str, api_key: str, start: str, end: str) -> Any:
    # arg-type: the configuration is plain dicts (not RESTAPIConfig's TypedDicts); dlt
    # validates it when it builds the source.
    return rest_api_source(baseline_config(base_url, api_key, start, end),  # type: ignore[arg-type]
                           name="wallet_baseline")


def run_baseline(base_url: str, api_key: str, start: str, end: str, pipelines_dir: str,
                 duckdb_path: str) -> tuple[int, Any]:
    """(rows loaded, load info) of one baseline run into a DuckDB file."""
    pipeline = dlt.pipeline(pipeline_name="wallet_baseline",
                            destination=dlt.destinations.duckdb(duckdb_path),
                            dataset_name="baseline_data", pipelines_dir=pipelines_dir)
    info = pipeline.run(baseline_source(base_url, api_key, start, end))
    normalized = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    assert normalized is not None, "a completed run has a normalize step"
    counts = normalized.row_counts
    rows = sum(n for table, n in counts.items() if not table.startswith("_dlt")
               and "__" not in table)
    return rows, info


def main() -> None:
    """`python -m bench.baseline BASE_URL API_KEY START END`: one baseline run in a process
    of its own; prints a JSON line (rows, seconds, peak_rss_mb)."""
    from bench.common import peak_rss_mb, temp_dir

    base_url, api_key, start, end = sys.argv[1:5]
    logging.getLogger("dlt").setLevel(logging.ERROR)  # the paginator-detection warnings
    with temp_dir("base") as tmp:
        started = time.perf_counter()
        rows, _ = run_baseline(base_url, api_key, start, end, str(tmp / "pipelines"),
                               str(tmp / "base.duckdb"))
        seconds = time.perf_counter() - started
    sys.stdout.write(orjson.dumps({"rows": rows, "seconds": seconds,
                                   "peak_rss_mb": peak_rss_mb()}).decode() + "\n")


if __name__ == "__main__":
    main()
