"""The base-wide scoring job: RFM, BG/NBD, Gamma-Gamma and CLV for every buyer.

Run by the segmenter service every ``NUDGE_SCORING_INTERVAL_HOURS`` (one replica at
a time) and on demand by ``nudge score``. It reads every buyer's order totals
(``ScoringBase.page``, paged by id), scores the whole base at once
(``shared/domain/scoring.py``: quintiles and model fits need all of it), then writes
the scores back in batches through the segmenter (``Segmenter.apply_scores``): each
batch one transaction that also moves the memberships of segments reading a score
(``{rfm: champions}``, ``{p_alive: {below: 0.3}}``, ``{clv: {top_share: 0.1}}``),
so those changes leave through the outbox like any other.

The cost is the base's, by nature: a quintile or a model fit is about everyone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from services.segmenter.handlers import Segmenter
from services.segmenter.metrics import ScoringMetrics
from shared.domain.predictions import FittedModels
from shared.domain.profile import Scores
from shared.domain.scoring import (
    BaseFacts,
    BuyerFacts,
    BuyerScore,
    ScoringPolicy,
    facts_as_of,
    score_base,
)
from shared.domain.validation import BuyerOrders, OrderLog, choose_purchase_model
from shared.logging import get_logger
from shared.ports.clock import Clock
from shared.ports.orders import OrderHistory
from shared.ports.scoring import ScoringBase, ScoringRecord
from shared.settings import Settings

__all__ = ["ScoringRun", "policy_from", "score_the_base", "scoring_due"]

log = get_logger(__name__)

READ_BATCH = 50_000
WRITE_BATCH = 1_000
CENT = Decimal("0.01")

Progress = Callable[[str, int, int], None]
"""Called as ``(stage, done, total)``: stage ``read``, ``score`` or ``write``."""


@dataclass(frozen=True)
class ScoringRun:
    buyers: int
    scored: int
    """Buyers with at least one order (the others have no scores)."""
    changed: int
    """Buyers whose scores changed (``scored_at`` aside)."""
    customer_equity: float
    models: FittedModels | None
    notes: tuple[str, ...]
    seconds: float
    scored_at: datetime | None = None
    """The moment the base was scored at: the clock's, or the ``as_of`` asked for."""


def policy_from(settings: Settings) -> ScoringPolicy:
    return ScoringPolicy(
        purchases_horizon_days=settings.scoring_horizon_days,
        clv_months=settings.clv_months,
        monthly_discount_rate=settings.clv_monthly_discount_rate,
        margin=settings.clv_margin,
        clv_interval=settings.clv_interval,
    )


async def scoring_due(base: ScoringBase, now: datetime, every: timedelta) -> bool:
    """Whether the base was never scored, or last scored ``every`` or longer ago."""
    last = await base.last_scored_at()
    return last is None or now - last >= every


async def score_the_base(
    segmenter: Segmenter,
    base: ScoringBase,
    clock: Clock,
    policy: ScoringPolicy,
    progress: Progress | None = None,
    *,
    metrics: ScoringMetrics | None = None,
    as_of: datetime | None = None,
    history: OrderHistory | None = None,
) -> ScoringRun:
    """Score every buyer and write the scores back; see the module's docstring.

    With ``as_of``, the base is scored as it stood then: only the orders placed before
    it count (read from ``history``), and it is the moment scored at, whatever the
    clock says.
    """
    started = time.perf_counter()
    facts: list[BuyerFacts] = []
    after: str | None = None
    while batch := await base.page(after=after, limit=READ_BATCH):
        facts.extend(batch)
        after = batch[-1].buyer_id
        if progress:
            progress("read", len(facts), len(facts))
    if as_of is not None and history is None:
        raise ValueError("scoring as of a moment needs the order history")
    histories = await _histories(history) if history is not None else None
    now = as_of if as_of is not None else clock.now()
    if as_of is None or histories is None:
        columns = BaseFacts.of(facts)
    else:
        columns = facts_as_of([f.buyer_id for f in facts], histories, as_of)
    choice: tuple[str, ...] = ()
    if histories is not None:
        # The purchase model that predicted this shop's own recent holdout best.
        model, why = await asyncio.to_thread(
            choose_purchase_model,
            OrderLog.of(histories),
            now,
            float(policy.purchases_horizon_days or 90),
        )
        policy = replace(policy, purchase_model=model)
        choice = (why,)
    scores = await asyncio.to_thread(  # a fit takes seconds: the event loop goes on
        score_base,
        columns,
        now,
        policy,
        progress=(lambda done, total: progress("score", done, total)) if progress else None,
    )
    changed = 0
    written = 0
    for rows in scores.batches(WRITE_BATCH):
        changed += await segmenter.apply_scores({r.buyer_id: _scores(r, now) for r in rows})
        written += len(rows)
        if progress:
            progress("write", written, len(facts))
    run = ScoringRun(
        buyers=len(facts),
        scored=int(np.count_nonzero(columns.orders_count > 0)),
        changed=changed,
        customer_equity=scores.customer_equity,
        models=scores.models,
        notes=(*choice, *scores.notes),
        seconds=time.perf_counter() - started,
        scored_at=now,
    )
    models = run.models
    await base.record_run(
        ScoringRecord(
            scored_at=now,
            recorded_at=clock.now(),
            buyers=run.buyers,
            scored=run.scored,
            purchase_model=models.purchase_model if models else None,
            spend_model=models.spend_model if models else None,
            fallbacks=tuple(models.fallbacks) if models else (),
            notes=run.notes,
        )
    )
    if metrics is not None:
        metrics.runs.labels(_short(models.purchase_model) if models else "none").inc()
        for kind in models.fallbacks if models else ():
            metrics.fallbacks.labels(kind).inc()
    if models is not None and models.fallbacks:
        # The notes say why, in words about the base: no buyer is named in them.
        log.warning(
            "scoring fell back to the empirical models",
            fallbacks=list(models.fallbacks),
            notes=list(run.notes),
        )
    log.info(
        "base scored",
        buyers=run.buyers,
        scored=run.scored,
        changed=run.changed,
        customer_equity=round(run.customer_equity, 2),
        purchase_model=models.purchase_model if models else None,
        spend_model=models.spend_model if models else None,
        notes=list(run.notes),
        seconds=round(run.seconds, 1),
    )
    return run


async def _histories(history: OrderHistory) -> list[BuyerOrders]:
    found: list[BuyerOrders] = []
    after: str | None = None
    while page := await history.page(after=after, limit=READ_BATCH):
        found.extend(page)
        after = page[-1].buyer_id
    return found


def _short(name: str) -> str:
    """A model's name as a metric label: ``BG/NBD``, ``MBG/NBD``, ``empirical``."""
    return name.split(" ", maxsplit=1)[0]


def _scores(row: BuyerScore, at: datetime) -> Scores:
    """A row of the scored base as the profile keeps it (money in cents)."""
    return Scores(
        rfm_r=row.rfm_r,
        rfm_f=row.rfm_f,
        rfm_m=row.rfm_m,
        rfm_segment=row.rfm_segment,
        p_alive=_rounded(row.p_alive),
        expected_purchases=_rounded(row.expected_purchases),
        expected_spend=_money(row.expected_spend),
        clv=_money(row.clv),
        clv_share=_rounded(row.clv_share),
        clv_low=_money(row.clv_low),
        clv_high=_money(row.clv_high),
        scored_at=at,
    )


def _rounded(value: float | None) -> float | None:
    """Four decimals: a score that moved less than that has not changed for anyone."""
    return None if value is None else round(value, 4)


def _money(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value)).quantize(CENT)
