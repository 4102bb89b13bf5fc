"""Migrations on a database that already holds buyers, on SQLite and on PostgreSQL.

0004 makes every profile known by its own id (the identifier an unsubscribe link
names); profiles created before it get that identifier too, pointing at the buyer
they are now, at the end of any chain of merges.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from shared.adapters.store.engine import open_store
from shared.adapters.store.migrate import alembic_config, upgrade_async
from tests.support import infra

# a was merged into b, b into c; d stands alone.
PROFILES = [("a", "b"), ("b", "c"), ("c", None), ("d", None)]


class MigrationContract:
    @pytest.fixture
    def empty_url(self) -> str:
        raise NotImplementedError

    async def test_profiles_made_before_0004_are_found_by_their_own_id(
        self, empty_url: str
    ) -> None:
        await upgrade_async(empty_url, "0003")
        store = open_store(empty_url)
        try:
            async with store.engine.begin() as conn:
                for profile_id, merged_into in PROFILES:
                    await conn.execute(
                        text(
                            "INSERT INTO profiles (id, merged_into, created_at, updated_at) "
                            "VALUES (:id, :merged_into, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                        ),
                        {"id": profile_id, "merged_into": merged_into},
                    )
            await upgrade_async(empty_url)
            async with store.engine.connect() as conn:
                rows = await conn.execute(
                    text("SELECT kind, value, profile_id FROM identifiers ORDER BY value")
                )
                assert [tuple(r) for r in rows] == [
                    ("profile_id", "a", "c"),
                    ("profile_id", "b", "c"),
                    ("profile_id", "c", "c"),
                    ("profile_id", "d", "d"),
                ]
            async with store.unit_of_work() as uow:
                profile = await uow.profiles.get("d")
            assert profile is not None
            assert (profile.traits, profile.refunds_count) == ({}, 0)
        finally:
            await store.close()

    def test_0004_goes_down_and_up_again(self, empty_url: str) -> None:
        config = alembic_config(empty_url)
        command.upgrade(config, "head")
        command.downgrade(config, "0003")
        command.upgrade(config, "head")


class TestSqliteMigrations(MigrationContract):
    @pytest.fixture
    def empty_url(self, tmp_path: Path) -> str:
        return f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"


@pytest.mark.postgres
class TestPostgresMigrations(MigrationContract):
    @pytest.fixture
    def empty_url(self) -> Iterator[str]:
        if not infra.answers("127.0.0.1:5432"):
            pytest.fail(
                "PostgreSQL is not running on 127.0.0.1:5432: run the tests with `make test`"
            )
        name = infra.unique("nudge_m_")
        yield infra.create_database(infra.DATABASE_URL, name)
        infra.drop_database(infra.DATABASE_URL, name)
