"""Database errors in nudge's terms: what means "the database is away" becomes StoreUnavailable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from shared.errors import StoreUnavailable

__all__ = ["database_errors"]


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
