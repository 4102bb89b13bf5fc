"""One contract for the orders' balances (what each order was paid and refunded), run
against SQLite (embedded) and PostgreSQL: balances read back as written, changed in
place, amounts exact to the cent, nothing kept without a commit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.adapters.store.sql import SqlStore
from shared.domain.money import OrderBalance
from tests.conftest import T0
from tests.contract.on_store import OnStore


class OrdersContract(OnStore):
    async def test_balances_read_back_as_written_and_change_in_place(self, store: SqlStore) -> None:
        placed = OrderBalance("o-1", "p-1", Decimal("1234.56"), Decimal("0.00"), 1)
        unseen = OrderBalance("o-old", "p-2", refunded=Decimal("99.99"))
        async with store.unit_of_work() as uow:
            await uow.orders.save([placed, unseen], T0)
            await uow.commit()
        async with store.unit_of_work() as uow:
            found = await uow.orders.of(["o-1", "o-old", "o-none"])
            assert found == {"o-1": placed, "o-old": unseen}
            found["o-1"].refunded += Decimal("0.01")
            await uow.orders.save([found["o-1"]], T0)
            await uow.commit()
        async with store.unit_of_work() as uow:
            assert (await uow.orders.of(["o-1"]))["o-1"].left == Decimal("1234.55")

    async def test_nothing_is_kept_without_a_commit(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            await uow.orders.save([OrderBalance("o-1", "p-1", Decimal("5.00"))], T0)
        async with store.unit_of_work() as uow:
            assert await uow.orders.of(["o-1"]) == {}


class TestSqliteOrders(OrdersContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresOrders(OrdersContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
