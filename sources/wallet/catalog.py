"""The endpoint catalog: one entry per Wallet API read route the connector loads.

Each entry states what the spec cannot: the table name, the world entity the route returns
(the sandbox serves it from that entity), the parent it fans out from, and any override of the
defaults. Everything else (method, parameters, paging, envelope, date window, strategy, primary
key, write disposition) is derived from the vendored spec by `Entry`'s properties, so adding an
endpoint is one line here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from wallet_elt.sources.wallet import spec


class Strategy(StrEnum):
    """How a route's responses become rows, and what its state remembers between runs."""

    SNAPSHOT = "snapshot"  # whole collection every run; no cursor
    CURSOR = "cursor"  # whole collection every run; keep rows whose cursor moved; merge
    WINDOW = "window"  # server-side date windows over records; merge on the record key
    FILTERED = "filtered"  # a list the server filters: whole every run; leavers deleted
    DAILY = "daily"  # by-date analytics: one row per day, merged on the day
    PER_WINDOW = "per_window"  # scalar/by-dimension aggregates per calendar window
    COUNT = "count"  # scalar count captured once per run: a time series


# What an aggregate route returns, for strategies that do not carry records.
class Measure(StrEnum):
    COUNT = "count"
    AMOUNT = "amount"


@dataclass(frozen=True)
class Entry:
    route: str
    entity: str
    name: str = ""
    parent: str | None = None
    parent_field: str = "id"
    params: dict[str, Any] = field(default_factory=dict)
    dimension: str | None = None
    strategy_override: Strategy | None = None
    record_filter: dict[str, Any] = field(default_factory=dict)
    key: tuple[str, ...] = ()
    # The record family an analyst knows the rows by, where it is not the world entity (kinds of
    # record the sandbox serves from one entity but the API keeps apart).
    family_name: str = ""
    # A record table that is not its family's canonical one says what it adds to it.
    adds: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", derived_name(self.route))

    # Facts read from the spec -------------------------------------------------------------
    @property
    def operation(self) -> spec.Operation:
        return spec.operation(self.route)

    @property
    def method(self) -> str:
        return self.operation.method

    @property
    def path(self) -> str:
        return self.operation.path

    @property
    def path_param(self) -> str | None:
        params = self.operation.path_params
        return params[0] if params else None

    @property
    def record_fields(self) -> dict[str, Any]:
        """Fields of one record: the typed response, else the resource's schema elsewhere."""
        typed = self.operation.record_schema().get("properties", {})
        if typed or not (named := spec.record_schema_names().get(self.route)):
            return typed
        return spec.component(named).get("properties", {})

    @property
    def measure(self) -> Measure | None:
        if self.strategy not in (Strategy.DAILY, Strategy.PER_WINDOW, Strategy.COUNT):
            return None
        is_amount = re.search(r"/(amount|sum)(/|$)|revenue|Amount|summary", self.path)
        return Measure.AMOUNT if is_amount else Measure.COUNT

    # Derived loading semantics -----------------------------------------------------------
    @property
    def strategy(self) -> Strategy:
        if self.strategy_override:
            return self.strategy_override
        op = self.operation
        if spec.read_kind(self.route) in ("analytics", "count"):
            by_date = "/date" in op.path or "date" in op.record_schema().get("properties", {})
            if by_date and op.window_params:
                return Strategy.DAILY
            return Strategy.PER_WINDOW if op.window_params else Strategy.COUNT
        if self.path.startswith("/v2/pos/infogenesis/count/"):
            return Strategy.PER_WINDOW
        if self.record_filter:
            # A record that leaves the filter is no longer answered at all: no cursor sees it.
            return Strategy.FILTERED
        if op.window_params:
            return Strategy.WINDOW
        return Strategy.CURSOR if self.cursor else Strategy.SNAPSHOT

    @property
    def cursor(self) -> str | None:
        """The record field the client-side cursor follows (or the window's record field)."""
        for candidate in ("updatedAt", "createdAt"):
            if candidate in self.record_fields:
                return candidate
        return None

    @property
    def parent_key(self) -> str | None:
        """Column that carries the parent's key on a child's rows."""
        return f"{singular(self.parent)}_id" if self.parent else None

    @property
    def primary_key(self) -> tuple[str, ...]:
        parent = (self.parent_key,) if self.parent_key else ()
        strategy = self.strategy
        if strategy is Strategy.DAILY:
            return ("date", *parent)
        if strategy is Strategy.PER_WINDOW:
            dims = (snake(self.dimension),) if self.dimension else ()
            return ("_wallet_window_start", *parent, *dims)
        if strategy is Strategy.COUNT:
            return ("_wallet_captured_at", *parent)
        if self.key:
            return self.key
        return ("id",) if "id" in self.record_fields else ()

    @property
    def write_disposition(self) -> str:
        # Count series merge on (capture time, parent): a load job that a kill left committed
        # but not marked done runs again on resume, and an append table would keep it twice.
        if self.strategy is Strategy.SNAPSHOT and not self.primary_key:
            return "replace"
        return "merge"

    @property
    def archive_flag(self) -> bool:
        """Whether the route hides archived records unless asked (`isArchiveIncluded`)."""
        op = self.operation
        return "isArchiveIncluded" in op.query_params or "isArchiveIncluded" in op.body_fields

    # Record families and references ------------------------------------------------------
    @property
    def family(self) -> str | None:
        """The record family of a record table (None for aggregates and counts)."""
        if self.strategy not in RECORD_STRATEGIES:
            return None
        return self.family_name or self.entity

    @property
    def canonical(self) -> bool:
        """The table an analyst joins on for its family: a record table that adds nothing."""
        return self.family is not None and not self.adds

    @property
    def foreign_keys(self) -> dict[str, str]:
        """Column -> "table.column" it references: the parent key, then every link field."""
        keys: dict[str, str] = {}
        if self.parent_key:
            keys[self.parent_key] = f"{self.parent}.{snake(self.parent_field)}"
        fields = set(self.record_fields) if self.family else set()
        if self.dimension:
            fields.add(self.dimension)
        for wire, target in LINKS.items():
            # A family's own link field is its merchant-side reference, not a key of itself
            # (members.memberID is the merchant's member number).
            if wire in fields and target != canonical_table(self.family or ""):
                keys.setdefault(snake(wire), f"{target}.id")
        return keys

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "route": self.route,
            "strategy": str(self.strategy),
            "cursor": self.cursor if self.strategy in (Strategy.CURSOR, Strategy.WINDOW) else None,
            "window_params": list(self.operation.window_params or ()),
            "primary_key": list(self.primary_key),
            "write_disposition": self.write_disposition,
            "parent": self.parent,
            "paging": list(self.operation.page_params or ()),
            "family": self.family,
            "canonical": self.canonical,
            "foreign_keys": self.foreign_keys,
        }


