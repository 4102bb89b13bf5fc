"""Lifecycle stages: where a buyer stands in their life with the shop.

Every buyer is in exactly one stage at a moment, decided in this order:

1. ``lead``: identified, no order yet;
2. ``churned``: no order for :attr:`LifecyclePolicy.churned_after` (180 days);
3. ``pre-churn``: overdue against their own rhythm (the last order is older than
   :attr:`~LifecyclePolicy.overdue_factor` times the buyer's median gap between
   orders, with 2+ orders), or a probability of being alive (``p_alive``, from the
   scoring job) under :attr:`~LifecyclePolicy.p_alive_below`;
4. ``new``: one order;
5. ``loyal``: frequent (:attr:`~LifecyclePolicy.loyal_orders`, 4+ orders), or
   regular (3+ orders and gaps whose coefficient of variation is at most
   :attr:`~LifecyclePolicy.regular_cv_at_most`), or a high average check (at
   least :attr:`~LifecyclePolicy.loyal_avg_check`, off unless set);
6. ``repeat``: every other buyer with 2+ orders.

Time alone moves a buyer only into ``pre-churn`` (when the rhythm's deadline
passes) and ``churned``; :func:`next_stage_change` says when.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal, get_args

from shared.domain.profile import Profile

__all__ = [
    "DEFAULT_POLICY",
    "LIFECYCLE_READS",
    "STAGES",
    "LifecyclePolicy",
    "Stage",
    "next_stage_change",
    "stage",
]

Stage = Literal["lead", "new", "repeat", "loyal", "pre-churn", "churned"]
STAGES: tuple[Stage, ...] = get_args(Stage)
"""Every stage, in the order of a buyer's life."""

LIFECYCLE_READS = frozenset(
    {"orders_count", "last_order_at", "order_moments", "revenue_total", "avg_check", "p_alive"}
)
"""The profile fields a buyer's stage depends on (besides the clock)."""


@dataclass(frozen=True)
class LifecyclePolicy:
    """The thresholds between stages; the defaults suit a shop bought from monthly."""

    loyal_orders: int = 4
    """At least this many orders make a buyer loyal (frequent)."""
    regular_orders: int = 3
    """A regular rhythm makes a buyer loyal from this many orders on."""
    regular_cv_at_most: float = 0.5
    """A rhythm is regular when the gaps' standard deviation is at most this share of their mean."""
    loyal_avg_check: Decimal | None = None
    """An average check of at least this makes a buyer of 2+ orders loyal; ``None``: not used."""
    overdue_factor: float = 1.5
    """Pre-churn once the last order is older than this many of the buyer's median gaps."""
    p_alive_below: float = 0.3
    """Pre-churn once the scoring job's probability of being alive is under this."""
    churned_after: timedelta = timedelta(days=180)
    """Churned after this long without an order."""


DEFAULT_POLICY = LifecyclePolicy()


def stage(profile: Profile, now: datetime, policy: LifecyclePolicy = DEFAULT_POLICY) -> Stage:
    """The buyer's lifecycle stage at ``now``."""
    last = profile.last_order_at
    if profile.orders_count == 0 or last is None:
        return "lead"
    if now - last >= policy.churned_after:
        return "churned"
    deadline = _overdue_at(profile, policy)
    overdue = deadline is not None and now >= deadline
    if overdue or (profile.p_alive is not None and profile.p_alive < policy.p_alive_below):
        return "pre-churn"
    if profile.orders_count == 1:
        return "new"
    if _loyal(profile, policy):
        return "loyal"
    return "repeat"


def next_stage_change(
    profile: Profile, now: datetime, policy: LifecyclePolicy = DEFAULT_POLICY
) -> datetime | None:
    """The earliest moment after ``now`` at which the stage changes with no event, or ``None``."""
    last = profile.last_order_at
    if profile.orders_count == 0 or last is None:
        return None
    current = stage(profile, now, policy)
    candidates = sorted(
        m for m in (_overdue_at(profile, policy), last + policy.churned_after) if m is not None
    )
    for moment in candidates:
        if moment > now and stage(profile, moment, policy) != current:
            return moment
    return None


def _overdue_at(profile: Profile, policy: LifecyclePolicy) -> datetime | None:
    """When the buyer is overdue against their own rhythm: last order + factor x median gap."""
    median = profile.median_days_between_orders
    if median is None or median <= 0 or profile.last_order_at is None:
        return None
    return profile.last_order_at + timedelta(days=median * policy.overdue_factor)


def _loyal(profile: Profile, policy: LifecyclePolicy) -> bool:
    if profile.orders_count >= policy.loyal_orders:
        return True
    check = profile.avg_check
    if policy.loyal_avg_check is not None and check is not None and check >= policy.loyal_avg_check:
        return True
    gaps = profile.days_between_orders
    if profile.orders_count < policy.regular_orders or len(gaps) < 2:
        return False
    mean = sum(gaps) / len(gaps)
    if mean <= 0:
        return False
    spread = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps))  # population deviation
    return spread / mean <= policy.regular_cv_at_most
