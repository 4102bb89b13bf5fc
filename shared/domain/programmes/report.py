"""A programme's report: who entered, where they are, how they left, what each step and
variant sent and converted, and the programme against its holdout.

Everything is counted from plain rows (:class:`ProgrammeFacts`): the programme's
positions (one per entry), its step messages (campaign key ``programme.step.variant``),
the delivery reports on them, and the orders of the buyers who entered.

- **The programme against its holdout** is intention to treat, per buyer, like a
  campaign's report (:mod:`shared.domain.reports`, the same intervals and verdicts): a
  buyer is held out when their entries are (the draw is per programme and buyer), and
  converted when an order falls within the goal's window after one of their entries,
  whether or not a message reached them.
- **A variant's conversion** counts the buyers its step decided a message for in that
  variant (past the decisions that come before any draw: consent, audience, an address)
  and, of those, the buyers with an order within the goal's window after that message
  was due: Wilson's interval, and the counts an adaptive split learns from
  (:mod:`.adaptive`, :func:`split_shares`).

Only a purchase goal is measured from orders; another goal's conversions are ``0``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from shared.domain.attribution import (
    NOT_SENT,
    RESPONSES,
    CampaignMessage,
    CampaignResults,
    MessageResponse,
    in_comparison,
)
from shared.domain.programmes.adaptive import Learning, learn
from shared.domain.programmes.model import Programme, Send
from shared.domain.programmes.stepping import split_step_campaign_key
from shared.domain.reports import CampaignReport, Estimate, wilson_interval

__all__ = [
    "BuyerOrder",
    "EntryFacts",
    "ProgrammeFacts",
    "ProgrammeReport",
    "StepReport",
    "VariantReport",
    "programme_report",
    "split_shares",
    "variant_counts",
]


@dataclass(frozen=True)
class EntryFacts:
    """One entry of one buyer: held out or not, when, and where it is (or how it ended)."""

    profile_id: str
    holdout: bool
    entered_at: datetime
    step: str
    exit_reason: str | None = None
    """``None`` while the buyer is inside."""


@dataclass(frozen=True)
class BuyerOrder:
    profile_id: str
    order_id: str
    amount: Decimal
    at: datetime


@dataclass(frozen=True)
class ProgrammeFacts:
    """The rows a programme's report is counted from."""

    entries: Sequence[EntryFacts] = ()
    messages: Sequence[CampaignMessage] = ()
    """The programme's step messages (campaign keys ``programme.step.variant``)."""
    responses: Sequence[MessageResponse] = ()
    orders: Sequence[BuyerOrder] = ()
    """The orders of the buyers who entered."""


@dataclass(frozen=True)
class VariantReport:
    name: str
    buyers: int
    """Buyers the step decided a message for in this variant (past the draw)."""
    sent: int
    delivered: int
    opened: int
    clicked: int
    converted: int
    """Of ``buyers``, those with an order within the goal's window after the message."""
    conversion: Estimate | None
    by_reason: Mapping[str, int] = field(default_factory=dict)
    """The messages not sent, by the decision's reason (``capped``, ``quiet_hours``, ...)."""


@dataclass(frozen=True)
class StepReport:
    step: str
    variants: tuple[VariantReport, ...]
    learning: Learning | None = None
    """For an adaptive split: each variant's chance of being best, its share of new
    buyers now, and the winner once there is one (:mod:`.adaptive`)."""


@dataclass(frozen=True)
class ProgrammeReport:
    entered: int
    """Entries of the treatment (not held out)."""
    holdout_entries: int
    at_step: Mapping[str, int]
    """Treatment entries inside, per step they are at."""
    exited: Mapping[str, int]
    """Treatment entries ended, per reason (``goal``, ``left_audience``, ``end``, ...)."""
    steps: tuple[StepReport, ...]
    results: CampaignResults
    """The programme's buyers in both arms (as a campaign's)."""
    overall: CampaignReport
    """The programme against its holdout."""


def _converted(
    orders: Sequence[BuyerOrder], since: datetime, within: timedelta
) -> dict[str, Decimal]:
    return {o.order_id: o.amount for o in orders if since < o.at <= since + within}


def variant_counts(
    programme: Programme, step: Send, facts: ProgrammeFacts
) -> dict[str, tuple[int, int]]:
    """Per variant of ``step``: (buyers decided past the draw, of them converted)."""
    report = _step_report(programme, step, facts, _orders_by_buyer(facts.orders), {})
    return {v.name: (v.buyers, v.converted) for v in report.variants}


def split_shares(programme: Programme, facts: ProgrammeFacts) -> dict[str, tuple[float, ...]]:
    """Per adaptive send step of ``programme``, its variants' shares of new buyers now,
    learnt from ``facts`` (what :func:`~.stepping.walk` takes as ``splits``)."""
    orders = _orders_by_buyer(facts.orders)
    found: dict[str, tuple[float, ...]] = {}
    for step in programme.sends:
        if step.adaptive is not None:
            learning = _step_report(programme, step, facts, orders, {}).learning
            assert learning is not None
            found[step.id] = learning.shares
    return found