RECORD_STRATEGIES = (Strategy.CURSOR, Strategy.SNAPSHOT, Strategy.WINDOW, Strategy.FILTERED)

# Link fields of records, and the canonical table whose `id` each names. Declared once: the
# docs, the foreign-key test and the dbt sources read them through `Entry.foreign_keys`.
LINKS: dict[str, str] = {
    "advertisementCreditID": "advertisement_credits",
    "campaignID": "static_voucher_campaigns",
    "dynamicVoucherID": "dynamic_vouchers",
    "employeeID": "employees",
    "importedListID": "imported_lists",
    "memberID": "members",
    "membershipTierID": "membership_tiers",
    "merchantCreditID": "merchant_credits",
    "optInListID": "opt_in_lists",
    "optInSourceID": "opt_in_sources",
    "paymentDesignID": "payment_designs",
    "performanceID": "performances",
    "phoneNumberID": "phone_numbers",
}


def singular(name: str) -> str:
    last = name.rsplit("_", 1)[-1]
    stem = name[: len(name) - len(last)]
    if last.endswith("ies"):
        return stem + last[:-3] + "y"
    if last.endswith(("sses", "shes", "xes")):
        return stem + last[:-2]
    if last.endswith("s") and not last.endswith("ss"):
        return stem + last[:-1]
    return name


def snake(text: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text)
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def derived_name(route: str) -> str:
    """Table name from the path, for aggregate routes whose path already says what they hold."""
    path = route.split(" ", 1)[1]
    parts = [p for p in path.split("/") if p and p != "v2" and not p.startswith("{")]
    return snake("_".join(parts))


def _e(route: str, entity: str, name: str = "", **kw: Any) -> Entry:
    return Entry(route=route, entity=entity, name=name, **kw)


def _child(route: str, entity: str, name: str, parent: str, **kw: Any) -> Entry:
    return Entry(route=route, entity=entity, name=name, parent=parent, **kw)


ARCHIVED = {"isArchiveIncluded": True}
# Table names must fit Postgres's 63-character identifiers; these paths derive longer ones.
MAX_NAME = 63
SHORT_NAMES = {
    "paymentObjectBroadcasts/count/phoneNumber/scheduled":
        "analytics_broadcasts_count_phone_number_scheduled",
    "walletPageViews/sessions/count/distinct/authenticated":
        "analytics_wallet_page_views_authenticated_sessions_count",
    "walletPageViews/sessions/distinct/walletObjectsCount":
        "analytics_wallet_page_views_sessions_by_object",
    "walletPageViews/sessions/verified/distinct/walletObjectsCount":
        "analytics_wallet_page_views_verified_sessions_by_object",
}

# The SMS page routes repeat their full-list twins' records; they stay for now as the windowed
# fan-out the tests exercise (a run reads the lookback only), not as tables to join on.
WINDOWED_TWIN = ("a cheap read of the lookback window only (createdAt); the same records as "
                 "the full list, which follows their updates")

