"""The wallet dlt source: one resource per catalog entry, nothing endpoint-specific here."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import dlt
from dlt.common.configuration import known_sections, resolve_configuration
from dlt.common.typing import TSecretStrValue
from dlt.normalize.configuration import ItemsNormalizerConfiguration
import pendulum
import pyarrow as pa
from dlt.sources import DltResource

from wallet_elt.sources.wallet.arguments import (
    PiiAction,
    SchemaContract,
    check_base_url,
    check_choice,
    check_number,
    check_pii_fields,
    date_argument,
)
from wallet_elt.sources.wallet.batches import Batches, PageTables, quiet_hinted_json_notice
from wallet_elt.sources.wallet.catalog import ENTRIES, Entry
from wallet_elt.sources.wallet.columns import column_hints, timestamp_fields
from wallet_elt.sources.wallet.families import checked_families, enabled
from wallet_elt.sources.wallet.fanout import ParentPass, fan_out
from wallet_elt.sources.wallet import history as history_mode
from wallet_elt.sources.wallet.privacy import PrivacyPolicy
from wallet_elt.sources.wallet.client import (
    DEFAULT_BASE_URL,
    RequestBudget,
    RetryPolicy,
    RouteFailed,
    RouteNotServed,
    WalletClient,
)
from wallet_elt.sources.wallet.report import (
    OnRouteFailure,
    ResourceFailed,
    RunReport,
)
from wallet_elt.sources.wallet.strategies import NO_PARENT, Extraction, Rows, Runner, Settings
from wallet_elt.sources.wallet.windows import Span

__all__ = ["ResourceFailed", "RunReport", "select_entries", "wallet_source"]

logger = logging.getLogger(__name__)

# `evolve`: new fields become columns, a changed type lands in a variant column (reported in
# the run summary); `freeze`: both stop the run, naming the table and column.
CONTRACTS: dict[str, dict[str, str]] = {
    "evolve": {"tables": "evolve", "columns": "evolve", "data_type": "evolve"},
    "freeze": {"tables": "evolve", "columns": "freeze", "data_type": "freeze"},
}


def select_entries(resources: Sequence[str] | None = None,
                   exclude: Sequence[str] | None = None) -> list[Entry]:
    """Catalog entries by name, with the parents they fan out from; unknown names fail."""
    known = {entry.name for entry in ENTRIES}
    unknown = sorted(set(resources or ()) - known | set(exclude or ()) - known)
    if unknown:
        raise ValueError(f"unknown resources: {', '.join(unknown)} (see `wallet-elt resources`)")
    wanted = set(resources or known) - set(exclude or ())
    return [entry for entry in ENTRIES if entry.name in wanted]


def _parse_timestamps(rows: Rows, timestamps: tuple[str, ...]) -> Rows:
    """ISO strings of pinned timestamp fields as datetimes, parsed in C rather than by dlt's
    per-value parser, for pages that go as rows; anything that does not parse stays as sent."""
    for row in rows:
        for name in timestamps:
            value = row.get(name)
            if value.__class__ is str:
                try:
                    row[name] = datetime.fromisoformat(value)
                except ValueError:
                    pass
    return rows


def _decorate(entry: Entry, rows: Rows, parent: str | None, extracted_at: Any) -> Rows:
    route = entry.route
    parent_key = entry.parent_key
    for row in rows:
        row["_wallet_extracted_at"] = extracted_at
        row["_wallet_route"] = route
        if "isActive" in row:
            archived = row["isActive"] is False
            row["_wallet_archived"] = archived
            row["_wallet_archived_at"] = row.get("updatedAt") if archived else None
        if parent_key:
            row[parent_key] = parent
    return rows


def _pages(ctx: Extraction, entry: Entry, state: dict[str, Any], privacy: PrivacyPolicy,
           tables: PageTables | None, on_route_failure: OnRouteFailure,
           versioned: bool = False, new_table: bool = False) -> Iterator[Rows | pa.Table]:
    """The resource's pages, parents fetched concurrently under the shared budget. A route
    that keeps failing fails the run (`raise`: dlt commits no package, so no table and no
    cursor moves) or ends this resource only (`skip`): what it yielded is whole pages, and its
    state moved only past windows that completed, so the rerun resumes exactly there (dlt
    keeps the state only with the load package, so batching pages before yielding them is
    safe). A snapshot that replaces its table is held back until it is complete: a failed
    one yields nothing, and its table stays exactly as it was. A route that is not served
    (404/410 to every request, see RouteNotServed) is no failure: a WARNING, nothing yielded,
    its table and state untouched, whatever `on_route_failure` says. `new_table`: the table
    is not in the schema yet, so a complete but empty run still creates it."""
    timestamps = timestamp_fields(entry)
    batches = Batches(tables, lambda rows: _parse_timestamps(rows, timestamps),
                      lambda count: ctx.counted_arrow(entry.name, count))
    replaces = entry.write_disposition == "replace"
    held: list[Rows | pa.Table] = []
    # Set by the first page: from then on a 404 is a failure, and no page may be dropped.
    answered = threading.Event()
    yielded = failed = False
    try:
        parents = ctx.parent_keys(entry) if entry.parent else [None]
        slices = {parent: state.setdefault("parents", {}).setdefault(parent or NO_PARENT, {})
                  for parent in parents}

        def produce(parent: str | None) -> Iterator[Rows]:
            for page in Runner(ctx, entry, slices[parent], parent).run():
                answered.set()
                loaded = privacy.apply(_decorate(entry, page, parent, ctx.now))
                yield ctx.counted(entry.name,
                                  history_mode.stamp(loaded) if versioned else loaded)

        pending: Sequence[str | None] = parents
        done = None
        if entry.parent and entry.write_disposition == "merge" and not ctx.settings.bounded:
            # Parents completed by an earlier run of this pass are not fetched again.
            full_pass = ParentPass(state, slices)
            pending, done = full_pass.pending, full_pass.done
        for rows in fan_out(pending, produce, ctx.settings.parent_concurrency, done=done):
            for item in batches.add(rows):
                if replaces:
                    held.append(item)
                else:
                    yielded = True
                    yield item
    except RouteFailed as err:
        if isinstance(err, RouteNotServed) and not answered.is_set():
            _report_not_served(ctx, entry, err)
            return
        failure = ResourceFailed(entry.name, err)
        if on_route_failure == "raise":
            raise failure from err
        _report_skipped(ctx, entry, failure)
        failed = True
        if replaces:
            return
    if not replaces:
        for item in batches.flush():
            yielded = True
            yield item
        if new_table and not yielded and not failed:
            # Complete and empty: dlt creates the typed table (pinned columns) with an empty
            # load, which on a merge table deletes and inserts nothing. Only while the table
            # is new: an unchanged table would cost an empty merge every run.
            yield dlt.mark.materialize_table_schema()
        return
    held.extend(batches.flush())
    if held:
        yield from held
    else:
        # Complete and empty: everything is gone upstream. This run replaces the table (the
        # empty file dlt writes for it truncates it); the next run merges again.
        yield dlt.mark.with_hints(dlt.mark.materialize_table_schema(),
                                  dlt.mark.make_hints(write_disposition="replace"))


def _report_skipped(ctx: Extraction, entry: Entry, failure: ResourceFailed) -> None:
    """Where dlt users look: a WARNING, and the resource's custom metrics in the extract
    step of the trace and load info (`wallet_failure`)."""
    ctx.report.failed(entry.name, str(failure.cause))
    logger.warning("wallet: skipped resource %s: %s", entry.name, failure.cause)
    dlt.current.resource_metrics()["wallet_failure"] = {
        "route": entry.route, "cause": str(failure.cause)}


def _report_not_served(ctx: Extraction, entry: Entry, err: RouteNotServed) -> None:
    """Like a skipped resource, but its own record and metric: the API dropped the route,
    nothing the operator can retry."""
    ctx.report.not_served_route(entry.name, str(err))
    logger.warning("wallet: route %s of resource %s is not served (%s); its table is left "
                   "as it was", entry.route, entry.name, err)
    dlt.current.resource_metrics()["wallet_not_served"] = {
        "route": entry.route, "cause": str(err)}


def _write_hints(entry: Entry) -> tuple[Any, list[str] | None, str | None]:
    """dlt's (write disposition, primary key, merge key) for the entry. A `replace` snapshot
    loads as a delete-insert merge on `_wallet_route` (one value per table): a complete
    snapshot still replaces every row, in one transaction, but a resource that yields nothing
    (it failed) leaves the table alone, where dlt's replace would truncate it. `_dlt_id` as
    the key makes a load job that runs twice on resume insert its rows once."""
    if entry.write_disposition == "replace":
        return ({"disposition": "merge", "strategy": "delete-insert"}, ["_dlt_id"],
                "_wallet_route")
    return entry.write_disposition, list(entry.primary_key) or None, None


def _resource(ctx: Extraction, entry: Entry, contract: dict[str, str],
              privacy: PrivacyPolicy, arrow: bool,
              on_route_failure: OnRouteFailure, versioned: bool = False) -> DltResource:
    columns = privacy.columns(entry.record_fields, column_hints(entry))
    if versioned:
        columns = history_mode.columns(columns)

    def rows() -> Iterator[Rows | pa.Table]:
        # Named explicitly: dlt may pull the pages from a worker thread.
        state = dlt.current.resource_state(entry.name)
        schema = dlt.current.source_schema()  # the live one: it learns as pages load
        new_table = entry.name not in schema.tables
        tables = None
        if arrow:
            tables = PageTables(
                columns, lambda: schema.tables.get(entry.name, {}).get("columns", {}),
                frozenset({entry.parent_key} if entry.parent_key else ()))
        ctx.started()
        try:
            yield from _pages(ctx, entry, state, privacy, tables, on_route_failure,
                              versioned=versioned, new_table=new_table)
        finally:
            ctx.ended(entry.name)

    disposition, primary_key, merge_key = (
        history_mode.write_hints(entry, ctx.now) if versioned else _write_hints(entry))
    # call-overload: dlt's primary_key defaults to None, which its annotation leaves out.
    return dlt.resource(  # type: ignore[call-overload]
        rows,
        name=entry.name,
        primary_key=primary_key,
        merge_key=merge_key,
        write_disposition=disposition,
        columns=columns,
        max_table_nesting=0,
        parallelized=True,
        schema_contract=contract,
    )


def arrow_ids_configured() -> bool:
    """Whether dlt adds `_dlt_load_id` and `_dlt_id` to Arrow pages, as it does to rows
    (`[normalize.parquet_normalizer]` add_dlt_load_id, add_dlt_id). Without both, a table that
    receives both kinds of pages breaks its NOT NULL columns."""
    config = resolve_configuration(ItemsNormalizerConfiguration(),
                                   sections=(known_sections.NORMALIZE, "parquet_normalizer"))
    return bool(config.add_dlt_load_id and config.add_dlt_id)


@dlt.source(name="wallet")
def wallet_source(
    api_key: str = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    start_date: str = "2024-01-01T00:00:00Z",
    window_step_days: float = 30.0,
    lookback_days: float = 3.0,
    analytics_lookback_days: float = 7.0,
    series_backfill_days: int = 30,
    series_window_days: int = 1,
    page_size: int = 500,
    cursor_lag_seconds: float = 300.0,
    timezone: str = "UTC",
    locale: str = "en-US",
    requests_per_second: float = 0.0,
    max_concurrency: int = 8,
    request_timeout: float = 60.0,
    max_attempts: int = 6,
    resources: Sequence[str] | None = None,
    exclude_resources: Sequence[str] | None = None,
    disabled_families: Sequence[str] | None = None,
    backfill_start: str | None = None,
    backfill_end: str | None = None,
    schema_contract: SchemaContract = "evolve",
    pii_policy: PiiAction = "keep",
    pii_fields: dict[str, PiiAction] | None = None,
    pii_salt: TSecretStrValue | None = None,
    arrow: bool = True,
    on_route_failure: OnRouteFailure = "raise",
    history: Sequence[str] | None = None,
    report: RunReport | None = None,
) -> list[DltResource]:
    """Every Wallet API read route as a resource (see `wallet-elt resources`).

    Args:
        api_key: the account's API key (secret; WALLET_API_KEY or sources.wallet.api_key).
        base_url: the API's root URL, http(s); default "https://api.wall.et".
        start_date: ISO 8601 date-time the first run loads from; default 2024-01-01T00:00:00Z.
        window_step_days: days per request window of windowed routes; default 30.0.
        lookback_days: days re-read before a stored window end each run; default 3.0.
        analytics_lookback_days: the same for analytics routes, days; default 7.0.
        series_backfill_days: days of daily series a first run loads; default 30.
        series_window_days: days per request of daily series; default 1.
        page_size: records asked per page, at least 1; default 500.
        cursor_lag_seconds: seconds a cursor stays behind the server's clock; default 300.0.
        timezone: IANA time zone the API counts days in; default "UTC".
        locale: locale sent to routes that take one; default "en-US".
        requests_per_second: cap on the request rate, 0 for none (adapts to 429s); default 0.0.
        max_concurrency: requests in flight at once, at least 1; default 8.
        request_timeout: seconds one request may take; default 60.0.
        max_attempts: attempts per request (retries + 1), at least 1; default 6.
        resources: resource names to load, None for all; default None.
        exclude_resources: resource names to leave out; default None.
        disabled_families: route families not loaded at all (see families.py), e.g.
            ["analytics", "dashboard"]; an unknown name fails; default None.
        backfill_start: ISO 8601 start of a bounded run that leaves cursors alone; default None.
        backfill_end: its end (exclusive), None for now; default None.
        schema_contract: "evolve" (new fields and types kept) or "freeze" (they stop the
            run); default "evolve".
        pii_policy: "keep", "drop" or "hash" for every personal field; default "keep".
        pii_fields: per wire field, "keep", "drop" or "hash", over pii_policy; default None.
        pii_salt: secret HMAC key that "hash" needs (sources.wallet.pii_salt); default None.
        arrow: pages go as Arrow tables when dlt adds its ids to them; default True.
        on_route_failure: "raise" fails the run on a route that keeps failing (dlt's
            PipelineStepFailed names resource, route and cause; nothing of it loads); "skip"
            loads the others and reports it (WARNING, trace metric `wallet_failure`);
            default "raise".
        history: resources (["*"] for every eligible one) that keep every version of their
            records (history.py: dlt's scd2, `_wallet_valid_from`/`_wallet_valid_to`); an
            aggregate or unknown name fails; default None.
        report: a RunReport the caller owns, filled while dlt extracts (rows, requests,
            retries, failed and not-served resources); default None.

    A route that answers 404/410 to every request is "not served" (dropped from the API):
    whatever `on_route_failure` says, its resource ends with a WARNING, loads nothing and
    reports the trace metric `wallet_not_served`; the run goes on. A child route is not
    served when none of its parents completed and every parent tried (the fan-out stops
    after 5 in a row) answered 404/410.

    Returns:
        The resources, one per selected catalog entry.

    Raises:
        ValueError: an argument has a value it cannot take; the message names it.
    """
    check_choice("on_route_failure", on_route_failure, OnRouteFailure)
    check_choice("schema_contract", schema_contract, SchemaContract)
    check_choice("pii_policy", pii_policy, PiiAction)
    check_pii_fields(pii_fields)
    check_base_url(base_url)
    for name, value, minimum, unit, inclusive in (
            ("window_step_days", window_step_days, 0, "days", False),
            ("lookback_days", lookback_days, 0, "days", True),
            ("analytics_lookback_days", analytics_lookback_days, 0, "days", True),
            ("series_backfill_days", series_backfill_days, 0, "days", True),
            ("series_window_days", series_window_days, 1, "days", True),
            ("page_size", page_size, 1, "records", True),
            ("cursor_lag_seconds", cursor_lag_seconds, 0, "seconds", True),
            ("requests_per_second", requests_per_second, 0, "requests per second", True),
            ("max_concurrency", max_concurrency, 1, "requests", True),
            ("request_timeout", request_timeout, 0, "seconds", False),
            ("max_attempts", max_attempts, 1, "attempts", True)):
        check_number(name, value, minimum=minimum, unit=unit, inclusive=inclusive)
    disabled = checked_families(disabled_families)
    first = date_argument("start_date", start_date)
    bounded = None
    if backfill_start or backfill_end:
        bounded = Span(date_argument("backfill_start", backfill_start) if backfill_start
                       else first,
                       date_argument("backfill_end", backfill_end) if backfill_end
                       else pendulum.now("UTC"))
        if bounded.end <= bounded.start:
            raise ValueError(f"backfill_end {backfill_end or 'now'} must be after "
                             f"backfill_start {backfill_start or start_date}")
    settings = Settings(
        start_date=first, window_step_days=window_step_days,
        lookback_days=lookback_days, analytics_lookback_days=analytics_lookback_days,
        series_backfill_days=series_backfill_days, series_window_days=series_window_days,
        page_size=page_size, timezone=timezone, locale=locale, bounded=bounded,
        parent_concurrency=max_concurrency, cursor_lag_seconds=cursor_lag_seconds,
    )
    # The source owns the client: its connections close whenever no resource is running.
    client = WalletClient(
        base_url, api_key, timeout=request_timeout,
        budget=RequestBudget(requests_per_second, max_concurrency),
        retry=RetryPolicy(max_attempts=max_attempts),
    )
    ctx = Extraction(client, settings, report=report if report is not None else RunReport())
    contract = CONTRACTS[schema_contract]
    privacy = PrivacyPolicy(pii_policy, pii_fields, pii_salt)
    if arrow and not arrow_ids_configured():
        arrow = False
        logger.info("wallet: pages go as rows; set [normalize.parquet_normalizer] "
                    "add_dlt_load_id = true and add_dlt_id = true for Arrow pages")
    if arrow:
        quiet_hinted_json_notice()
    entries = enabled(select_entries(resources, exclude_resources), disabled)
    versioned = history_mode.chosen(history)
    return [_resource(ctx, entry, contract, privacy, arrow, on_route_failure,
                      entry.name in versioned)
            for entry in entries]
