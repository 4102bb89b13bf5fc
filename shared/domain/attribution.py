"""Which purchases a campaign earned, and the campaign's results in both arms.

A purchase is a **conversion** of a campaign message when the campaign's goal is a
purchase and the purchase falls in the message's attribution window. Held-out
messages (never sent) are attributed exactly like sent ones: that is what makes
the treatment against holdout comparison honest.

The window is the same for both arms: it opens when the message was due (the row's
creation, when the trigger was handled, plus the campaign's delay) and lasts the
goal's ``within``. It does not open at the send, which a held-out message never
has, and which quiet hours or the best hour may push later for the treatment only.

A message counts in the comparison once the buyer was drawn into an arm: held out,
or decided past the holdout step (sent, capped, quiet hours, ...). A message
dropped before the draw (not in the audience, no consent, the buyer left the
segment or already converted before the due moment) or still waiting for its
delay is in neither arm (:func:`in_comparison`).

:func:`campaign_results` turns a campaign's messages and conversions into the
inputs of :func:`shared.domain.reports.campaign_report`, counting buyers, not
messages: a buyer stays in one arm of a campaign for good (the holdout draw is a
hash of campaign and buyer).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from shared.domain.campaigns import Campaign
from shared.domain.reports import CampaignReport, Funnel, campaign_report

__all__ = [
    "BEFORE_THE_DRAW",
    "NOT_SENT",
    "RESPONSES",
    "CampaignMessage",
    "CampaignResults",
    "Conversion",
    "MessageResponse",
    "Purchase",
    "attribute",
    "campaign_results",
    "in_comparison",
]

BEFORE_THE_DRAW: Final = frozenset(
    {
        "campaign_not_live",
        "not_in_audience",
        "no_address",
        "unsubscribed",
        "suppressed",
        "unreachable",
        "left_segment",
        "back_in_segment",
        "moment_moved",
        "converted",
        "delay",
    }
)
"""Reasons a message ended (or waits) before the holdout draw: it is in neither arm."""

NOT_SENT: Final = frozenset({"failed", "rejected"})
"""Statuses of messages handed to a provider that never reached the buyer."""

RESPONSES: Final = ("delivered", "opened", "clicked")
"""What a delivery webhook reports of a message, as the funnel's steps, in order."""


@dataclass(frozen=True)
class CampaignMessage:
    """A message row as attribution and reports read it."""

    key: str
    campaign: str
    profile_id: str
    holdout: bool
    status: str
    reason: str | None
    created_at: datetime
    """When the trigger was handled: the message was due at this plus the campaign's delay."""
    sent_at: datetime | None = None


@dataclass(frozen=True)
class Purchase:
    order_id: str
    amount: Decimal
    at: datetime


@dataclass(frozen=True)
class Conversion:
    """One purchase attributed to one message (unique per message and order)."""

    message_key: str
    campaign: str
    profile_id: str
    holdout: bool
    order_id: str
    amount: Decimal
    converted_at: datetime


@dataclass(frozen=True)
class MessageResponse:
    """A delivery webhook's report on one message: delivered, opened or clicked."""

    message_key: str
    response: str
    at: datetime


def in_comparison(message: CampaignMessage) -> bool:
    """The buyer of ``message`` was drawn into an arm: held out, or decided past the draw."""
    return message.holdout or (message.reason or "") not in BEFORE_THE_DRAW


def attribute(
    purchase: Purchase,
    messages: Iterable[CampaignMessage],
    campaigns: Mapping[str, Campaign],
) -> list[Conversion]:
    """The conversions ``purchase`` makes among one buyer's ``messages``.

    A message converts when its campaign (looked up in ``campaigns``; unknown ones
    are skipped) has a purchase goal, the message is in the comparison, and
    ``due <= purchase.at <= due + goal.within`` with ``due = created_at + delay``.
    """
    found: list[Conversion] = []
    for message in messages:
        campaign = campaigns.get(message.campaign)
        if campaign is None or campaign.goal.event != "purchase" or not in_comparison(message):
            continue
        due = message.created_at + campaign.delay
        if due <= purchase.at <= due + campaign.goal.within:
            found.append(
                Conversion(
                    message.key,
                    message.campaign,
                    message.profile_id,
                    message.holdout,
                    purchase.order_id,
                    purchase.amount,
                    purchase.at,
                )
            )
    return found