ENTRIES: tuple[Entry, ...] = (
    # --- system reference data --------------------------------------------------------------
    _e("GET /system/countries/all", "countries", "countries"),
    _e("GET /system/industries/all", "industries", "industries"),
    _e("GET /system/industries/domains", "industry_domains", "industry_domains"),
    # --- merchant, employees, roles ---------------------------------------------------------
    _e("GET /v2/merchant/employees/all", "employees", "employees"),
    _e("GET /v2/employee/apiKeys/all", "employee_api_keys", "employee_api_keys", params=ARCHIVED),
    _e("GET /v2/employee/documents/all", "documents", "documents"),
    _e("GET /v2/employee/mediaFiles/all", "media_files", "media_files"),
    _e("GET /v2/employee/messages/all", "employee_messages", "employee_messages"),
    _e("GET /v2/employee/webpages/all", "webpages", "webpages"),
    _e("GET /v2/merchant/roles/custom", "roles", "roles"),
    _e("GET /v2/system/roles/auditLog", "role_audit_logs", "role_audit_logs"),
    _child("GET /v2/employee/peer/activity/{employeeID}", "employee_activity_logs",
           "employee_activity_logs", "employees"),
    _child("GET /v2/employee/peer/permissions/{userID}", "employee_permissions",
           "employee_permissions", "employees"),
    _child("GET /v2/system/roles/employees/{roleID}", "employees", "role_employees", "roles",
           adds="which employees hold each role (role_id)"),
    _child("GET /v2/system/roles/webpages/{roleID}", "webpages", "role_webpages", "roles",
           adds="which webpages each role may open (role_id)"),
    _e("GET /v2/dashboard/widgets", "dashboard_widgets", "dashboard_widgets"),
    _e("GET /v2/merchant/wallet/configuration", "wallet_configurations", "wallet_configurations"),
    _e("GET /v2/a2p/application", "a2p_applications", "a2p_applications"),
    _e("GET /v2/a2p/registration", "a2p_registrations", "a2p_registrations"),
    _e("GET /v2/sms/agreement", "sms_agreements", "sms_agreements"),
    # --- billing ------------------------------------------------------------------------------
    _e("GET /v2/billing/invoices/all", "invoices", "invoices"),
    _e("GET /v2/billing/invoices/upcoming", "upcoming_invoices", "upcoming_invoices"),
    _e("GET /v2/billing/paymentMethods/all", "payment_methods", "payment_methods"),
    # Two selections of the product catalog, each listed only by its own route.
    _e("GET /v2/billing/products/addOns", "billing_products", "billing_add_ons",
       family_name="billing_add_ons"),
    _e("GET /v2/billing/products/specialOffers", "billing_products", "billing_special_offers",
       family_name="billing_special_offers"),
    _e("GET /v2/billing/industry", "industries", "billing_industries",
       adds="which of the industries is the merchant's own"),
    _e("GET /v2/billing/paymentMethod", "payment_method_checks", "billing_payment_method_checks"),
    _e("GET /v2/billing/subscription", "subscriptions", "billing_subscriptions"),
    _e("GET /v2/billing/summary", "invoices", "billing_summaries"),
    # --- phone numbers, SMS, subscribers ----------------------------------------------------
    _e("GET /v2/merchant/phoneNumbers/all", "phone_numbers", "phone_numbers", params=ARCHIVED),
    _child("GET /v2/sms/outbound/{phoneNumberID}", "outbound_sms", "phone_number_outbound_sms",
           "phone_numbers"),
    _child("GET /v2/sms/outbound/page/{phoneNumberID}", "outbound_sms",
           "phone_number_outbound_sms_pages", "phone_numbers", adds=WINDOWED_TWIN),
    _child("GET /v2/sms/outbound/count/{phoneNumberID}", "outbound_sms",
           "phone_number_outbound_sms_counts", "phone_numbers"),
    _child("GET /v2/merchant/sms/inbound/{phoneNumberID}", "inbound_sms",
           "phone_number_inbound_sms", "phone_numbers"),
    _child("GET /v2/merchant/sms/inbound/page/{phoneNumberID}", "inbound_sms",
           "phone_number_inbound_sms_pages", "phone_numbers", adds=WINDOWED_TWIN),
    _child("GET /v2/merchant/sms/inbound/count/{phoneNumberID}", "inbound_sms",
           "phone_number_inbound_sms_counts", "phone_numbers"),
    _child("GET /v2/merchant/helpDeskRequests/{phoneNumberID}", "help_desk_requests",
           "phone_number_help_desk_requests", "phone_numbers"),
    _e("GET /v2/merchant/tcpa/filter/all", "tcpa_entries", "tcpa_entries"),
    _e("GET /v2/sms/sent", "outbound_sms", "sms_sent_counts"),
    _e("GET /v2/merchant/lists/optIn/all", "opt_in_lists", "opt_in_lists", params=ARCHIVED),
    _e("GET /v2/sms/optInListSources/all", "opt_in_sources", "opt_in_sources", params=ARCHIVED),
    _child("GET /v2/sms/optInList/subscribers/page/{listID}", "subscribers",
           "opt_in_list_subscriber_pages", "opt_in_lists", params=ARCHIVED),
    _child("GET /v2/sms/optInList/subscribers/count/{listID}", "subscribers",
           "opt_in_list_subscriber_counts", "opt_in_lists"),
    _child("GET /v2/sms/optInSource/subscribers/count/{sourceID}", "subscribers",
           "opt_in_source_subscriber_counts", "opt_in_sources"),
    _e("GET /v2/merchant/lists/imported/all", "imported_lists", "imported_lists",
       params=ARCHIVED),
    _child("GET /v2/sms/importedList/recipients/page/{listID}", "imported_list_recipients",
           "imported_list_recipient_pages", "imported_lists", params=ARCHIVED),
    _child("GET /v2/sms/importedList/recipients/count/{listID}", "imported_list_recipients",
           "imported_list_recipient_counts", "imported_lists"),
    _e("GET /v2/SmsSubscriber/all", "sms_subscribers", "sms_subscribers", params=ARCHIVED),
    _e("GET /v2/emailSubscriber/all", "email_subscribers", "email_subscribers",
       params=ARCHIVED),
    _e("GET /v2/apple/wallet/pass/subscribers/all", "apple_pass_subscribers",
       "apple_pass_subscribers", key=("id",)),
    _child("GET /v2/apple/wallet/pass/subscriber/activity/{subscriptionID}",
           "apple_pass_activities", "apple_pass_subscriber_activities",
           "apple_pass_subscribers"),
    # --- broadcasts -----------------------------------------------------------------------------
    _e("GET /v2/merchant/broadcasts/adCredits/all", "ad_credit_broadcasts",
       "ad_credit_broadcasts", params=ARCHIVED),
    _e("GET /v2/merchant/broadcasts/dynamicVouchers/all", "dynamic_voucher_broadcasts",
       "dynamic_voucher_broadcasts", params=ARCHIVED),
    _e("GET /v2/merchant/broadcasts/simpleSMS/all", "simple_sms_broadcasts",
       "simple_sms_broadcasts", params=ARCHIVED),
    _e("GET /v2/merchant/broadcasts/staticVoucherCampaign/all", "campaign_broadcasts",
       "campaign_broadcasts", params=ARCHIVED),
    # --- membership -------------------------------------------------------------------------------
    _e("GET /v2/membership/tier/all", "membership_tiers", "membership_tiers", params=ARCHIVED),
    # memberCount is derived from the members: it changes without updatedAt, so no cursor.
    _e("GET /v2/membership/tier/allWithMemberCount", "membership_tiers",
       "membership_tier_member_counts", params=ARCHIVED, strategy_override=Strategy.SNAPSHOT,
       adds="member_count per tier, refreshed every run"),
    _e("POST /v2/membership/member/page", "members", "members", params=ARCHIVED),
    _e("GET /v2/membership/member/count", "members", "member_counts"),
    _child("POST /v2/membership/member/history/log", "member_points_history",
           "member_points_histories", "members", key=("id",)),
    _child("POST /v2/membership/member/redemption/log", "member_redemptions",
           "member_redemptions", "members", key=("id",)),
    _child("POST /v2/membership/tier/history/log", "tier_points_history",
           "membership_tier_histories", "membership_tiers", key=("id",)),
    _child("POST /v2/membership/tier/redemption/log", "tier_redemptions",
           "membership_tier_redemptions", "membership_tiers", key=("id",)),
    # --- payment objects: designs, campaigns, vouchers, credits -----------------------------
    _e("GET /v2/payment/design/all", "payment_designs", "payment_designs", params=ARCHIVED),
    _e("GET /v2/qrcodedesign/all", "qr_code_designs", "qr_code_designs", params=ARCHIVED),
    _e("GET /v2/payment/staticVoucherCampaign/all", "static_voucher_campaigns",
       "static_voucher_campaigns", params=ARCHIVED),
    _e("GET /v2/settings/vouchers/count", "static_vouchers", "voucher_counts"),
    _child("GET /v2/payment/staticVoucherCampaign/staticVouchers/page/{campaignID}",
           "static_vouchers", "static_voucher_campaign_static_voucher_pages",
           "static_voucher_campaigns"),
    _child("GET /v2/payment/staticVoucherCampaign/vouchers/redeemed/{campaignID}",
           "static_vouchers", "static_voucher_campaign_redeemed_vouchers",
           "static_voucher_campaigns", record_filter={"isRedeemed": True},
           adds="the API's own current list of each campaign's redeemed vouchers, a check on "
           "is_redeemed in the canonical table"),
    _child("GET /v2/payment/staticVoucherCampaign/count/vouchers/loaded/{campaignID}",
           "static_vouchers", "static_voucher_campaign_loaded_voucher_counts",
           "static_voucher_campaigns"),
    _child("GET /v2/payment/staticVoucherCampaign/count/vouchers/redeemed/{campaignID}",
           "static_vouchers", "static_voucher_campaign_redeemed_voucher_counts",
           "static_voucher_campaigns", record_filter={"isRedeemed": True}),
    _child("PUT /v2/payment/staticVoucherCampaign/preview/page/{campaignID}",
           "campaign_preview_messages", "static_voucher_campaign_preview_messages",
           "static_voucher_campaigns",
           params={"message": "Your voucher is ready", "locale": "en-US", "timezone": "UTC"},
           key=("id",)),
    _e("GET /v2/payment/dynamicVoucher/all", "dynamic_vouchers", "dynamic_vouchers",
       params=ARCHIVED),
    _child("GET /v2/payment/dynamicVoucher/redemptions/{id}", "dynamic_voucher_redemptions",
           "dynamic_voucher_redemptions", "dynamic_vouchers"),
    _e("GET /v2/payment/advertisementCredit/all", "advertisement_credits",
       "advertisement_credits", params=ARCHIVED),
    _child("GET /v2/payment/advertisementCredit/scans/{id}", "advertisement_credit_scans",
           "advertisement_credit_scans", "advertisement_credits"),
    _e("POST /v2/payment/merchantcredit/page", "merchant_credits", "merchant_credits",
       params=ARCHIVED),
    _e("GET /v2/payment/merchantcredit/count", "merchant_credits", "merchant_credit_counts"),
    _child("POST /v2/payment/merchantcredit/history/log", "merchant_credit_history",
           "merchant_credit_histories", "merchant_credits", key=("id",)),
    _child("POST /v2/payment/merchantcredit/redemption/log", "merchant_credit_redemptions",
           "merchant_credit_redemptions", "merchant_credits", key=("id",)),
    _e("GET /v2/payment/staticVoucher/reach/all", "outbound_sms"),
    _e("GET /v2/payment/staticVoucherCampaign/reach/all", "outbound_sms"),
    _e("GET /v2/payment/dynamicVoucher/reach/all", "outbound_sms"),
    _child("GET /v2/payment/staticVoucherCampaign/reach/{staticVoucherCampaignID}",
           "outbound_sms", "static_voucher_campaign_reaches", "static_voucher_campaigns"),
    _child("GET /v2/payment/dynamicVoucher/reach/{dynamicVoucherID}", "outbound_sms",
           "dynamic_voucher_reaches", "dynamic_vouchers"),
    # --- performances and tickets -----------------------------------------------------------
    _e("GET /v2/performances/all", "performances", "performances", params=ARCHIVED),
    _child("GET /v2/performances/tickets/page/{performanceID}", "tickets",
           "performance_ticket_pages", "performances", params=ARCHIVED),
    _child("GET /v2/performances/{id}/claimed/count", "tickets", "performance_claimed_counts",
           "performances", record_filter={"isClaimed": True}),
    _child("GET /v2/performances/{id}/redeemed/count", "tickets", "performance_redeemed_counts",
           "performances", record_filter={"isRedeemed": True}),
    # --- POS: machines, ledger, InfoGenesis --------------------------------------------------
    _e("GET /v2/pos/machine/all", "pos_machines", "pos_machines", params=ARCHIVED),
    _e("GET /v2/pos/ledger/transactions/all", "ledger_entries", "ledger_transactions"),
    # Four kinds of POS request, each reported by its own route (the sandbox serves them from
    # one entity, so there they hold the same ids).
    *(
        _e(f"POST /v2/pos/infogenesis/{path}", "infogenesis_requests", table, family_name=table)
        for path, table in (
            ("authorizations", "infogenesis_authorizations"),
            ("redemptions", "infogenesis_redemptions"),
            ("refunds", "infogenesis_refunds"),
            ("requests/lookup", "infogenesis_lookup_requests"),
        )
    ),
    _e("GET /v2/pos/infogenesis/responses/errors", "infogenesis_responses",
       "infogenesis_response_errors"),
    *(
        _e(f"POST /v2/pos/infogenesis/count/{obj}/{what}", "infogenesis_requests")
        for obj in ("adCredits", "dynamicVoucher", "membershipPoints", "membershipTier",
                    "merchantCredit", "staticVoucher")
        for what in ("redemptions", "refunds")
    ),
    # --- content items -------------------------------------------------------------------------
    *(
        _e(f"GET /v2/{path}/all", table, table, params=ARCHIVED)
        for path, table in (
            ("amenities", "amenities"), ("dining", "dining"), ("gaming", "gaming"),
            ("imageGrid", "image_grids"), ("lounge", "lounges"), ("news", "news_articles"),
            ("products", "products"), ("promoCodes", "promo_codes"),
            ("roomRates", "room_rates"), ("services", "services"), ("video", "videos"),
            ("virtualBusinessCard", "virtual_business_cards"), ("linkBook", "link_books"),
            ("linkBookSection", "link_book_sections"), ("business/merchantUrl", "merchant_urls"),
            ("interop/openai/assistant", "openai_assistants"),
            ("interop/openai/thread", "openai_threads"),
            ("interop/openai/vectorStore", "openai_vector_stores"),
        )
    ),
    _child("GET /v2/interop/openai/thread/{id}/messages", "openai_messages",
           "openai_thread_messages", "openai_threads"),
    # --- wallet page views -----------------------------------------------------------------------
    # No route lists every page view: each kind of page lists its own (parentObjectPrefix says
    # which), so each is a family (the sandbox gives every view all four parents).
    _child("GET /v2/virtualBusinessCard/requests/{id}", "wallet_page_views",
           "virtual_business_card_requests", "virtual_business_cards",
           family_name="business_card_page_views"),
    _child("GET /v2/business/merchantUrl/requests/{id}", "wallet_page_views",
           "merchant_url_requests", "merchant_urls", family_name="short_link_page_views"),
    _child("GET /v2/analytics/walletPageViews/campaign/{campaignID}", "wallet_page_views",
           "static_voucher_campaign_page_views", "static_voucher_campaigns",
           family_name="campaign_page_views"),
    _child("GET /v2/analytics/walletPageViews/item/{itemID}", "wallet_page_views",
           "news_article_page_views", "news_articles", family_name="news_article_page_views"),
    # --- analytics: by date, by dimension, scalar -------------------------------------------
    *(
        _e(f"GET /v2/analytics/{path}", entity, SHORT_NAMES.get(path, ""), dimension=dim)
        for path, entity, dim in (
            ("advertisementCredits/count/employee", "advertisement_credits", "employeeID"),
            ("advertisementCredits/count/paymentDesign", "advertisement_credits",
             "paymentDesignID"),
            ("advertisementCredits/count/valueType", "advertisement_credits", "valueType"),
            ("advertisementCredits/redemptions/amount/adCredit", "advertisement_credit_scans",
             "advertisementCreditID"),
            ("advertisementCredits/redemptions/amount/date", "advertisement_credit_scans", None),
            ("advertisementCredits/redemptions/count/adCredit", "advertisement_credit_scans",
             "advertisementCreditID"),
            ("advertisementCredits/redemptions/count/date", "advertisement_credit_scans", None),
            ("advertisementCredits/refunds/amount/adCredit", "advertisement_credit_scans",
             "advertisementCreditID"),
            ("advertisementCredits/refunds/amount/date", "advertisement_credit_scans", None),
            ("advertisementCredits/refunds/count/adCredit", "advertisement_credit_scans",
             "advertisementCreditID"),
            ("advertisementCredits/refunds/count/date", "advertisement_credit_scans", None),
            ("advertisementCredits/scans/count/adCredit", "advertisement_credit_scans",
             "advertisementCreditID"),
            ("advertisementCredits/scans/count/date", "advertisement_credit_scans", None),
            ("campaigns/amount/campaign/offerVsRedeemed", "static_vouchers", "campaignID"),
            ("campaigns/count/campaign/created", "static_vouchers", "campaignID"),
            ("campaigns/count/employee", "static_voucher_campaigns", "employeeID"),
            ("campaigns/count/paymentDesign", "static_voucher_campaigns", "paymentDesignID"),
            ("campaigns/count/valueType", "static_voucher_campaigns", "valueType"),
            ("campaigns/redemptions/amount/campaign", "static_vouchers", "campaignID"),
            ("campaigns/redemptions/amount/date", "static_vouchers", None),
            ("campaigns/redemptions/count/campaign", "static_vouchers", "campaignID"),
            ("campaigns/redemptions/count/date", "static_vouchers", None),
            ("campaigns/refunds/amount/campaign", "static_vouchers", "campaignID"),
            ("campaigns/refunds/amount/date", "static_vouchers", None),
            ("campaigns/refunds/count/campaign", "static_vouchers", "campaignID"),
            ("campaigns/refunds/count/date", "static_vouchers", None),
            ("dynamicVouchers/count/employee", "dynamic_vouchers", "employeeID"),
            ("dynamicVouchers/count/paymentDesign", "dynamic_vouchers", "paymentDesignID"),
            ("dynamicVouchers/redemptions/amount/date", "dynamic_voucher_redemptions", None),
            ("dynamicVouchers/redemptions/amount/dynamicVoucher", "dynamic_voucher_redemptions",
             "dynamicVoucherID"),
            ("dynamicVouchers/redemptions/count/date", "dynamic_voucher_redemptions", None),
            ("dynamicVouchers/redemptions/count/dynamicVoucher", "dynamic_voucher_redemptions",
             "dynamicVoucherID"),
            ("dynamicVouchers/refunds/amount/date", "dynamic_voucher_redemptions", None),
            ("dynamicVouchers/refunds/amount/dynamicVoucher", "dynamic_voucher_redemptions",
             "dynamicVoucherID"),
            ("dynamicVouchers/refunds/count/date", "dynamic_voucher_redemptions", None),
            ("dynamicVouchers/refunds/count/dynamicVoucher", "dynamic_voucher_redemptions",
             "dynamicVoucherID"),
            ("helpdeskrequests/count", "help_desk_requests", None),
            ("helpdeskrequests/count/date/created", "help_desk_requests", None),
            ("helpdeskrequests/count/date/resolved", "help_desk_requests", None),
            ("helpdeskrequests/count/date/unresolved", "help_desk_requests", None),
            ("helpdeskrequests/count/employee/resolved", "help_desk_requests", "employeeID"),
            ("ledger/paymentObject/distinct/count", "ledger_entries", None),
            ("ledger/revenue/sum", "ledger_entries", None),
            ("ledger/transactions/count", "ledger_entries", None),
            ("ledger/transactions/sum", "ledger_entries", None),
            ("membership/member/count", "members", None),
            ("membership/member/points/redeemed", "member_redemptions", None),
            ("membership/member/points/refunded", "member_redemptions", None),
            ("membership/merchantCredit/amount/redeemed", "merchant_credit_redemptions", None),
            ("membership/merchantCredit/amount/refunded", "merchant_credit_redemptions", None),
            ("membership/merchantCredit/count", "merchant_credits", None),
            ("membership/tier/amount/redeemed", "tier_redemptions", None),
            ("membership/tier/amount/refunded", "tier_redemptions", None),
            ("outboundSMS/count/date/delivered", "outbound_sms", None),
            ("outboundSMS/count/date/sent", "outbound_sms", None),
            ("outboundSMS/count/phoneNumber/delivered", "outbound_sms", "phoneNumberID"),
            ("outboundSMS/count/phoneNumber/sent", "outbound_sms", "phoneNumberID"),
            ("paymentObjectBroadcasts/count/date/created", "campaign_broadcasts", None),
            ("paymentObjectBroadcasts/count/date/scheduled", "campaign_broadcasts", None),
            ("paymentObjectBroadcasts/count/employee/scheduled", "campaign_broadcasts",
             "employeeID"),
            ("paymentObjectBroadcasts/count/phoneNumber/scheduled", "campaign_broadcasts",
             "phoneNumberID"),
            ("paymentObjectBroadcasts/executionTime/completed", "campaign_broadcasts", None),
            ("paymentObjectBroadcasts/sms/count/date/scheduled", "campaign_broadcasts", None),
            ("sms/all/subscribers/count", "subscribers", None),
            ("sms/all/subscribers/count/date", "subscribers", None),
            ("sms/inbound/count", "inbound_sms", None),
            ("sms/outbound/count", "outbound_sms", None),
            ("tcpa/count/date/stop", "tcpa_entries", None),
            ("tcpa/count/phoneNumber/stop", "tcpa_entries", "phoneNumberID"),
            ("tcpafilters/count/date/create", "tcpa_entries", None),
            ("tcpafilters/count/date/delete", "tcpa_entries", None),
            ("walletPageViews/exitLinkSummary", "wallet_page_views", "exitLink"),
            ("walletPageViews/referringSitesSummary", "wallet_page_views", "referringDomain"),
            ("walletPageViews/sessions/count/distinct", "wallet_page_views", None),
            ("walletPageViews/sessions/count/distinct/authenticated", "wallet_page_views",
             None),
            ("walletPageViews/sessions/count/distinct/first", "wallet_page_views", None),
            ("walletPageViews/sessions/distinct", "wallet_page_views", "sessionID"),
            ("walletPageViews/sessions/distinct/walletObjectsCount", "wallet_page_views",
             "walletObjectPrefix"),
            ("walletPageViews/sessions/verified/distinct/walletObjectsCount",
             "wallet_page_views", "walletObjectPrefix"),
        )
    ),
    *(
        _e(f"GET /v2/dashboard/count/{path}", entity)
        for path, entity in (
            ("appleWallet/subscribers", "apple_pass_subscribers"), ("employees", "employees"),
            ("members", "members"), ("membershipTiers", "membership_tiers"),
            ("newsArticles", "news_articles"), ("optInLists", "opt_in_lists"),
            ("optInSources", "opt_in_sources"), ("performances", "performances"),
            ("phoneNumbers", "phone_numbers"), ("pos/machines", "pos_machines"),
            ("pos/redemptions", "ledger_entries"), ("pos/refunds", "ledger_entries"),
            ("pos/transactions", "ledger_entries"), ("sms/outbound", "outbound_sms"),
            ("staticVoucherCampaigns/active", "static_voucher_campaigns"),
            ("staticVouchers/active", "static_vouchers"), ("subscribers", "subscribers"),
            ("visitors", "wallet_page_views"), ("wallet/pageViews", "wallet_page_views"),
        )
    ),
)

