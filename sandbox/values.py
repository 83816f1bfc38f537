"""Plausible values where the reference gives no enum, and states that must agree with each
other, listed as the assumptions they are (the README's "Sandbox values" repeats them).

The reference types these fields but says nothing of their values; placeholders such as
`status 7`, or an SMS both delivered and failed, would make the demo's questions (delivery
rate, voucher funnel, refunds) unanswerable.
"""

from __future__ import annotations

# Field of an entity -> the values it cycles through (by record index). Repeats set shares:
# 1 in 10 ledger transactions is a refund, 1 in 4 SMS is not delivered.
DOMAIN_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("outbound_sms", "status"): ("delivered",) * 6 + ("sent", "queued", "failed", "undelivered"),
    ("inbound_sms", "status"): ("received",),
    ("ledger_entries", "transactionType"): ("redemption",) * 9 + ("refund",),
    ("ledger_entries", "registerType"): ("infogenesis", "mobile", "web"),
    ("ledger_entries", "paymentObjectPrefix"): ("staticVoucher",),
    ("ledger_entries", "parentObjectPrefix"): ("staticVoucherCampaign",),
    ("static_vouchers", "status"): ("active", "redeemed", "expired"),
    ("static_vouchers", "transactionType"): ("redemption",),
    ("static_vouchers", "redeemedSource"): ("pos", "mobile", "web"),
    ("tickets", "transactionType"): ("redemption",),
    ("tickets", "redeemedSource"): ("pos", "mobile", "web"),
}

# Field names that name a record of an entity without being declared links (the ledger's
# payment object is a static voucher, as `paymentObjectPrefix` says).
FIELD_TARGETS: dict[str, str] = {
    "registerID": "pos_machines",
    "recipientMemberID": "members",
    "customerID": "members",
    "paymentObjectBroadcastID": "campaign_broadcasts",
    "merchantPhoneNumberID": "phone_numbers",
    "refundedLedgerEntryID": "ledger_entries",  # the entry just before a refund
    "paymentObjectID": "static_vouchers",
    "parentObjectID": "static_voucher_campaigns",
}

_REDEEMED = "{isRedeemed}"
_REFUNDED = "{isRedeemed} and i % 5 == 0"  # 1 in 5 redemptions is refunded
_NOT_DELIVERED = "{status} in ('failed', 'undelivered')"

# Field of an entity -> the condition (over the record's other fields, `{field}`, and its
# index `i`) under which it has a value; otherwise it is null.
CONDITIONS: dict[tuple[str, str], str] = {
    ("outbound_sms", "errorCode"): _NOT_DELIVERED,
    ("outbound_sms", "errorMessage"): _NOT_DELIVERED,
    ("outbound_sms", "deliveredAt"): "{status} == 'delivered'",
    ("ledger_entries", "refundedLedgerEntryID"): "{transactionType} == 'refund'",
    **{("static_vouchers", name): _REDEEMED
       for name in ("redeemedTransactionID", "redeemedAmount", "dateTimeRedeemed",
                    "redeemedSource", "registerID", "transactionType")},
    **{("static_vouchers", name): _REFUNDED
       for name in ("refundedTransactionID", "refundedAmount", "dateTimeRefunded")},
    **{("tickets", name): "{isRedeemed}"
       for name in ("redeemedSource", "redeemedTransactionID", "transactionType", "registerID",
                    "dateTimeRedeemed")},
    ("tickets", "dateTimeClaimed"): "{isClaimed}",
    ("tickets", "claimedByPhoneNumber"): "{isClaimed}",
}
