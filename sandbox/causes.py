"""What a change in the world changes besides itself: every causal rule `World.advance`
applies, in one place (the README's "Sandbox" section lists the same table).

The sandbox is the stand-in for the real API when change detection is tested, so its changes
must spread the way the real merchant's would: a points-history row is written because the
member's points moved, a voucher redemption posts a ledger transaction. Records nothing
touches stay exactly as they were: links never move, `updatedAt` never changes on its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """When records of `entity` are `when` (created or updated), `target` records are
    touched (the one each record names in its `link` field: new revision, `updatedAt` now)
    or created (one per record)."""

    when: str  # "created" | "updated"
    entity: str
    effect: str  # "touches" | "creates"
    target: str
    link: str | None
    why: str


def _touch(entity: str, link: str, target: str, why: str) -> Rule:
    return Rule("created", entity, "touches", target, link, why)


RULES: tuple[Rule, ...] = (
    _touch("member_points_history", "memberID", "members",
           "a points-history row changes its member's points (pointsAccrued) and updatedAt"),
    _touch("member_redemptions", "memberID", "members",
           "a points redemption changes its member's points and updatedAt"),
    _touch("tier_points_history", "membershipTierID", "membership_tiers",
           "a tier points-history row changes its tier's totals and updatedAt"),
    _touch("tier_redemptions", "membershipTierID", "membership_tiers",
           "a tier redemption changes its tier's totals and updatedAt"),
    _touch("merchant_credit_history", "merchantCreditID", "merchant_credits",
           "a credit-history row changes its merchant credit's balance and updatedAt"),
    _touch("merchant_credit_redemptions", "merchantCreditID", "merchant_credits",
           "a credit redemption changes its merchant credit's balance and updatedAt"),
    _touch("dynamic_voucher_redemptions", "dynamicVoucherID", "dynamic_vouchers",
           "a dynamic-voucher redemption changes its voucher's remaining value and updatedAt"),
    _touch("advertisement_credit_scans", "advertisementCreditID", "advertisement_credits",
           "a scan changes its advertisement credit's counters and updatedAt"),
    _touch("tickets", "performanceID", "performances",
           "a ticket sold changes its performance's seats and updatedAt"),
    _touch("openai_messages", "threadID", "openai_threads",
           "a message changes its thread's updatedAt"),
    _touch("subscribers", "optInListID", "opt_in_lists",
           "a subscriber joining changes its opt-in list's updatedAt"),
    _touch("imported_list_recipients", "importedListID", "imported_lists",
           "a recipient imported changes its list's updatedAt"),
    Rule("updated", "static_vouchers", "creates", "ledger_entries", None,
         "a voucher changes when it is redeemed or refunded at a register, which posts one "
         "ledger transaction"),
    Rule("created", "dynamic_voucher_redemptions", "creates", "ledger_entries", None,
         "a dynamic-voucher redemption posts one ledger transaction"),
    Rule("created", "advertisement_credit_scans", "creates", "ledger_entries", None,
         "an advertisement-credit redemption posts one ledger transaction"),
    Rule("created", "merchant_credit_redemptions", "creates", "ledger_entries", None,
         "a merchant-credit redemption posts one ledger transaction"),
)

# Deliberately not propagated (the connector must not rely on them; the README says so too):
# a new outbound or inbound SMS belongs to its phone number (phoneNumberID) but does not change
# the phone number's record, as the API gives no evidence of new SMS on the parent; a new
# voucher, view or broadcast of a campaign does not change the campaign's record.


def rules_for(when: str, entity: str) -> tuple[Rule, ...]:
    return tuple(r for r in RULES if r.when == when and r.entity == entity)
