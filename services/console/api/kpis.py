"""The base's KPIs: ``GET /v1/kpis``, and the scan the dashboard shares with it.

The figures (:mod:`shared.domain.kpis`) are computed in Python over the whole base,
read batch by batch (:data:`SCAN_BATCH` buyers a query, two queries a batch), with the
lifecycle stage the segmenter recorded. The cost is one pass over the profiles table,
reading only the columns the figures need: measured on SQLite, 4.6 s for 50,000 buyers
(about 0.1 ms a buyer, so some 30 s for 300,000), and memory for one batch, not the base.
So a report is kept for a few minutes per filter (:class:`KpiCache`).
Filters: ``store``, ``region`` and a period of first orders (``since``, ``until``);
``repeat_days`` is the early repeat window; ``group=store`` or ``group=region`` adds
the same figures for each store or region.

Needs the ``console:read`` scope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from services.http.auth import require as require_key
from services.http.problems import Problem
from shared.domain.kpis import DEFAULT_REPEAT_DAYS, BaseFilter, BaseKpis, KpiTally
from shared.domain.lifecycle import DEFAULT_POLICY, STAGES, LifecyclePolicy
from shared.ports.api_keys import Scope
from shared.ports.clock import Clock
from shared.ports.console import ConsoleQueries

__all__ = [
    "STAGE_SEGMENTS",
    "KpiCache",
    "KpiReport",
    "base_kpis",
    "kpis_json",
    "parsed_filter",
    "router",
]

SCAN_BATCH = 2000
MAX_KEPT = 64
"""How many filters' reports a :class:`KpiCache` keeps at most."""
STAGE_SEGMENTS: Mapping[str, str] = {f"lifecycle-{stage}": stage for stage in STAGES}
"""The segment that holds each lifecycle stage, as the segmenter keeps them."""
Group = Literal["store", "region"]
Requirement = Callable[[Scope], Callable[..., Any]]


@dataclass(frozen=True)
class KpiReport:
    """The figures for the filtered base, what the filters can take, and per group."""

    kpis: BaseKpis
    stores: tuple[str, ...]
    """Every store any buyer bought in (for the store filter)."""
    regions: tuple[str, ...]
    """Every ``region`` trait seen (for the region filter)."""
    groups: Mapping[str, BaseKpis] = field(default_factory=dict)


def parsed_filter(
    store: str | None, region: str | None, since: date | None, until: date | None
) -> BaseFilter:
    """The filter of a query, empty strings read as "any"; a period that ends before it
    starts is ``422 invalid-request``."""
    if since is not None and until is not None and until < since:
        raise Problem(
            "invalid-request",
            "the period ends before it starts",
            [{"pointer": "/until", "detail": "on or after since"}],
        )
    return BaseFilter(store=store or None, region=region or None, since=since, until=until)


async def base_kpis(
    queries: ConsoleQueries,
    base: BaseFilter,
    clock: Clock,
    *,
    repeat_days: int = DEFAULT_REPEAT_DAYS,
    group: Group | None = None,
    policy: LifecyclePolicy = DEFAULT_POLICY,
) -> KpiReport:
    """One pass over the base: the filtered figures, and per store or region if asked."""
    now = clock.now()
    overall = KpiTally(now, base, repeat_days=repeat_days, policy=policy)
    groups: dict[str, KpiTally] = {}
    stores: set[str] = set()
    regions: set[str] = set()
    after: str | None = None
    while True:
        batch = await queries.scan_buyers(
            after=after, limit=SCAN_BATCH, stage_segments=STAGE_SEGMENTS
        )
        for buyer in batch:
            profile = buyer.profile
            stores.update(profile.stores)
            region = profile.traits.get("region")
            if isinstance(region, str) and region:
                regions.add(region)
            if not overall.add(profile, buyer.stage) or group is None:
                continue
            names = list(profile.stores) if group == "store" else [str(region or "")]
            for name in names:
                if name not in groups:
                    groups[name] = KpiTally(now, repeat_days=repeat_days, policy=policy)
                groups[name].add(profile, buyer.stage)
        if len(batch) < SCAN_BATCH:
            break
        after = batch[-1].profile.id
    return KpiReport(
        kpis=overall.result(),
        stores=tuple(sorted(stores)),
        regions=tuple(sorted(regions)),
        groups={name: groups[name].result() for name in sorted(groups)},
    )


