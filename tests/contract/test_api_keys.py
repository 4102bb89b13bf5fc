"""One contract for the API-key port, run against SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema
from shared.adapters.store.api_keys import SqlApiKeys
from shared.adapters.store.engine import create_engine
from shared.ports.api_keys import SCOPES, ApiKey
from tests.conftest import T0


class ApiKeysContract:
    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    async def keys(self, url: str, clock: SimulatedClock) -> AsyncIterator[SqlApiKeys]:
        keys = SqlApiKeys(create_engine(url), clock=clock)
        yield keys
        await keys.close()

    async def test_a_new_key_authenticates_as_itself(self, keys: SqlApiKeys) -> None:
        key, secret = await keys.create("shop backend", ["events:write"], ["msk-01"])
        assert secret.startswith(f"nk_{key.id}_")
        assert len(secret) > 40
        assert key == ApiKey(
            id=key.id,
            name="shop backend",
            scopes=frozenset({"events:write"}),
            stores=frozenset({"msk-01"}),
            created_at=T0,
        )
        assert await keys.authenticate(secret) == key

    async def test_only_a_hash_of_the_key_is_kept(self, keys: SqlApiKeys) -> None:
        key, secret = await keys.create("shop backend", ["events:write"])
        async with keys.engine.connect() as conn:
            row = (await conn.execute(select(schema.api_keys))).one()
        assert secret not in [str(value) for value in row]
        assert secret.split("_", 2)[2] not in "".join(str(value) for value in row)
        assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert row.id == key.id

    async def test_two_keys_are_different(self, keys: SqlApiKeys) -> None:
        first, first_secret = await keys.create("a", ["events:write"])
        second, second_secret = await keys.create("a", ["events:write"])
        assert first.id != second.id
        assert first_secret != second_secret
        assert await keys.authenticate(first_secret) == first
        assert await keys.authenticate(second_secret) == second

    @pytest.mark.parametrize(
        "wrong",
        [
            "",
            "nk_",
            "nk_0123456789abcdef",
            "nk_0123456789abcdef_",
            "xx_0123456789abcdef_secret",
            "nk_NOT-HEX-ID-0000_secret",
            "nk_0123456789abcdef_" + "s" * 500,
        ],
    )
    async def test_a_malformed_key_is_nobody(self, keys: SqlApiKeys, wrong: str) -> None:
        await keys.create("shop backend", ["events:write"])
        assert await keys.authenticate(wrong) is None

    async def test_a_known_id_with_another_secret_is_nobody(self, keys: SqlApiKeys) -> None:
        key, secret = await keys.create("shop backend", ["events:write"])
        assert await keys.authenticate(f"nk_{key.id}_guess") is None
        assert await keys.authenticate(secret + "x") is None
        assert await keys.authenticate(secret.upper()) is None

    async def test_a_revoked_key_is_nobody_and_stays_listed(
        self, keys: SqlApiKeys, clock: SimulatedClock
    ) -> None:
        key, secret = await keys.create("old till", ["events:write"])
        clock.advance(timedelta(hours=1))
        assert await keys.revoke(key.id)
        assert await keys.authenticate(secret) is None
        clock.advance(timedelta(hours=1))
        assert await keys.revoke(key.id), "revoking again is no error"
        (listed,) = await keys.list()
        assert listed.id == key.id
        assert listed.revoked_at == T0 + timedelta(hours=1), "the first revocation stands"

    async def test_revoking_an_unknown_key_says_so(self, keys: SqlApiKeys) -> None:
        assert not await keys.revoke("0123456789abcdef")

    async def test_the_list_is_oldest_first_with_scopes_and_stores(
        self, keys: SqlApiKeys, clock: SimulatedClock
    ) -> None:
        assert await keys.list() == []
        first, _ = await keys.create("first", ["admin"])
        clock.advance(timedelta(minutes=1))
        second, _ = await keys.create("second", ["console:read", "console:write"], ["a", "b c"])
        assert await keys.list() == [first, second]
        assert second.stores == frozenset({"a", "b c"})

    @pytest.mark.parametrize(
        ("name", "scopes", "stores"),
        [
            ("", ["events:write"], []),
            ("shop", [], []),
            ("shop", ["events:read"], []),
            ("shop", ["events:write"], [" "]),
        ],
        ids=["no-name", "no-scope", "unknown-scope", "blank-store"],
    )
    async def test_a_bad_key_is_refused(
        self, keys: SqlApiKeys, name: str, scopes: list[str], stores: list[str]
    ) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the reason
            await keys.create(name, scopes, stores)  # type: ignore[arg-type]
        assert await keys.list() == []

    async def test_ping_answers(self, keys: SqlApiKeys) -> None:
        await keys.ping()


class TestSqliteApiKeys(ApiKeysContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresApiKeys(ApiKeysContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url


def test_admin_has_every_scope_and_a_store_bound_key_only_its_stores() -> None:
    admin = ApiKey("a", "ops", frozenset({"admin"}), frozenset(), T0)
    assert all(admin.allows(scope) for scope in SCOPES)
    writer = ApiKey("w", "till", frozenset({"events:write"}), frozenset({"msk-01"}), T0)
    assert writer.allows("events:write")
    assert not writer.allows("console:read")
    assert writer.may_post_for("msk-01")
    assert not writer.may_post_for("spb-01")
    assert not writer.may_post_for(None)
    assert admin.may_post_for(None)
