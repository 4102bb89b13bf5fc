"""How the base is doing: the dashboard's figures, computed over the buyers one by one.

A :class:`KpiTally` takes buyers (profiles) one at a time, so a caller streams the
base through it in batches and never holds it whole; :meth:`KpiTally.result` gives
the figures (:class:`BaseKpis`):

- **buyers by lifecycle stage**;
- **early repeat purchase rate**: of the buyers whose first order is at least
  ``repeat_days`` old, the share whose second order came within ``repeat_days`` of
  the first;
- **first-to-second order conversion**: of the buyers with an order, the share with two;
- **churn rate**: of the buyers with an order, the share in the ``churned`` stage;
- **CLV**: the average predicted customer lifetime value of the scored buyers, and
  **customer equity**, its sum;
- **cohort retention**: buyers grouped by the calendar month (UTC) of their first
  order; cell *k* is the share of a cohort's buyers who ordered in the *k*-th month
  after it (month 0, the first order's, is always 100%);
- **the RFM grid**: how many scored buyers sit in each cell of recency (R, 1-5)
  against FM (the mean of F and M, rounded half up), the grid the RFM segments are
  named from (:data:`shared.domain.rfm.RFM_SEGMENTS`).

The order moments a profile keeps are its latest :data:`~shared.domain.profile.ORDER_HISTORY`:
a buyer with more orders than that has lost their second order's moment, and is
left out of the early repeat rate only.

:class:`BaseFilter` narrows the base to one store, one region (the ``region`` trait)
and a period of first orders (the buyers acquired in it; leads, with no order, drop out
once a period is set).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from shared.domain.lifecycle import DEFAULT_POLICY, STAGES, LifecyclePolicy, stage
from shared.domain.profile import CENT, Profile

__all__ = [
    "DEFAULT_COHORT_MONTHS",
    "DEFAULT_REPEAT_DAYS",
    "RFM_SCORES",
    "BaseFilter",
    "BaseKpis",
    "Cohort",
    "KpiTally",
    "first_order_at",
    "month_start",
    "second_order_at",
]

DEFAULT_REPEAT_DAYS = 30
"""The early repeat window: a second order within this many days of the first."""
DEFAULT_COHORT_MONTHS = 12
"""How many first-purchase months the heat map shows, and how many months after each."""
RFM_SCORES = (1, 2, 3, 4, 5)


def month_start(moment: datetime | date) -> date:
    """The first day of ``moment``'s calendar month (a datetime is read in its own zone;
    profiles keep UTC)."""
    return date(moment.year, moment.month, 1)


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _month_of(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def first_order_at(profile: Profile) -> datetime | None:
    """When the buyer first ordered: ``first_order_at``, else their earliest kept moment."""
    if profile.first_order_at is not None:
        return profile.first_order_at
    return min(profile.order_moments) if profile.order_moments else None


def second_order_at(profile: Profile) -> datetime | None:
    """When the buyer ordered for the second time; ``None`` with fewer than two orders or
    when it is no longer kept (more orders than the profile keeps moments of)."""
    if profile.orders_count < 2 or len(profile.order_moments) != profile.orders_count:
        return None
    return sorted(profile.order_moments)[1]


@dataclass(frozen=True)
class BaseFilter:
    """Which buyers the figures are about; every field ``None`` is the whole base."""

    store: str | None = None
    """Buyers who bought in this store (the profile's ``stores``)."""
    region: str | None = None
    """Buyers whose ``region`` trait is this."""
    since: date | None = None
    """Buyers whose first order is on or after this day (UTC)."""
    until: date | None = None
    """Buyers whose first order is on or before this day (UTC)."""

    @property
    def is_whole_base(self) -> bool:
        return self == BaseFilter()

    def admits(self, profile: Profile) -> bool:
        if self.store is not None and self.store not in profile.stores:
            return False
        if self.region is not None and profile.traits.get("region") != self.region:
            return False
        if self.since is None and self.until is None:
            return True
        first = first_order_at(profile)
        if first is None:
            return False
        day = first.date()
        return (self.since is None or day >= self.since) and (
            self.until is None or day <= self.until
        )


@dataclass(frozen=True)
class Cohort:
    """The buyers whose first order fell in ``month``, and how many ordered after."""

    month: date
    buyers: int
    active: tuple[int, ...]
    """``active[k]``: how many of them ordered in the k-th month after ``month``; only
    months up to the current one are listed."""

    @property
    def retention(self) -> tuple[float, ...]:
        """``active[k]`` as a share of the cohort's buyers."""
        return tuple(count / self.buyers if self.buyers else 0.0 for count in self.active)


@dataclass(frozen=True)
class BaseKpis:
    """The dashboard's figures for one base (see the module's docstring)."""

    as_of: datetime
    buyers: int
    buyers_with_orders: int
    stages: Mapping[str, int]
    repeat_days: int
    early_repeat_base: int
    early_repeaters: int
    second_order_buyers: int
    churned: int
    scored: int
    customer_equity: Decimal
    cohorts: tuple[Cohort, ...]
    rfm_grid: tuple[tuple[int, ...], ...]
    """``rfm_grid[fm - 1][r - 1]``: how many buyers score R ``r`` and FM ``fm``."""

    @property
    def early_repeat_rate(self) -> float | None:
        return _share(self.early_repeaters, self.early_repeat_base)

    @property
    def second_order_rate(self) -> float | None:
        """First-to-second order conversion."""
        return _share(self.second_order_buyers, self.buyers_with_orders)

    @property
    def churn_rate(self) -> float | None:
        return _share(self.churned, self.buyers_with_orders)

    @property
    def clv_average(self) -> Decimal | None:
        if not self.scored:
            return None
        return (self.customer_equity / self.scored).quantize(CENT, rounding=ROUND_HALF_UP)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class KpiTally:
    """Adds buyers one by one (:meth:`add`); :meth:`result` gives the figures at ``now``."""

    now: datetime
    base: BaseFilter = field(default_factory=BaseFilter)
    repeat_days: int = DEFAULT_REPEAT_DAYS
    cohort_months: int = DEFAULT_COHORT_MONTHS
    policy: LifecyclePolicy = DEFAULT_POLICY
    _buyers: int = 0
    _with_orders: int = 0
    _stages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    _repeat_base: int = 0
    _repeaters: int = 0
    _second: int = 0
    _churned: int = 0
    _scored: int = 0
    _equity: Decimal = Decimal("0.00")
    _cohorts: dict[int, list[int]] = field(default_factory=dict)
    _grid: list[list[int]] = field(default_factory=lambda: [[0] * 5 for _ in range(5)])

    def __post_init__(self) -> None:
        if self.repeat_days < 1:
            raise ValueError("the early repeat window is at least one day")
        if self.cohort_months < 1:
            raise ValueError("the heat map shows at least one month")
        self._this_month = _month_index(month_start(self.now))
        latest = self._this_month
        if self.base.until is not None:
            latest = min(latest, _month_index(month_start(self.base.until)))
        self._first_cohort = latest - self.cohort_months + 1

    def add(self, profile: Profile, lifecycle_stage: str | None = None) -> bool:
        """Count ``profile`` if the filter admits it (``True`` then). ``lifecycle_stage``
        is its stage as the segmenter recorded it; ``None``: worked out here at ``now``."""
        if not self.base.admits(profile):
            return False
        self._buyers += 1
        found = lifecycle_stage or stage(profile, self.now, self.policy)
        self._stages[found] = self._stages.get(found, 0) + 1
        if profile.clv is not None:
            self._scored += 1
            self._equity += profile.clv
        if None not in (profile.rfm_r, profile.rfm_f, profile.rfm_m):
            r, f, m = profile.rfm_r or 0, profile.rfm_f or 0, profile.rfm_m or 0
            if all(score in RFM_SCORES for score in (r, f, m)):
                self._grid[(f + m + 1) // 2 - 1][r - 1] += 1
        first = first_order_at(profile)
        if profile.orders_count < 1 or first is None:
            return True
        self._with_orders += 1
        self._churned += found == "churned"
        self._second += profile.orders_count >= 2
        self._add_early_repeat(profile, first)
        self._add_to_cohort(profile, first)
        return True

    def _add_early_repeat(self, profile: Profile, first: datetime) -> None:
        window = timedelta(days=self.repeat_days)
        if first > self.now - window:
            return  # too recent: the window is not over yet
        if profile.orders_count >= 2:
            second = second_order_at(profile)
            if second is None:
                return  # its moment is no longer kept
            self._repeaters += second - first <= window
        self._repeat_base += 1

    def _add_to_cohort(self, profile: Profile, first: datetime) -> None:
        start = _month_index(month_start(first))
        if not self._first_cohort <= start <= self._this_month:
            return
        active = self._cohorts.setdefault(start, [0] * (self._this_month - start + 1))
        months = {_month_index(month_start(m)) - start for m in profile.order_moments} | {0}
        for k in months:
            if 0 <= k < len(active) and k < self.cohort_months:
                active[k] += 1

    def result(self) -> BaseKpis:
        cohorts = tuple(
            Cohort(_month_of(index), active[0], tuple(active[: self.cohort_months]))
            for index, active in sorted(self._cohorts.items())
        )
        return BaseKpis(
            as_of=self.now,
            buyers=self._buyers,
            buyers_with_orders=self._with_orders,
            stages=dict(self._stages),
            repeat_days=self.repeat_days,
            early_repeat_base=self._repeat_base,
            early_repeaters=self._repeaters,
            second_order_buyers=self._second,
            churned=self._churned,
            scored=self._scored,
            customer_equity=self._equity.quantize(CENT, rounding=ROUND_HALF_UP),
            cohorts=cohorts,
            rfm_grid=tuple(tuple(row) for row in self._grid),
        )