class KpiCache:
    """Reports kept for ``seconds`` by filter: the dashboard reloads, and a few marketers
    looking at the same base, cost one scan. ``as_of`` says how old a report is."""

    def __init__(self, queries: ConsoleQueries, clock: Clock, *, seconds: float = 300.0) -> None:
        self.queries = queries
        self.clock = clock
        self.seconds = seconds
        self._kept: dict[tuple[Any, ...], KpiReport] = {}

    async def report(
        self,
        base: BaseFilter,
        *,
        repeat_days: int = DEFAULT_REPEAT_DAYS,
        group: Group | None = None,
        policy: LifecyclePolicy = DEFAULT_POLICY,
    ) -> KpiReport:
        key = (base, repeat_days, group)
        kept = self._kept.get(key)
        now = self.clock.now()
        if kept is not None and (now - kept.kpis.as_of).total_seconds() < self.seconds:
            return kept
        fresh = await base_kpis(
            self.queries, base, self.clock, repeat_days=repeat_days, group=group, policy=policy
        )
        self._kept = {k: r for k, r in self._kept.items() if r is not kept}
        if len(self._kept) >= MAX_KEPT:
            self._kept.clear()
        self._kept[key] = fresh
        return fresh


def _money(value: Any) -> str | None:
    return None if value is None else str(value)


def kpis_json(kpis: BaseKpis) -> dict[str, Any]:
    """The figures as the API answers them: rates as shares (0-1), money as strings."""
    return {
        "as_of": kpis.as_of.isoformat(),
        "buyers": kpis.buyers,
        "buyers_with_orders": kpis.buyers_with_orders,
        "lifecycle": dict(kpis.stages),
        "early_repeat": {
            "days": kpis.repeat_days,
            "rate": kpis.early_repeat_rate,
            "repeaters": kpis.early_repeaters,
            "base": kpis.early_repeat_base,
        },
        "second_order": {
            "rate": kpis.second_order_rate,
            "buyers": kpis.second_order_buyers,
            "base": kpis.buyers_with_orders,
        },
        "churn": {
            "rate": kpis.churn_rate,
            "churned": kpis.churned,
            "base": kpis.buyers_with_orders,
        },
        "clv": {
            "average": _money(kpis.clv_average),
            "customer_equity": _money(kpis.customer_equity),
            "scored": kpis.scored,
        },
        "cohorts": [
            {
                "month": cohort.month.strftime("%Y-%m"),
                "buyers": cohort.buyers,
                "active": list(cohort.active),
                "retention": [round(share, 4) for share in cohort.retention],
            }
            for cohort in kpis.cohorts
        ],
        "rfm_grid": {
            "rows": "fm 1..5",
            "columns": "r 1..5",
            "counts": [list(row) for row in kpis.rfm_grid],
        },
    }


def router(
    queries: ConsoleQueries,
    *,
    clock: Clock,
    require: Requirement = require_key,
    policy: LifecyclePolicy = DEFAULT_POLICY,
    cache_seconds: float = 300.0,
) -> APIRouter:
    """``GET /v1/kpis`` on ``queries``; ``require(scope)`` admits a caller for a scope;
    a report is answered again for ``cache_seconds`` (0: always computed afresh)."""
    api = APIRouter(prefix="/v1/kpis", tags=["kpis"])
    cache = KpiCache(queries, clock, seconds=cache_seconds)

    @api.get(
        "",
        summary="The base's KPIs, filtered by store, region and period of first orders",
        dependencies=[Depends(require("console:read"))],
    )
    async def get_kpis(
        *,
        store: Annotated[str | None, Query(max_length=100)] = None,
        region: Annotated[str | None, Query(max_length=100)] = None,
        since: Annotated[date | None, Query(description="First orders on or after")] = None,
        until: Annotated[date | None, Query(description="First orders on or before")] = None,
        repeat_days: Annotated[int, Query(ge=1, le=365)] = DEFAULT_REPEAT_DAYS,
        group: Annotated[Group | None, Query(description="Figures per store or region")] = None,
    ) -> dict[str, Any]:
        base = parsed_filter(store, region, since, until)
        report = await cache.report(base, repeat_days=repeat_days, group=group, policy=policy)
        answer: dict[str, Any] = {
            "filter": {"store": base.store, "region": base.region, "since": since, "until": until},
            **kpis_json(report.kpis),
            "stores": list(report.stores),
            "regions": list(report.regions),
        }
        if group is not None:
            answer["groups"] = {
                "by": group,
                "figures": {name: kpis_json(kpis) for name, kpis in report.groups.items()},
            }
        return answer

    return api
