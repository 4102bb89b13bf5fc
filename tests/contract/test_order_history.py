"""One contract for the order history (the unit of work's ``placed_orders`` and the
``OrderHistory`` port model validation reads), run against SQLite (embedded) and
PostgreSQL: every order kept once, read back a page of buyers at a time in id order,
each buyer's orders oldest first, a merged buyer's orders the survivor's."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from shared.adapters.store.orders import SqlOrderHistory
from shared.adapters.store.sql import SqlStore
from shared.domain.validation import BuyerOrders
from shared.ports.store import PlacedOrder
from tests.conftest import T0
from tests.contract.on_store import OnStore, merge


class OrderHistoryContract(OnStore):
    @pytest.fixture
    def history(self, store: SqlStore) -> SqlOrderHistory:
        return SqlOrderHistory(store.engine)

    async def buyers(self, store: SqlStore, count: int) -> list[str]:
        """``count`` buyers; buyer ``n`` placed ``n`` orders of ``10 * (k + 1)``, a day
        apart, the latest recorded first."""
        async with store.unit_of_work() as uow:
            resolved = await uow.profiles.resolve([{"id": f"c{n}"} for n in range(count)], T0)
            ids = [p.id for p in resolved.profiles]
            await uow.placed_orders.record(
                [
                    PlacedOrder(
                        f"o{n}-{k}", ids[n], T0 + timedelta(days=k), Decimal(10 * (k + 1)), "RUB"
                    )
                    for n in range(count)
                    for k in reversed(range(n))
                ]
            )
            await uow.commit()
        return ids

    async def everyone(self, history: SqlOrderHistory, limit: int) -> list[BuyerOrders]:
        seen: list[BuyerOrders] = []
        after: str | None = None
        while page := await history.page(after=after, limit=limit):
            assert len(page) <= limit
            seen.extend(page)
            after = page[-1].buyer_id
        return seen

    async def test_every_order_is_read_back_per_buyer_in_id_order_oldest_first(
        self, store: SqlStore, history: SqlOrderHistory
    ) -> None:
        ids = await self.buyers(store, 6)
        seen = await self.everyone(history, limit=2)
        assert [b.buyer_id for b in seen] == sorted(ids[1:]), "a buyer with no order is not read"
        third = next(b for b in seen if b.buyer_id == ids[3])
        assert third.placed_at == tuple(T0 + timedelta(days=k) for k in range(3))
        assert third.totals == (Decimal(10), Decimal(20), Decimal(30))

    async def test_an_order_recorded_again_is_kept_once_as_first_recorded(
        self, store: SqlStore, history: SqlOrderHistory
    ) -> None:
        ids = await self.buyers(store, 2)
        async with store.unit_of_work() as uow:
            again = PlacedOrder("o1-0", ids[1], T0 + timedelta(days=5), Decimal(99), "RUB")
            await uow.placed_orders.record([again, again])
            await uow.commit()
        assert await history.page(after=None, limit=10) == [
            BuyerOrders(ids[1], (T0,), (Decimal(10),))
        ]

    async def test_a_merged_buyers_orders_are_the_survivors(
        self, store: SqlStore, history: SqlOrderHistory
    ) -> None:
        ids = await self.buyers(store, 4)
        await merge(store, ids[2], ids[3])
        seen = await self.everyone(history, limit=10)
        assert [b.buyer_id for b in seen] == sorted([ids[1], ids[3]])
        survivor = next(b for b in seen if b.buyer_id == ids[3])
        assert len(survivor.placed_at) == 5
        assert list(survivor.placed_at) == sorted(survivor.placed_at)


class TestSqliteOrderHistory(OrderHistoryContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresOrderHistory(OrderHistoryContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
