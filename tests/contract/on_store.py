"""What the contracts over the store's database share: the database's URL, given by each
backend's test class (SQLite or PostgreSQL), and a store opened on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.adapters.store.engine import open_store
from shared.adapters.store.sql import SqlStore


class OnStore:
    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    async def store(self, url: str) -> AsyncIterator[SqlStore]:
        store = open_store(url)
        yield store
        await store.close()
