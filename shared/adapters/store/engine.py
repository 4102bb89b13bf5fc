"""Opening the database: an async engine for PostgreSQL (asyncpg) or SQLite (aiosqlite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.adapters.files import private_sqlite_file
from shared.adapters.store.dialect import is_sqlite
from shared.adapters.store.sql import SqlStore
from shared.errors import StoreUnavailable

__all__ = ["create_engine", "open_store", "reach"]


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    parsed = make_url(url)
    # Profiles carry a dozen JSON columns: orjson reads and writes them several times
    # faster than the standard library (the same JSON, without spaces).
    codec: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": orjson.loads}
    if is_sqlite(url):
        if parsed.database and parsed.database != ":memory:":
            private_sqlite_file(Path(parsed.database))  # buyers' data: 0600, its WAL too
        engine = create_async_engine(url, **codec)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, **codec
    )


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk (the WAL fsynced) when it returns. The embedded bus commits
    # a consumer's offsets after the store's transaction: with NORMAL, a power cut could keep
    # the offset and lose the transaction, so an accepted event would be lost.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def open_store(url: str) -> SqlStore:
    """A store on ``url`` (``postgresql+asyncpg://…`` or ``sqlite+aiosqlite:///…``)."""
    return SqlStore(create_engine(url))


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in the driver's own first line (no password is in it)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    said = str(cause).strip().splitlines()
    return said[0] if said else type(cause).__name__


async def reach(url: str) -> None:
    """Connect to the database at ``url`` once; :class:`StoreUnavailable` saying where
    (its password hidden) and why when it cannot: refused, an unknown host, a login
    refused, no such database, a SQLite file that cannot be opened."""
    try:
        engine = create_engine(url, pool_size=1)
    except OSError as exc:  # the SQLite file's folder cannot be made
        shown = make_url(url).render_as_string(hide_password=True)
        raise StoreUnavailable(f"cannot reach the database at {shown}: {_reason(exc)}") from exc
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (DBAPIError, OSError) as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        raise StoreUnavailable(f"cannot reach the database at {shown}: {_reason(exc)}") from exc
    finally:
        await engine.dispose()
