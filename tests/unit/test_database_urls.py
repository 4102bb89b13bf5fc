"""The database URL a shop writes the way most tools do is taken as it is meant."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import Settings


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://nudge:s@db:5432/nudge", "postgresql+asyncpg://nudge:s@db:5432/nudge"),
        ("postgres://nudge:s@db/nudge", "postgresql+asyncpg://nudge:s@db/nudge"),
        ("postgresql+asyncpg://db/nudge", "postgresql+asyncpg://db/nudge"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite:////var/lib/nudge/nudge.db", "sqlite+aiosqlite:////var/lib/nudge/nudge.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_the_usual_url_forms_name_the_async_driver(given: str, used: str) -> None:
    assert Settings(database_url=given).db_url == used


@pytest.mark.parametrize("given", ["mysql://db/nudge", "x.db", "postgresql+psycopg://db/n"])
def test_another_database_is_refused_saying_which_forms_are_taken(given: str) -> None:
    with pytest.raises(ValidationError, match=r"postgresql://.*sqlite:///"):
        Settings(database_url=given)