def _orders_by_buyer(orders: Iterable[BuyerOrder]) -> dict[str, list[BuyerOrder]]:
    found: dict[str, list[BuyerOrder]] = defaultdict(list)
    for o in orders:
        found[o.profile_id].append(o)
    return found


def _furthest(responses: Iterable[MessageResponse]) -> dict[str, int]:
    """Message key to the furthest response reported (0: delivered, 2: clicked)."""
    found: dict[str, int] = {}
    for r in responses:
        if r.response in RESPONSES:
            found[r.message_key] = max(found.get(r.message_key, -1), RESPONSES.index(r.response))
    return found


def _step_report(
    programme: Programme,
    step: Send,
    facts: ProgrammeFacts,
    orders: Mapping[str, Sequence[BuyerOrder]],
    furthest: Mapping[str, int],
    *,
    confidence: float = 0.95,
) -> StepReport:
    purchase = programme.goal.event == "purchase"
    by_variant: dict[str, list[CampaignMessage]] = defaultdict(list)
    for m in facts.messages:
        parts = split_step_campaign_key(m.campaign)
        if parts is not None and parts[0] == programme.key and parts[1] == step.id:
            by_variant[parts[2]].append(m)
    names = [v.name for v in step.variants]
    names += sorted(n for n in by_variant if n not in names)  # a variant since removed
    variants = []
    for name in names:
        messages = [m for m in by_variant.get(name, []) if in_comparison(m)]
        buyers = {m.profile_id for m in messages}
        sent = [m for m in messages if m.sent_at is not None and m.status not in NOT_SENT]
        reached = [furthest.get(m.key, -1) for m in sent]
        converted = {
            m.profile_id
            for m in messages
            if purchase
            and _converted(orders.get(m.profile_id, ()), m.created_at, programme.goal.within)
        }
        reasons: dict[str, int] = defaultdict(int)
        for m in by_variant.get(name, []):
            if m.sent_at is None and m.reason:
                reasons[m.reason] += 1
        variants.append(
            VariantReport(
                name=name,
                buyers=len(buyers),
                sent=len({m.profile_id for m in sent}),
                delivered=sum(1 for r in reached if r >= 0),
                opened=sum(1 for r in reached if r >= 1),
                clicked=sum(1 for r in reached if r >= 2),
                converted=len(converted),
                conversion=wilson_interval(len(converted), len(buyers), confidence=confidence),
                by_reason=dict(sorted(reasons.items())),
            )
        )
    learning = None
    if step.adaptive is not None:
        counts = {v.name: (v.buyers, v.converted) for v in variants}
        learning = learn([v.name for v in step.variants], counts, step.adaptive)
    return StepReport(step.id, tuple(variants), learning)


def programme_report(
    programme: Programme, facts: ProgrammeFacts, *, confidence: float = 0.95
) -> ProgrammeReport:
    """The report of ``programme`` (its current version: its steps and goal) from ``facts``."""
    orders = _orders_by_buyer(facts.orders)
    furthest = _furthest(facts.responses)
    treated: set[str] = set()
    held: set[str] = set()
    at_step: dict[str, int] = defaultdict(int)
    exited: dict[str, int] = defaultdict(int)
    spent: dict[str, dict[str, Decimal]] = defaultdict(dict)
    purchase = programme.goal.event == "purchase"
    for e in facts.entries:
        (held if e.holdout else treated).add(e.profile_id)
        if not e.holdout:
            if e.exit_reason is None:
                at_step[e.step] += 1
            else:
                exited[e.exit_reason] += 1
        if purchase:
            bought = _converted(orders.get(e.profile_id, ()), e.entered_at, programme.goal.within)
            spent[e.profile_id].update(bought)
    treated -= held
    sent_to: set[str] = set()
    reach: dict[str, int] = {}
    for m in facts.messages:
        if m.profile_id in treated and m.sent_at is not None and m.status not in NOT_SENT:
            sent_to.add(m.profile_id)
            reach[m.profile_id] = max(reach.get(m.profile_id, -1), furthest.get(m.key, -1))
    revenue = {b: sum(by.values(), Decimal(0)) for b, by in spent.items() if by}
    results = CampaignResults(
        audience=len(treated),
        sent=len(sent_to),
        delivered=sum(1 for r in reach.values() if r >= 0),
        opened=sum(1 for r in reach.values() if r >= 1),
        clicked=sum(1 for r in reach.values() if r >= 2),
        converted=sum(1 for b in revenue if b in treated),
        holdout_size=len(held),
        holdout_converted=sum(1 for b in revenue if b in held),
        treatment_revenues=tuple(v for b, v in sorted(revenue.items()) if b in treated),
        holdout_revenues=tuple(v for b, v in sorted(revenue.items()) if b in held),
    )
    steps = tuple(
        _step_report(programme, s, facts, orders, furthest, confidence=confidence)
        for s in programme.sends
    )
    return ProgrammeReport(
        entered=sum(1 for e in facts.entries if not e.holdout),
        holdout_entries=sum(1 for e in facts.entries if e.holdout),
        at_step=dict(at_step),
        exited=dict(exited),
        steps=steps,
        results=results,
        overall=results.report(confidence=confidence),
    )
