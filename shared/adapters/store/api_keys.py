"""API keys on SQLAlchemy Core, in the ``api_keys`` table, on PostgreSQL and SQLite alike.

The plaintext key is ``nk_<key id>_<secret>``: the key id (16 hex digits) finds the
row, and the row keeps only a SHA-256 of the whole key, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Sequence
from typing import Any, cast

import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.adapters.clock import SystemClock
from shared.adapters.store import schema as t
from shared.adapters.store.engine import create_engine
from shared.adapters.store.errors import connected
from shared.ports.api_keys import SCOPES, ApiKey, Scope
from shared.ports.clock import Clock

__all__ = ["SqlApiKeys", "open_api_keys"]

_PREFIX = "nk"
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_MAX_KEY_LENGTH = 200  # a real key is 63 characters; anything much longer is not hashed
_MAX_TEXT = 200


def _digest(key: str) -> str:
    # A fast hash is the right one here: the key carries 256 random bits
    # (secrets.token_urlsafe(32)), so no dictionary or brute force reaches it, unlike a
    # password, which needs a slow, salted hash. SHA-256 keeps every request's check cheap.
    return hashlib.sha256(key.encode()).hexdigest()


def _api_key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        scopes=frozenset(cast("list[Scope]", orjson.loads(row.scopes))),
        stores=frozenset(cast("list[str]", orjson.loads(row.stores))),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _checked(name: str, scopes: Collection[str], stores: Collection[str]) -> tuple[str, ...]:
    name = name.strip()
    if not name or len(name) > _MAX_TEXT:
        raise ValueError(f"a key's name is 1 to {_MAX_TEXT} characters")
    if not scopes:
        raise ValueError(f"a key needs at least one scope: {', '.join(SCOPES)}")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    cleaned = tuple(sorted({s.strip() for s in stores}))
    if any(not s or len(s) > _MAX_TEXT for s in cleaned):
        raise ValueError(f"a store id is 1 to {_MAX_TEXT} characters")
    return cleaned


class SqlApiKeys:
    """An :class:`~shared.ports.api_keys.ApiKeys` over an async SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self._clock = clock or SystemClock()

    async def create(
        self, name: str, scopes: Collection[Scope], stores: Collection[str] = ()
    ) -> tuple[ApiKey, str]:
        store_ids = _checked(name, scopes, stores)
        key_id = secrets.token_hex(8)
        plaintext = f"{_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            id=key_id,
            name=name.strip(),
            scopes=frozenset(scopes),
            stores=frozenset(store_ids),
            created_at=self._clock.now(),
        )
        async with connected(self.engine) as conn:
            await conn.execute(
                t.api_keys.insert().values(
                    id=key.id,
                    name=key.name,
                    secret_hash=_digest(plaintext),
                    scopes=orjson.dumps(sorted(key.scopes)).decode(),
                    stores=orjson.dumps(store_ids).decode(),
                    created_at=key.created_at,
                )
            )
            await conn.commit()
        return key, plaintext

    async def authenticate(self, secret: str) -> ApiKey | None:
        prefix, _, rest = secret.partition("_")
        key_id, _, random_part = rest.partition("_")
        if (
            prefix != _PREFIX
            or not random_part
            or len(secret) > _MAX_KEY_LENGTH
            or not _KEY_ID.fullmatch(key_id)
        ):
            return None
        async with connected(self.engine) as conn:
            row = (await conn.execute(select(t.api_keys).where(t.api_keys.c.id == key_id))).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _digest(secret)):
            return None
        if row.revoked_at is not None:
            return None
        return _api_key(row)

    async def revoke(self, key_id: str) -> bool:
        async with connected(self.engine) as conn:
            await conn.execute(
                update(t.api_keys)
                .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self._clock.now())
            )
            found = await conn.scalar(select(t.api_keys.c.id).where(t.api_keys.c.id == key_id))
            await conn.commit()
        return found is not None

    async def ping(self) -> None:
        async with connected(self.engine) as conn:
            await conn.scalar(select(1))

    async def close(self) -> None:
        await self.engine.dispose()

    # Last, so that ``list`` names the builtin in every annotation above.
    async def list(self) -> Sequence[ApiKey]:
        async with connected(self.engine) as conn:
            rows = await conn.execute(
                select(t.api_keys).order_by(t.api_keys.c.created_at, t.api_keys.c.id)
            )
            return [_api_key(row) for row in rows]


def open_api_keys(url: str, *, clock: Clock | None = None) -> SqlApiKeys:
    """The keys in the database at ``url`` (``postgresql+asyncpg://…`` or ``sqlite+aiosqlite:///…``)."""
    return SqlApiKeys(create_engine(url), clock=clock)
