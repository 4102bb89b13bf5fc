"""One contract for the scoring job's view of the base, run against SQLite (embedded) and
PostgreSQL: every buyer's order totals in id order, merged profiles left out, when the
base was last scored and how (the runs recorded), and one scoring run at a time."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from shared.adapters.store.scoring import SqlScoringBase
from shared.adapters.store.sql import SqlStore
from shared.ports.scoring import ScoringRecord
from tests.conftest import T0
from tests.contract.on_store import OnStore, merge


class ScoringBaseContract(OnStore):
    @pytest.fixture
    def base(self, store: SqlStore) -> SqlScoringBase:
        return SqlScoringBase(store.engine)

    async def buyers(self, store: SqlStore, count: int) -> list[str]:
        """``count`` buyers; buyer ``n`` has ``n`` orders worth 100 each and 10 refunded."""
        async with store.unit_of_work() as uow:
            resolved = await uow.profiles.resolve([{"id": f"c{n}"} for n in range(count)], T0)
            for n, profile in enumerate(resolved.profiles):
                profile.orders_count = n
                profile.revenue_total = Decimal(100 * n)
                profile.refunds_total = Decimal(10) if n else Decimal(0)
                profile.first_order_at = T0 - timedelta(days=n) if n else None
                profile.last_order_at = T0 if n else None
            await uow.profiles.save(resolved.profiles, T0)
            await uow.commit()
        return [p.id for p in resolved.profiles]

    async def test_facts_walk_the_base_in_id_order_with_net_revenue(
        self, store: SqlStore, base: SqlScoringBase
    ) -> None:
        ids = await self.buyers(store, 7)
        seen = []
        after: str | None = None
        while batch := await base.page(after=after, limit=3):
            assert len(batch) <= 3
            seen.extend(batch)
            after = batch[-1].buyer_id
        assert [f.buyer_id for f in seen] == sorted(ids)
        by_id = {f.buyer_id: f for f in seen}
        third = by_id[ids[3]]
        assert (third.orders_count, third.net_revenue) == (3, Decimal(290))
        assert (third.first_order_at, third.last_order_at) == (T0 - timedelta(days=3), T0)
        assert by_id[ids[0]].first_order_at is None

    async def test_a_merged_profile_is_not_a_buyer_of_its_own(
        self, store: SqlStore, base: SqlScoringBase
    ) -> None:
        absorbed, survivor = (await self.buyers(store, 2))[:2]
        await merge(store, absorbed, survivor)
        assert [f.buyer_id for f in await base.page(after=None, limit=10)] == [survivor]

    async def test_last_scored_is_the_latest_scoring_moment(
        self, store: SqlStore, base: SqlScoringBase
    ) -> None:
        assert await base.last_scored_at() is None
        ids = await self.buyers(store, 3)
        async with store.unit_of_work() as uow:
            loaded = await uow.profiles.get_many(ids[:2])
            for n, profile in enumerate(loaded.values()):
                profile.scored_at = T0 + timedelta(hours=n)
            await uow.profiles.save(loaded.values(), T0)
            await uow.commit()
        assert await base.last_scored_at() == T0 + timedelta(hours=1)

    async def test_the_latest_run_is_kept_with_its_models_and_why_it_fell_back(
        self, base: SqlScoringBase
    ) -> None:
        assert await base.last_run() is None
        first = ScoringRecord(
            scored_at=T0,
            recorded_at=T0,
            buyers=60,
            scored=60,
            purchase_model="empirical rate (fallback)",
            spend_model="Gamma-Gamma",
            fallbacks=("purchases",),
            notes=("BG/NBD landed on degenerate parameters",),
        )
        await base.record_run(first)
        assert await base.last_run() == first
        # An as-of run scores an earlier moment: the latest recorded is still the last.
        later = replace(
            first, scored_at=T0 - timedelta(days=365), recorded_at=T0 + timedelta(hours=1)
        )
        await base.record_run(replace(later, fallbacks=(), notes=()))
        assert await base.last_run() == replace(later, fallbacks=(), notes=())

    async def test_only_one_scoring_run_holds_the_base_at_a_time(
        self, store: SqlStore, base: SqlScoringBase
    ) -> None:
        other = SqlScoringBase(store.engine)
        async with base.exclusive() as first, other.exclusive() as second:
            assert (first, second) == (True, False)
        async with other.exclusive() as after:
            assert after


class TestSqliteScoringBase(ScoringBaseContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresScoringBase(ScoringBaseContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
