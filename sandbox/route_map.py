"""Which world entity each read route of the reference serves, scoped by which parent, and
how it answers.

Derived from the reference where it says enough: the schema of one record names the entity
(by name, else by its fields); a path parameter named like a link field of that entity
(`phoneNumberID`) names the parent. The tables below state the rest, in the sandbox's own
words: aggregate routes name no record schema, and `{id}`-style parameters name no entity.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from wallet_elt.sandbox import reference
from wallet_elt.sandbox.reference import Operation
from wallet_elt.sandbox.world import CATEGORICAL, ENTITY_DEFS

# Entity by path prefix, for routes whose answer names no record schema of an entity (the
# longest matching prefix wins).
PATH_ENTITIES: dict[str, str] = {
    "/system/industries/": "industries",
    "/authentication/status/": "employees",
    "/v2/employee/file/": "documents",
    "/v2/pos/": "documents",  # item lookups of POS integrations: untyped documents
    "/v2/pos/infogenesis/": "infogenesis_requests",
    "/v2/pos/ledger/": "ledger_entries",
    "/v2/customer/search/": "members",
    "/v2/customer/vouchers/": "static_vouchers",
    "/v2/customer/walletViews/": "wallet_page_views",
    "/v2/a2p/application": "a2p_applications",
    "/v2/a2p/registration": "a2p_registrations",
    "/v2/sms/agreement": "sms_agreements",
    "/v2/sms/sent": "outbound_sms",
    "/v2/merchant/wallet/configuration": "wallet_configurations",
    "/v2/billing/invoices/all": "invoices",
    "/v2/billing/summary": "invoices",
    "/v2/billing/invoices/upcoming": "upcoming_invoices",
    "/v2/billing/paymentMethods/": "payment_methods",
    "/v2/billing/products/": "billing_products",
    "/v2/billing/subscription": "subscriptions",
    "/v2/employee/peer/permissions/": "employee_permissions",
    "/v2/apple/wallet/pass/subscribers/": "apple_pass_subscribers",
    "/v2/apple/wallet/pass/subscriber/activity/": "apple_pass_activities",
    "/v2/membership/": "members",
    "/v2/membership/tier/": "membership_tiers",
    "/v2/membership/member/history/": "member_points_history",
    "/v2/membership/member/redemption/": "member_redemptions",
    "/v2/membership/tier/history/": "tier_points_history",
    "/v2/membership/tier/redemption/": "tier_redemptions",
    "/v2/payment/merchantcredit/": "merchant_credits",
    "/v2/payment/merchantcredit/history/": "merchant_credit_history",
    "/v2/payment/merchantcredit/redemption/": "merchant_credit_redemptions",
    "/v2/payment/staticVoucherCampaign/": "static_vouchers",
    "/v2/payment/staticVoucherCampaign/preview/": "campaign_preview_messages",
    "/v2/payment/staticVoucherCampaignGroups/": "static_voucher_campaigns",
    "/v2/payment/staticVoucher/reach/": "outbound_sms",
    "/v2/payment/staticVoucherCampaign/reach/": "outbound_sms",
    "/v2/payment/dynamicVoucher/reach/": "outbound_sms",
    "/v2/sms/": "outbound_sms",
    "/v2/sms/optIn": "subscribers",
    "/v2/sms/importedList/": "imported_list_recipients",
    "/v2/merchant/sms/inbound/": "inbound_sms",
    "/v2/performances/": "tickets",
    "/v2/settings/vouchers/": "static_vouchers",
    "/v2/dashboard/count/appleWallet/": "apple_pass_subscribers",
    "/v2/dashboard/count/employees": "employees",
    "/v2/dashboard/count/members": "members",
    "/v2/dashboard/count/membershipTiers": "membership_tiers",
    "/v2/dashboard/count/newsArticles": "news_articles",
    "/v2/dashboard/count/optInLists": "opt_in_lists",
    "/v2/dashboard/count/optInSources": "opt_in_sources",
    "/v2/dashboard/count/performances": "performances",
    "/v2/dashboard/count/phoneNumbers": "phone_numbers",
    "/v2/dashboard/count/pos/": "ledger_entries",
    "/v2/dashboard/count/pos/machines": "pos_machines",
    "/v2/dashboard/count/sms/outbound": "outbound_sms",
    "/v2/dashboard/count/staticVoucherCampaigns/": "static_voucher_campaigns",
    "/v2/dashboard/count/staticVouchers/": "static_vouchers",
    "/v2/dashboard/count/subscribers": "subscribers",
    "/v2/dashboard/count/": "wallet_page_views",  # visitors, wallet page views
    "/v2/analytics/advertisementCredits/": "advertisement_credit_scans",
    "/v2/analytics/advertisementCredits/count/": "advertisement_credits",
    "/v2/analytics/campaigns/": "static_vouchers",
    "/v2/analytics/campaigns/count/": "static_voucher_campaigns",
    "/v2/analytics/campaigns/count/campaign/": "static_vouchers",
    "/v2/analytics/dynamicVouchers/": "dynamic_voucher_redemptions",
    "/v2/analytics/dynamicVouchers/count/": "dynamic_vouchers",
    "/v2/analytics/helpdeskrequests/": "help_desk_requests",
    "/v2/analytics/ledger/": "ledger_entries",
    "/v2/analytics/membership/member/count": "members",
    "/v2/analytics/membership/member/points/": "member_redemptions",
    "/v2/analytics/membership/merchantCredit/": "merchant_credit_redemptions",
    "/v2/analytics/membership/merchantCredit/count": "merchant_credits",
    "/v2/analytics/membership/tier/": "tier_redemptions",
    "/v2/analytics/outboundSMS/": "outbound_sms",
    "/v2/analytics/paymentObjectBroadcasts/": "campaign_broadcasts",
    "/v2/analytics/sms/all/subscribers/": "subscribers",
    "/v2/analytics/sms/inbound/": "inbound_sms",
    "/v2/analytics/sms/outbound/": "outbound_sms",
    "/v2/analytics/tcpa": "tcpa_entries",
    "/v2/analytics/walletPageViews/": "wallet_page_views",
}

# Routes whose record schema more than one entity has.
ROUTE_ENTITIES: dict[str, str] = {
    "GET /v2/interop/openai/thread/{id}/messages": "openai_messages",
}

# Parents a path parameter or body field names without saying which entity it is: route ->
# (parent entity, the child's link field to it).
PARENTS: dict[str, tuple[str, str]] = {
    "GET /v2/employee/peer/permissions/{userID}": ("employees", "employeeID"),
    "GET /v2/payment/staticVoucherCampaign/reach/{staticVoucherCampaignID}":
        ("static_voucher_campaigns", "campaignID"),
    "GET /v2/payment/dynamicVoucher/redemptions/{id}": ("dynamic_vouchers", "dynamicVoucherID"),
    "GET /v2/payment/advertisementCredit/scans/{id}":
        ("advertisement_credits", "advertisementCreditID"),
    "GET /v2/performances/tickets/all/{id}": ("performances", "performanceID"),
    "GET /v2/performances/{id}/claimed/count": ("performances", "performanceID"),
    "GET /v2/performances/{id}/redeemed/count": ("performances", "performanceID"),
    "GET /v2/interop/openai/thread/{id}/messages": ("openai_threads", "threadID"),
    "GET /v2/virtualBusinessCard/requests/{id}":
        ("virtual_business_cards", "virtualBusinessCardID"),
    "GET /v2/business/merchantUrl/requests/{id}": ("merchant_urls", "merchantURLID"),
    "GET /v2/sms/optInList/subscribers/{listID}": ("opt_in_lists", "optInListID"),
    "GET /v2/sms/optInList/subscribers/page/{listID}": ("opt_in_lists", "optInListID"),
    "GET /v2/sms/optInList/subscribers/count/{listID}": ("opt_in_lists", "optInListID"),
    "GET /v2/sms/optInSource/subscribers/{sourceID}": ("opt_in_sources", "optInSourceID"),
    "GET /v2/sms/optInSource/subscribers/count/{sourceID}": ("opt_in_sources", "optInSourceID"),
    "GET /v2/sms/importedList/recipients/{listID}": ("imported_lists", "importedListID"),
    "GET /v2/sms/importedList/recipients/page/{listID}": ("imported_lists", "importedListID"),
    "GET /v2/sms/importedList/recipients/count/{listID}": ("imported_lists", "importedListID"),
    # Logs of one parent, named by the body's `id`.
    "POST /v2/membership/member/history/log": ("members", "memberID"),
    "POST /v2/membership/member/redemption/log": ("members", "memberID"),
    "POST /v2/membership/tier/history/log": ("membership_tiers", "membershipTierID"),
    "POST /v2/membership/tier/redemption/log": ("membership_tiers", "membershipTierID"),
    "POST /v2/payment/merchantcredit/history/log": ("merchant_credits", "merchantCreditID"),
    "POST /v2/payment/merchantcredit/redemption/log": ("merchant_credits", "merchantCreditID"),
}

# Group-by field of by-dimension analytics, by the path segment that names it (where the
# segment + "ID" is no link field of the entity, or the field is not a link).
DIMENSION_SEGMENTS: dict[str, str] = {
    "adCredit": "advertisementCreditID",
    "exitLinkSummary": "exitLink",
    "referringSitesSummary": "referringDomain",
    "walletObjectsCount": "walletObjectPrefix",
}
# `/sessions/distinct` lists distinct sessions: grouped by session.
SESSION_ROUTES = frozenset({"GET /v2/analytics/walletPageViews/sessions/distinct"})
# Path words that select records by a boolean state field of the entity (`is<Word>`).
STATE_WORDS = ("redeemed", "claimed")
AMOUNT_PATH = re.compile(r"/(amount|sum)(/|$)|revenue|Amount|summary")


@dataclass(frozen=True)
class Service:
    """How the sandbox serves one route."""

    entity: str
    answer: str  # scalar | daily | aggregate | by_id | single | list
    parent: str | None = None
    link_field: str | None = None
    measure: str = "count"  # count | amount
    dimension: str | None = None
    record_filter: dict[str, bool] = field(default_factory=dict)


@functools.cache
def _shape(schema: str) -> frozenset[str]:
    return frozenset(reference.properties(reference.component(schema)))


@functools.cache
def _entity_by_schema() -> dict[str | frozenset[str], str]:
    """Entity by its schema's name and by its schema's fields (the reference names one
    shape several ways, e.g. Ticket and WTTicket)."""
    found: dict[str | frozenset[str], str] = {}
    for definition in ENTITY_DEFS.values():
        if definition.schema:
            found.setdefault(definition.schema, definition.name)
            if shape := _shape(definition.schema):
                found.setdefault(shape, definition.name)
    return found


def record_schema_name(op: Operation) -> str | None:
    """The component schema of one record of the answer, where it names one with fields."""
    name = reference.ref_name(op.record)
    return name if name and _shape(name) else None


def entity_of(op: Operation) -> str:
    if op.key in ROUTE_ENTITIES:
        return ROUTE_ENTITIES[op.key]
    by_schema = _entity_by_schema()
    for name in (record_schema_name(op), op.listed_schema):
        if name and (found := by_schema.get(name) or by_schema.get(_shape(name))):
            return found
    prefixes = [p for p in PATH_ENTITIES if op.path.startswith(p)]
    if not prefixes:
        raise LookupError(f"the sandbox maps {op.key} to no entity")
    return PATH_ENTITIES[max(prefixes, key=len)]


def parent_of(op: Operation, entity: str) -> tuple[str, str] | None:
    if op.key in PARENTS:
        return PARENTS[op.key]
    links = ENTITY_DEFS[entity].links
    for name in op.path_params:
        if name in links:
            return links[name], name
    return None


def _aggregate(op: Operation) -> bool:
    return op.read_kind in ("analytics", "count") or op.path.startswith(
        "/v2/pos/infogenesis/count/")


def _by_date(op: Operation) -> bool:
    return op.read_kind in ("analytics", "count") and bool(op.window_params) and (
        "/date" in op.path or "date" in reference.properties(op.record))


def _dimension(op: Operation, entity: str) -> str | None:
    if not op.path.startswith("/v2/analytics/") or _by_date(op):
        return None
    if op.key in SESSION_ROUTES:
        return "sessionID"
    links = ENTITY_DEFS[entity].links
    segments = op.path.split("/")
    if named := next((DIMENSION_SEGMENTS[s] for s in segments if s in DIMENSION_SEGMENTS), None):
        return named
    # `.../count/<dimension>[/<state>]`, `.../amount/<dimension>[/...]`
    for before, segment in itertools.pairwise(segments):
        if before in ("count", "amount") and segment + "ID" in links:
            return segment + "ID"
        if before in ("count", "amount") and segment in CATEGORICAL:
            return segment
    return None


def _record_filter(op: Operation, entity: str) -> dict[str, bool]:
    """`.../redeemed/...` selects redeemed records where the entity's records say so."""
    schema = ENTITY_DEFS[entity].schema
    fields = reference.properties(reference.component(schema)) if schema else {}
    words = op.path.split("/")
    return {f"is{w.title()}": True for w in STATE_WORDS
            if w in words and f"is{w.title()}" in fields}


def _answer(op: Operation, parent: tuple[str, str] | None) -> str:
    kind = resolve_type(op.response)
    if kind in ("string", "boolean", "integer", "number"):
        return "scalar"
    if _by_date(op):
        return "daily"
    if _aggregate(op):
        return "aggregate"
    if op.read_kind == "get_one" and op.path_params and parent is None:
        return "by_id"
    if op.read_kind == "get_one" and not op.returns_array:
        return "single"
    return "list"


def resolve_type(schema: dict[str, Any]) -> str | None:
    return reference.resolve(schema).get("type")


def service_of(op: Operation) -> Service:
    """How the sandbox serves `op`."""
    entity = entity_of(op)
    parent = parent_of(op, entity)
    return Service(
        entity=entity,
        answer=_answer(op, parent),
        parent=parent[0] if parent else None,
        link_field=parent[1] if parent else None,
        measure="amount" if AMOUNT_PATH.search(op.path) else "count",
        dimension=_dimension(op, entity),
        record_filter=_record_filter(op, entity),
    )