# Routes that only repeat the records of a canonical table: (that table, why it is enough).
REPEATS: dict[str, tuple[str, str]] = {
    "GET /system/industries/trimmed": ("industries", "the same industries, less metadata"),
    "GET /v2/merchant/employees/public": (
        "employees", "the public representatives (is_public_representative)"),
    "GET /v2/employee": ("employees", "the one employee the API key belongs to"),
    "GET /v2/sms/paymentObjectBroadcasts/{phoneNumberID}": (
        "campaign_broadcasts", "a phone number's broadcasts (phone_number_id); those of ad "
        "credits and dynamic vouchers load in ad_credit_broadcasts, dynamic_voucher_broadcasts"),
    "GET /v2/sms/phoneNumber/blocked/{phoneNumberID}": (
        "tcpa_entries", "a phone number's blocked numbers (phone_number_id)"),
    "GET /v2/sms/phoneNumber/lists/{phoneNumberID}": (
        "opt_in_lists", "a phone number's lists (phone_number_id)"),
    "GET /v2/sms/phoneNumber/sources/{phoneNumberID}": (
        "opt_in_sources", "a phone number's sources (list_id, then the list's phone_number_id)"),
    "GET /v2/employee/optInListSources/all": (
        "opt_in_sources", "the same sources, without the archived ones"),
    "GET /v2/sms/optInList/subscribers/{listID}": (
        "opt_in_list_subscriber_pages", "the same subscribers per list, unpaged"),
    "GET /v2/sms/optInSource/subscribers/{sourceID}": (
        "opt_in_list_subscriber_pages", "a source's subscribers (opt_in_source_id)"),
    "GET /v2/sms/importedList/recipients/{listID}": (
        "imported_list_recipient_pages", "the same recipients per list, unpaged, and no way "
        "to ask for archived ones"),
    "POST /v2/membership/member/search": (
        "members", "an empty search answers every member, as the member list does"),
    "GET /v2/settings/campaigns/active": (
        "static_voucher_campaigns", "the active campaigns (is_active, start and expiration "
        "dates)"),
    "GET /v2/payment/staticVoucherCampaign/staticVouchers/{campaignID}": (
        "static_voucher_campaign_static_voucher_pages", "the same vouchers per campaign, "
        "unpaged (one response per campaign, however large its file)"),
    "GET /v2/payment/staticVoucherCampaign/views/{campaignID}": (
        "static_voucher_campaign_page_views", "the same page views of each campaign"),
    "GET /v2/employee/dynamicVouchers/all": ("dynamic_vouchers", "the same dynamic vouchers"),
    "POST /v2/payment/merchantcredit/search": (
        "merchant_credits", "an empty search answers every credit, as the credit list does"),
    "GET /v2/performances/tickets/all/{id}": (
        "performance_ticket_pages", "the same tickets, unpaged, by a deprecated route"),
    "GET /v2/pos/infogenesis/postingIDs/redeemed": (
        "infogenesis_redemptions", "the redemptions' unique_posting_id values"),
    "POST /v2/pos/infogenesis/routingIDs/refunded": (
        "infogenesis_refunds", "the refunds' unique posting ids"),
}

