"""One contract for reading the base in id order a page at a time (BuyerPages), run against
every adapter that pages through it (whole profiles, the scoring job's order facts, the
export) on SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.adapters.store.buyers import SqlBuyerPages
from shared.adapters.store.exports import SqlProfileExport
from shared.adapters.store.scoring import SqlScoringBase
from shared.adapters.store.sql import SqlStore
from shared.ports.buyers import BuyerPages
from tests.conftest import T0
from tests.contract.on_store import OnStore, merge

Pages = tuple[BuyerPages[Any], Callable[[Any], str]]

_ADAPTERS: dict[str, Callable[[SqlStore], Pages]] = {
    "profiles": lambda store: (SqlBuyerPages(store.engine), lambda p: p.id),
    "order facts": lambda store: (SqlScoringBase(store.engine), lambda f: f.buyer_id),
    "export": lambda store: (SqlProfileExport(store.engine), lambda e: e.profile.id),
}


class BuyerPagesContract(OnStore):
    @pytest.fixture(params=list(_ADAPTERS))
    def pages(self, request: pytest.FixtureRequest, store: SqlStore) -> Pages:
        return _ADAPTERS[request.param](store)

    async def buyers(self, store: SqlStore, count: int) -> list[str]:
        async with store.unit_of_work() as uow:
            resolved = await uow.profiles.resolve([{"id": f"c{n}"} for n in range(count)], T0)
            await uow.commit()
        return [p.id for p in resolved.profiles]

    async def test_pages_walk_the_whole_base_in_id_order(
        self, store: SqlStore, pages: Pages
    ) -> None:
        source, id_of = pages
        ids = await self.buyers(store, 7)
        sizes: list[int] = []
        seen: list[str] = []
        after: str | None = None
        while page := await source.page(after=after, limit=3):
            sizes.append(len(page))
            seen.extend(id_of(buyer) for buyer in page)
            after = seen[-1]
        assert sizes == [3, 3, 1]
        assert seen == sorted(ids)

    async def test_a_buyer_merged_into_another_is_left_out(
        self, store: SqlStore, pages: Pages
    ) -> None:
        source, id_of = pages
        absorbed, survivor = await self.buyers(store, 2)
        await merge(store, absorbed, survivor)
        assert [id_of(b) for b in await source.page(after=None, limit=10)] == [survivor]

    async def test_an_empty_base_and_the_end_of_the_base_give_nothing(
        self, store: SqlStore, pages: Pages
    ) -> None:
        source, _ = pages
        assert list(await source.page(after=None, limit=10)) == []
        ids = await self.buyers(store, 2)
        assert list(await source.page(after=max(ids), limit=10)) == []
        assert len(await source.page(after=min(ids), limit=10)) == 1, "after is not included"


class TestSqliteBuyerPages(BuyerPagesContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresBuyerPages(BuyerPagesContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
