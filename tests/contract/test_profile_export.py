"""One contract for the export port, run against SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from shared.adapters.store.exports import SqlProfileExport
from shared.adapters.store.sql import SqlStore
from shared.domain.segments import MembershipChange
from tests.conftest import T0
from tests.contract.on_store import OnStore


class ProfileExportContract(OnStore):
    @pytest.fixture
    async def export(self, store: SqlStore) -> SqlProfileExport:
        return SqlProfileExport(store.engine)

    async def buyers(self, store: SqlStore, count: int) -> list[str]:
        """``count`` buyers with an order each (revenue: their number); their ids."""
        async with store.unit_of_work() as uow:
            resolved = await uow.profiles.resolve([{"id": f"c{n}"} for n in range(count)], T0)
            for n, profile in enumerate(resolved.profiles):
                profile.orders_count = 1
                profile.revenue_total = Decimal(n)
                profile.last_order_at = T0 + timedelta(days=n)
            await uow.profiles.save(resolved.profiles, T0)
            await uow.commit()
        return [p.id for p in resolved.profiles]

    async def test_batches_walk_the_whole_base_in_id_order(
        self, store: SqlStore, export: SqlProfileExport
    ) -> None:
        ids = await self.buyers(store, 7)
        seen: list[str] = []
        after: str | None = None
        while batch := await export.page(after=after, limit=3):
            assert len(batch) <= 3
            seen.extend(p.profile.id for p in batch)
            after = batch[-1].profile.id
        assert seen == sorted(ids)

    async def test_a_buyer_comes_with_figures_identifiers_and_segments(
        self, store: SqlStore, export: SqlProfileExport
    ) -> None:
        async with store.unit_of_work() as uow:
            (profile,) = (
                await uow.profiles.resolve(
                    [{"id": "c1", "phone": "+79161234567", "email": "anna@shop.ru"}], T0
                )
            ).profiles
            profile.orders_count, profile.revenue_total = 2, Decimal("5000.50")
            await uow.profiles.save([profile], T0)
            await uow.memberships.apply(
                [MembershipChange("entered", "no-order-30d", profile.id, T0, "occ")]
            )
            await uow.commit()
        (exported,) = await export.page(after=None, limit=10)
        assert exported.profile.id == profile.id
        assert (exported.profile.orders_count, exported.profile.revenue_total) == (
            2,
            Decimal("5000.50"),
        )
        assert exported.identifiers == {
            "email": ("anna@shop.ru",),
            "id": ("c1",),
            "phone": ("+79161234567",),
        }
        assert exported.segments == {"no-order-30d": T0}

    async def test_a_buyer_merged_into_another_is_left_out(
        self, store: SqlStore, export: SqlProfileExport
    ) -> None:
        async with store.unit_of_work() as uow:
            known, anonymous = (
                await uow.profiles.resolve([{"id": "c1"}, {"bank_card_token": "hmac:ab"}], T0)
            ).profiles
            await uow.commit()
        async with store.unit_of_work() as uow:
            resolution = await uow.profiles.resolve(
                [{"id": "c1", "bank_card_token": "hmac:ab"}], T0
            )
            assert resolution.merges == [(anonymous.id, known.id)]
            absorbed = resolution.loaded[anonymous.id]
            absorbed.merged_into = known.id
            await uow.profiles.merge(anonymous.id, known.id)
            await uow.profiles.save([absorbed], T0)
            await uow.commit()
        (survivor,) = await export.page(after=None, limit=10)
        assert survivor.profile.id == known.id
        assert survivor.identifiers == {"bank_card_token": ("hmac:ab",), "id": ("c1",)}

    async def test_an_empty_base_and_the_end_of_the_base_give_nothing(
        self, store: SqlStore, export: SqlProfileExport
    ) -> None:
        assert await export.page(after=None, limit=10) == []
        ids = await self.buyers(store, 2)
        assert await export.page(after=max(ids), limit=10) == []


class TestSqliteProfileExport(ProfileExportContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresProfileExport(ProfileExportContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
