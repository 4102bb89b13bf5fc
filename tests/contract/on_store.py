"""What the contracts over the store's database share: the database's URL, given by each
backend's test class (SQLite or PostgreSQL), a store opened on it, and a merge of two
buyers as ingest leaves it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.adapters.store.engine import open_store
from shared.adapters.store.sql import SqlStore
from tests.conftest import T0


class OnStore:
    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    async def store(self, url: str) -> AsyncIterator[SqlStore]:
        store = open_store(url)
        yield store
        await store.close()


async def merge(store: SqlStore, absorbed: str, survivor: str) -> None:
    """``absorbed`` merged into ``survivor``, as ingest merges two profiles of one buyer."""
    async with store.unit_of_work() as uow:
        await uow.profiles.merge(absorbed, survivor)
        loaded = await uow.profiles.get_many([absorbed])
        loaded[absorbed].merged_into = survivor
        await uow.profiles.save(loaded.values(), T0)
        await uow.commit()
