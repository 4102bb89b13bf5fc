"""Database errors in nudge's terms: what means "the database is away" becomes StoreUnavailable."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.errors import StoreUnavailable

__all__ = ["connected", "database_errors"]


@contextmanager
def database_errors() -> Iterator[None]:
    """Translate connection failures raised inside the block into :class:`StoreUnavailable`."""
    try:
        yield
    except (OperationalError, InterfaceError, OSError) as exc:
        raise StoreUnavailable(f"database unavailable: {type(exc).__name__}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable("database connection lost") from exc
        raise


@asynccontextmanager
async def connected(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection of ``engine``, its failures translated as :func:`database_errors` does:
    how the small SQL adapters (keys, users, sessions, reports, console queries) talk."""
    with database_errors():
        async with engine.connect() as conn:
            yield conn
