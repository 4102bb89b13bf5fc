"""Console users on SQLAlchemy Core, in the ``users`` table, on PostgreSQL and SQLite alike.

Passwords are kept as argon2id hashes (argon2-cffi's :class:`PasswordHasher`, whose
defaults follow RFC 9106). A hash made with older parameters is replaced by one
made with the current parameters at the next successful login. Hashing runs in a
worker thread: it is deliberately slow, and the event loop has other requests.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Sequence
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.adapters.clock import SystemClock
from shared.adapters.store import schema as t
from shared.adapters.store.engine import create_engine
from shared.adapters.store.errors import connected
from shared.ports.clock import Clock
from shared.ports.users import ROLES, ConsoleUser, Role

__all__ = ["MAX_PASSWORD", "MIN_PASSWORD", "SqlUsers", "open_users"]

MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes any length; a bound keeps a huge body from costing much
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,99}")


def _user(row: Any) -> ConsoleUser:
    return ConsoleUser(
        id=row.id,
        username=row.username,
        role=cast("Role", row.role),
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


def _username(username: str) -> str:
    return username.strip().lower()


def _checked_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")


def _checked_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


class SqlUsers:
    """A :class:`~shared.ports.users.Users` over an async SQLAlchemy engine."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock | None = None,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.engine = engine
        self._clock = clock or SystemClock()
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        def verify() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(verify)

    async def _waste_a_verification(self, password: str) -> None:
        """As long as checking a real password: an unknown username must not answer faster."""
        if self._dummy_hash is None:
            self._dummy_hash = await self._hash(secrets.token_urlsafe(16))
        await self._verify(self._dummy_hash, password)

    async def create(self, username: str, password: str, role: Role) -> ConsoleUser:
        name = _username(username)
        if not _USERNAME.fullmatch(name):
            raise ValueError(
                "a username is 1 to 100 letters, digits or . _ @ + - and starts with a "
                "letter or digit"
            )
        user = ConsoleUser(
            id=secrets.token_hex(8),
            username=name,
            role=_checked_role(role),
            created_at=self._clock.now(),
        )
        password_hash = await self._hash(_checked_password(password))
        async with connected(self.engine) as conn:
            try:
                await conn.execute(
                    t.users.insert().values(
                        id=user.id,
                        username=user.username,
                        password_hash=password_hash,
                        role=user.role,
                        created_at=user.created_at,
                    )
                )
            except IntegrityError:
                raise ValueError(f"the username {name!r} is taken") from None
            await conn.commit()
        return user

    async def authenticate(self, username: str, password: str) -> ConsoleUser | None:
        row = None
        if len(password) <= MAX_PASSWORD:
            async with connected(self.engine) as conn:
                row = (
                    await conn.execute(
                        select(t.users).where(t.users.c.username == _username(username))
                    )
                ).first()
        if row is None or row.disabled_at is not None:
            await self._waste_a_verification(password[:MAX_PASSWORD])
            return None
        if not await self._verify(row.password_hash, password):
            return None
        if self._hasher.check_needs_rehash(row.password_hash):
            await self._store_hash(row.id, await self._hash(password))
        return _user(row)

    async def _store_hash(self, user_id: str, password_hash: str) -> None:
        async with connected(self.engine) as conn:
            await conn.execute(
                update(t.users).where(t.users.c.id == user_id).values(password_hash=password_hash)
            )
            await conn.commit()

    async def get(self, user_id: str) -> ConsoleUser | None:
        async with connected(self.engine) as conn:
            row = (await conn.execute(select(t.users).where(t.users.c.id == user_id))).first()
        return None if row is None else _user(row)

    async def find(self, username: str) -> ConsoleUser | None:
        async with connected(self.engine) as conn:
            row = (
                await conn.execute(select(t.users).where(t.users.c.username == _username(username)))
            ).first()
        return None if row is None else _user(row)

    async def set_role(self, username: str, role: Role) -> ConsoleUser | None:
        checked = _checked_role(role)
        async with connected(self.engine) as conn:
            await conn.execute(
                update(t.users)
                .where(t.users.c.username == _username(username))
                .values(role=checked)
            )
            await conn.commit()
        return await self.find(username)

    async def set_password(self, username: str, password: str) -> bool:
        user = await self.find(username)
        if user is None:
            return False
        await self._store_hash(user.id, await self._hash(_checked_password(password)))
        return True

    async def disable(self, username: str) -> bool:
        name = _username(username)
        async with connected(self.engine) as conn:
            await conn.execute(
                update(t.users)
                .where(t.users.c.username == name, t.users.c.disabled_at.is_(None))
                .values(disabled_at=self._clock.now())
            )
            found = await conn.scalar(
                select(func.count()).select_from(t.users).where(t.users.c.username == name)
            )
            await conn.commit()
        return bool(found)

    async def ping(self) -> None:
        async with connected(self.engine) as conn:
            await conn.scalar(select(1))

    async def close(self) -> None:
        await self.engine.dispose()

    # Last, so that ``list`` names the builtin in every annotation above.
    async def list(self) -> Sequence[ConsoleUser]:
        async with connected(self.engine) as conn:
            rows = await conn.execute(select(t.users).order_by(t.users.c.created_at, t.users.c.id))
            return [_user(row) for row in rows]


def open_users(
    url: str, *, clock: Clock | None = None, hasher: PasswordHasher | None = None
) -> SqlUsers:
    """The console users in the database at ``url``."""
    return SqlUsers(create_engine(url), clock=clock, hasher=hasher)