# Read routes the connector deliberately does not load, each with the reason.
EXCLUDED: dict[str, str] = {
    "POST /v2/customer/search/memberID": "lookup of one customer by an identifier the caller "
    "must supply; the members table already holds every member",
    "POST /v2/customer/search/phoneNumber": "lookup of one customer by phone number; the "
    "members table already holds every member",
    "GET /v2/merchant/sms/outbound/{phoneNumberID}": "the conversation with one recipient "
    "(toPhoneNumber is required); every outbound SMS loads through phone_number_outbound_sms",
    "POST /v2/pos/infogenesis/campaign": "answers a yes/no question about one POS campaign "
    "(a boolean), not data to load",
    "POST /v2/pos/infogenesis/requests": "lookup by routing IDs the caller supplies; the same "
    "requests load through infogenesis_lookup_requests",
    "POST /v2/pos/infogenesis/responses": "lookup by routing IDs the caller supplies; errors "
    "load through infogenesis_response_errors",
    "POST /v2/pos/infogenesis/requests/lookup/errors": "lookup by request IDs the caller "
    "supplies; errors load through infogenesis_response_errors",
    "POST /v2/pos/infogenesis/staticVouchers/redeemed": "lookup by posting IDs the caller "
    "supplies; redeemed vouchers load through static_voucher_campaign_redeemed_vouchers",
    "POST /v2/pos/infogenesis/staticVouchers/refunded": "lookup by routing IDs the caller "
    "supplies; vouchers load through static_voucher_campaign_static_voucher_pages",
    "POST /v2/pos/infogenesis/transactions": "lookup by posting IDs the caller supplies; "
    "transactions load through ledger_transactions",
    "GET /v2/payment/staticVoucherCampaignGroups/campaigns/{campaignsGroupID}": "campaign "
    "groups have no list route to fan out from; campaigns carry campaignGroupID",
    "GET /v2/payment/staticVoucher/reach/{staticVoucherID}": "one request per voucher would "
    "cost millions of requests; reach per campaign and overall reach are loaded",
    "GET /v2/analytics/walletPageViews/staticVoucher/{voucherID}": "one request per voucher "
    "would cost millions of requests; page views load per campaign, card and URL",
    "GET /v2/analytics/walletPageViews/session/activity/{sessionID}": "one request per "
    "visitor session; the same page views load per campaign, card and URL",
    "GET /v2/customer/walletViews/session/{id}": "one request per visitor session; the same "
    "page views load per campaign, card and URL",
    **{route: f"repeats records of {table}: {why}" for route, (table, why) in REPEATS.items()},
    **{
        f"GET /v2/customer/vouchers/{state}": "per-customer view (memberID or cellPhoneNumber "
        "required in practice); the same vouchers load per campaign"
        for state in ("active", "all", "expired", "redeemed", "refunded", "upcoming")
    },
}

# Kinds of read route the completeness test holds the catalog to.
LOADED_READ_KINDS = frozenset({"list", "child_list", "paged", "count", "analytics", "report"})


def entries_by_name() -> dict[str, Entry]:
    return {entry.name: entry for entry in ENTRIES}


@functools.cache
def canonical_tables() -> dict[str, str]:
    """Record family -> the one table an analyst joins on for it."""
    return {entry.family: entry.name for entry in ENTRIES if entry.family and entry.canonical}


def canonical_table(family: str) -> str | None:
    return canonical_tables().get(family)
