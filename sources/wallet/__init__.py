"""The wallet dlt source: one resource per catalog entry, nothing endpoint-specific here."""

from __future__ import annotations

import logging
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

from wallet_elt.sources.wallet.batches import Batches, PageTables, quiet_hinted_json_notice
from wallet_elt.sources.wallet.catalog import ENTRIES, Entry
from wallet_elt.sources.wallet.columns import column_hints, column_name, timestamp_fields
from wallet_elt.sources.wallet.fanout import ParentPass, fan_out
from wallet_elt.sources.wallet.privacy import PrivacyPolicy
from wallet_elt.sources.wallet.client import RequestBudget, RetryPolicy, RouteFailed, WalletClient
from wallet_elt.sources.wallet.report import (
    ON_ROUTE_FAILURE,
    OnRouteFailure,
    ResourceFailed,
    RunReport,
)
from wallet_elt.sources.wallet.strategies import NO_PARENT, Extraction, Rows, Runner, Settings
from wallet_elt.sources.wallet.windows import Span, parse

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
           new_table: bool = False) -> Iterator[Rows | pa.Table]:
    """The resource's pages, parents fetched concurrently under the shared budget. A route
    that keeps failing fails the run (`raise`: dlt commits no package, so no table and no
    cursor moves) or ends this resource only (`skip`): what it yielded is whole pages, and its
    state moved only past windows that completed, so the rerun resumes exactly there (dlt
    keeps the state only with the load package, so batching pages before yielding them is
    safe). A snapshot that replaces its table is held back until it is complete: a failed
    one yields nothing, and its table stays exactly as it was. `new_table`: the table is not
    in the schema yet, so a complete but empty run still creates it."""
    timestamps = timestamp_fields(entry)
    batches = Batches(tables, lambda rows: _parse_timestamps(rows, timestamps),
                      lambda count: ctx.counted_arrow(entry.name, count))
    replaces = entry.write_disposition == "replace"
    held: list[Rows | pa.Table] = []
    yielded = failed = False
    try:
        parents = ctx.parent_keys(entry) if entry.parent else [None]
        slices = {parent: state.setdefault("parents", {}).setdefault(parent or NO_PARENT, {})
                  for parent in parents}

        def produce(parent: str | None) -> Iterator[Rows]:
            for page in Runner(ctx, entry, slices[parent], parent).run():
                yield ctx.counted(entry.name,
                                  privacy.apply(_decorate(entry, page, parent, ctx.now)))

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
              on_route_failure: OnRouteFailure) -> DltResource:
    columns = {name: hint for name, hint in column_hints(entry).items()
               if not any(privacy.drops(field) and column_name(field) == name
                          for field in entry.record_fields)}

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
            yield from _pages(ctx, entry, state, privacy, tables, on_route_failure, new_table)
        finally:
            ctx.ended(entry.name)

    disposition, primary_key, merge_key = _write_hints(entry)
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
    base_url: str = "https://api.wall.et",
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
    backfill_start: str | None = None,
    backfill_end: str | None = None,
    schema_contract: str = "evolve",
    pii_policy: str = "keep",
    pii_fields: dict[str, str] | None = None,
    pii_salt: TSecretStrValue | None = None,
    arrow: bool = True,
    on_route_failure: OnRouteFailure = "raise",
    report: RunReport | None = None,
) -> list[DltResource]:
    """Every Wallet API read route as a resource. `backfill_start`/`backfill_end` make a
    bounded run that loads exactly that span and leaves the stored cursors alone. With
    `arrow`, pages whose values fit their columns go as Arrow tables (see batches.py) once
    `[normalize.parquet_normalizer]` sets `add_dlt_load_id` and `add_dlt_id` (the
    `wallet-elt` pipelines do); otherwise they go as rows.

    `on_route_failure`: "raise" (default) fails the run (dlt's PipelineStepFailed, whose
    chain names the resource, route and cause) and nothing of it loads; "skip" loads every
    other resource and reports each failed one with a WARNING log line and, in the extract
    step of dlt's trace, the resource's custom metric `wallet_failure` (route, cause).

    `report`: a RunReport the caller owns, filled while dlt extracts (rows, requests,
    retries, failed resources)."""
    if on_route_failure not in ON_ROUTE_FAILURE:
        raise ValueError(f"on_route_failure must be one of {list(ON_ROUTE_FAILURE)}, "
                         f"got {on_route_failure!r}")
    if schema_contract not in CONTRACTS:
        raise ValueError(f"schema_contract must be one of {sorted(CONTRACTS)}, "
                         f"got {schema_contract!r}")
    bounded = None
    if backfill_start or backfill_end:
        bounded = Span(parse(backfill_start or start_date),
                       parse(backfill_end) if backfill_end else pendulum.now("UTC"))
    settings = Settings(
        start_date=parse(start_date), window_step_days=window_step_days,
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
    return [_resource(ctx, entry, contract, privacy, arrow, on_route_failure)
            for entry in select_entries(resources, exclude_resources)]
