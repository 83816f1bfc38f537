"""The wallet dlt source: one resource per catalog entry, nothing endpoint-specific here."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import dlt
from dlt.common.typing import TSecretStrValue
import pendulum
import pyarrow as pa
from dlt.sources import DltResource

from sources.wallet.batches import Batches, PageTables, quiet_hinted_json_notice
from sources.wallet.catalog import ENTRIES, Entry
from sources.wallet.columns import column_hints, timestamp_fields
from sources.wallet.fanout import fan_out
from sources.wallet.privacy import PrivacyPolicy
from sources.wallet.client import RequestBudget, RetryPolicy, RouteFailed, WalletClient
from sources.wallet.strategies import NO_PARENT, Extraction, Rows, Runner, Settings
from sources.wallet.windows import Span, parse

__all__ = ["wallet_source", "select_entries"]

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
           tables: PageTables | None) -> Iterator[Rows | pa.Table]:
    """The resource's pages, parents fetched concurrently under the shared budget. A route
    that keeps failing ends this resource only: what it yielded is whole pages, and its state
    moved only past windows that completed, so the rerun resumes exactly there (dlt keeps
    the state only with the load package, so batching pages before yielding them is safe)."""
    timestamps = timestamp_fields(entry)
    batches = Batches(tables, lambda rows: _parse_timestamps(rows, timestamps),
                      lambda count: ctx.counted_arrow(entry.name, count))
    try:
        parents = ctx.parent_keys(entry) if entry.parent else [None]
        slices = {parent: state.setdefault("parents", {}).setdefault(parent or NO_PARENT, {})
                  for parent in parents}

        def produce(parent: str | None) -> Iterator[Rows]:
            for page in Runner(ctx, entry, slices[parent], parent).run():
                yield ctx.counted(entry.name,
                                  privacy.apply(_decorate(entry, page, parent, ctx.now)))

        for rows in fan_out(parents, produce, ctx.settings.parent_concurrency):
            yield from batches.add(rows)
    except RouteFailed as err:
        ctx.failed(entry.name, str(err))
    yield from batches.flush()


def _resource(ctx: Extraction, entry: Entry, contract: dict[str, str],
              privacy: PrivacyPolicy, arrow: bool) -> DltResource:
    columns = privacy.columns(entry.record_fields, column_hints(entry))

    def rows() -> Iterator[Rows | pa.Table]:
        # Named explicitly: dlt may pull the pages from a worker thread.
        state = dlt.current.resource_state(entry.name)
        tables = None
        if arrow:
            schema = dlt.current.source_schema()  # the live one: it learns as pages load
            tables = PageTables(
                columns, lambda: schema.tables.get(entry.name, {}).get("columns", {}),
                frozenset({entry.parent_key} if entry.parent_key else ()))
        yield from _pages(ctx, entry, state, privacy, tables)

    return dlt.resource(
        rows,
        name=entry.name,
        primary_key=list(entry.primary_key) or None,
        write_disposition=entry.write_disposition,  # type: ignore[arg-type]
        columns=columns,
        max_table_nesting=0,
        parallelized=True,
        schema_contract=contract,  # type: ignore[arg-type]
    )


@dlt.source(name="wallet")
def wallet_source(
    api_key: str = dlt.secrets.value,
    base_url: str = dlt.config.value,
    start_date: str = "2024-01-01T00:00:00Z",
    window_step_days: float = 30.0,
    lookback_days: float = 3.0,
    analytics_lookback_days: float = 7.0,
    series_backfill_days: int = 30,
    series_window_days: int = 1,
    page_size: int = 500,
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
    observe: Callable[[Extraction], None] | None = None,
) -> list[DltResource]:
    """Every Wallet API read route as a resource. `backfill_start`/`backfill_end` make a
    bounded run that loads exactly that span and leaves the stored cursors alone. With
    `arrow`, pages whose values fit their columns go as Arrow tables (see batches.py)."""
    bounded = None
    if backfill_start or backfill_end:
        bounded = Span(parse(backfill_start or start_date),
                       parse(backfill_end) if backfill_end else pendulum.now("UTC"))
    settings = Settings(
        start_date=parse(start_date), window_step_days=window_step_days,
        lookback_days=lookback_days, analytics_lookback_days=analytics_lookback_days,
        series_backfill_days=series_backfill_days, series_window_days=series_window_days,
        page_size=page_size, timezone=timezone, locale=locale, bounded=bounded,
        parent_concurrency=max_concurrency,
    )
    client = WalletClient(
        base_url, api_key, timeout=request_timeout,
        budget=RequestBudget(requests_per_second, max_concurrency),
        retry=RetryPolicy(max_attempts=max_attempts),
    )
    ctx = Extraction(client, settings)
    if observe:
        observe(ctx)  # lets the caller report requests, retries and failed resources
    if schema_contract not in CONTRACTS:
        raise ValueError(f"schema_contract must be one of {sorted(CONTRACTS)}, "
                         f"got {schema_contract!r}")
    contract = CONTRACTS[schema_contract]
    privacy = PrivacyPolicy(pii_policy, pii_fields, pii_salt)
    if arrow:
        # Pages that go as rows get dlt's load id and row id; Arrow pages must carry both
        # too, or a table that receives both kinds breaks its NOT NULL columns.
        dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
        dlt.config["normalize.parquet_normalizer.add_dlt_id"] = True
        quiet_hinted_json_notice()
    return [_resource(ctx, entry, contract, privacy, arrow)
            for entry in select_entries(resources, exclude_resources)]