@dataclass(frozen=True)
class CampaignResults:
    """A campaign's buyers per arm, as :func:`~shared.domain.reports.campaign_report` takes
    them: counts of buyers, and what each converted buyer spent (distinct orders)."""

    audience: int
    """Buyers in the treatment arm."""
    sent: int
    """Treatment buyers with at least one message handed to a provider (not failed)."""
    delivered: int
    """Of those, buyers with a message reported delivered, opened or clicked."""
    opened: int
    """Buyers with a message reported opened or clicked (a click implies the open)."""
    clicked: int
    converted: int
    holdout_size: int
    holdout_converted: int
    treatment_revenues: tuple[Decimal, ...]
    holdout_revenues: tuple[Decimal, ...]

    @property
    def treatment_revenue(self) -> Decimal:
        return sum(self.treatment_revenues, Decimal(0))

    @property
    def holdout_revenue(self) -> Decimal:
        return sum(self.holdout_revenues, Decimal(0))

    def report(
        self, *, confidence: float = 0.95, holdout_share: float | None = None
    ) -> CampaignReport:
        """The report: the funnel, and treatment against holdout (none, for a campaign
        whose ``holdout_share`` is 0)."""
        funnel = Funnel(
            self.audience, self.sent, self.delivered, self.opened, self.clicked, self.converted
        )
        return campaign_report(
            funnel,
            holdout_size=self.holdout_size,
            holdout_converted=self.holdout_converted,
            treatment_revenues=[float(r) for r in self.treatment_revenues],
            holdout_revenues=[float(r) for r in self.holdout_revenues],
            confidence=confidence,
            holdout_share=holdout_share,
        )


def campaign_results(
    messages: Sequence[CampaignMessage],
    conversions: Sequence[Conversion],
    responses: Iterable[MessageResponse] = (),
) -> CampaignResults:
    """Buyers per arm from one campaign's message rows, conversions and delivery reports.

    A buyer is held out if any of their messages in the comparison is (the draw is
    the same for every message of the campaign). Revenue counts each order once per
    buyer, however many of the buyer's messages it converted. A later funnel step
    implies the earlier ones (a click, the open and the delivery), so each step
    counts at most the buyers of the step before.
    """
    held: set[str] = set()
    treated: set[str] = set()
    reached: dict[str, str] = {}
    """Message key to buyer, for the treatment's messages handed to a provider."""
    for m in messages:
        if not in_comparison(m):
            continue
        if m.holdout:
            held.add(m.profile_id)
        else:
            treated.add(m.profile_id)
            if m.sent_at is not None and m.status not in NOT_SENT:
                reached[m.key] = m.profile_id
    treated -= held
    reached = {key: buyer for key, buyer in reached.items() if buyer in treated}
    furthest: dict[str, int] = {}
    """Buyer to the furthest funnel step any of their messages got to (0: delivered)."""
    for r in responses:
        buyer = reached.get(r.message_key)
        if buyer is not None and r.response in RESPONSES:
            furthest[buyer] = max(furthest.get(buyer, -1), RESPONSES.index(r.response))
    orders: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for c in conversions:
        if c.profile_id in held or c.profile_id in treated:
            orders[c.profile_id][c.order_id] = c.amount
    spent = {buyer: sum(by_order.values(), Decimal(0)) for buyer, by_order in orders.items()}
    return CampaignResults(
        audience=len(treated),
        sent=len(set(reached.values())),
        delivered=len(furthest),
        opened=sum(1 for step in furthest.values() if step >= 1),
        clicked=sum(1 for step in furthest.values() if step >= 2),
        converted=sum(1 for b in spent if b in treated),
        holdout_size=len(held),
        holdout_converted=sum(1 for b in spent if b in held),
        treatment_revenues=tuple(v for b, v in sorted(spent.items()) if b in treated),
        holdout_revenues=tuple(v for b, v in sorted(spent.items()) if b in held),
    )
