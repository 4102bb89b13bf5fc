"""What differs between the store's two databases, PostgreSQL and SQLite, in one place.

The store's adapters are one implementation on SQLAlchemy Core; where the two
databases differ, they ask the :class:`Dialect` of their engine rather than test its
name themselves:

- the ``INSERT … ON CONFLICT`` construct (:meth:`Dialect.insert`): SQLAlchemy has one
  per dialect, the same to use;
- locks that span replicas (:attr:`Dialect.advisory_locks`): PostgreSQL's advisory
  locks keep one outbox relay and one scoring run at a time; SQLite has one process;
- one writer at a time (:attr:`Dialect.one_writer`): SQLite allows one writing
  transaction, so the adapters of one engine queue on one lock
  (:mod:`shared.adapters.store.writer`); PostgreSQL needs none;
- arrays as parameters (:attr:`Dialect.arrays`): PostgreSQL takes a whole batch as
  arrays (``unnest``); SQLite has none, so a batch is an executemany;
- datetimes (:attr:`Dialect.naive_datetimes`): SQLite keeps no time zone, so UTC
  moments are stored naive (``schema.UTCDateTime``);
- schema changes (:attr:`Dialect.alters_by_copy`): SQLite alters few things in place,
  so Alembic migrations copy the table (``render_as_batch``);
- the engine (:func:`is_sqlite`): an SQLite file is the buyers' data (mode 0600, with
  its pragmas); PostgreSQL gets a connection pool.

Row locks need no question: ``SELECT … FOR UPDATE [SKIP LOCKED]`` is written for
PostgreSQL and SQLAlchemy leaves it out on SQLite, whose one writer locks the whole
database anyway. JSON columns are SQLAlchemy's generic ``JSON`` on both (``json`` on
PostgreSQL, text on SQLite), and the other types are the same on both but for the
outbox's autoincrement id (:data:`AUTOINCREMENT_ID`); both have partial indexes, each
spelling its own ``WHERE`` (:func:`partial_index`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.interfaces import Dialect as SaDialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = [
    "AUTOINCREMENT_ID",
    "POSTGRESQL",
    "SQLITE",
    "Dialect",
    "dialect_of",
    "is_sqlite",
    "partial_index",
]


@dataclass(frozen=True)
class Dialect:
    """One database's answers to what differs (see the module's docstring)."""

    name: str
    _insert: Any = field(repr=False)
    advisory_locks: bool
    """Whether locks that span processes (PostgreSQL's advisory locks) exist."""
    one_writer: bool
    """Whether the database allows one writing transaction at a time."""
    arrays: bool
    """Whether a statement takes arrays as parameters."""
    naive_datetimes: bool
    """Whether moments are stored without a time zone (as naive UTC)."""
    alters_by_copy: bool
    """Whether a migration alters a table by copying it (Alembic's batch mode)."""

    def insert(self, table: Any) -> Any:
        """An ``INSERT`` of ``table`` that knows ``on_conflict_do_nothing`` / ``_update``."""
        return self._insert(table)


POSTGRESQL = Dialect(
    "postgresql",
    postgresql.insert,
    advisory_locks=True,
    one_writer=False,
    arrays=True,
    naive_datetimes=False,
    alters_by_copy=False,
)
SQLITE = Dialect(
    "sqlite",
    sqlite.insert,
    advisory_locks=False,
    one_writer=True,
    arrays=False,
    naive_datetimes=True,
    alters_by_copy=True,
)

AUTOINCREMENT_ID = BigInteger().with_variant(Integer, SQLITE.name)
"""A BIGINT id the database numbers: SQLite numbers an ``INTEGER PRIMARY KEY`` only."""


def dialect_of(source: AsyncEngine | AsyncConnection | Engine | Connection | SaDialect) -> Dialect:
    """The dialect of an engine or connection (async or not), or of SQLAlchemy's own
    dialect object; anything but PostgreSQL is SQLite."""
    name = source.name if isinstance(source, SaDialect) else source.dialect.name
    return POSTGRESQL if name == POSTGRESQL.name else SQLITE


def is_sqlite(url: str) -> bool:
    """Whether the database URL names SQLite (``sqlite+aiosqlite:///…``)."""
    return make_url(url).get_backend_name() == SQLITE.name


def partial_index(name: str, *columns: str, where: str) -> Index:
    """An index of the rows ``where`` holds (SQL), on PostgreSQL and SQLite alike."""
    return Index(name, *columns, postgresql_where=text(where), sqlite_where=text(where))
