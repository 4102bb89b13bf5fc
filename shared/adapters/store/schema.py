"""The tables, as SQLAlchemy Core metadata. Change them only with an Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "identifiers",
    "memberships",
    "messages",
    "metadata",
    "outbox",
    "processed_events",
    "profiles",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on PostgreSQL and SQLite alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """Money kept exactly, as whole minor units (cents) in a BIGINT."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int((value * 100).to_integral_exact())

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(int(value)) / 100).quantize(Decimal("0.01"))


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("event_id", String(100), primary_key=True),
    Column("processed_at", UTCDateTime, nullable=False),
)

profiles = Table(
    "profiles",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320)),
    Column("phone", String(32)),
    Column("orders_count", Integer, nullable=False, server_default=text("0")),
    Column("revenue_total", Money, nullable=False, server_default=text("0")),
    Column("first_order_at", UTCDateTime),
    Column("last_order_at", UTCDateTime),
    Column("refunds_count", Integer, nullable=False, server_default=text("0")),
    Column("refunds_total", Money, nullable=False, server_default=text("0")),
    # Facts from identify, track, message_* and unsubscribed events, as JSON objects
    # (sql.py maps them to and from the domain's Profile; moments as ISO 8601 strings).
    Column("traits", JSON, nullable=False, server_default=text("'{}'")),
    Column("consents", JSON, nullable=False, server_default=text("'{}'")),
    Column("tracked", JSON, nullable=False, server_default=text("'{}'")),
    Column("engagement", JSON, nullable=False, server_default=text("'{}'")),
    Column("suppressions", JSON, nullable=False, server_default=text("'{}'")),
    Column("next_timer_at", UTCDateTime),
    Column("evaluated_at", UTCDateTime),
    Column("merged_into", String(36), index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The timer loop reads only what is due: its cost follows the due buyers, not the base.
    Index(
        "ix_profiles_next_timer_at",
        "next_timer_at",
        postgresql_where=text("next_timer_at IS NOT NULL"),
        sqlite_where=text("next_timer_at IS NOT NULL"),
    ),
)

identifiers = Table(
    "identifiers",
    metadata,
    Column("kind", String(20), primary_key=True),
    Column("value", String(320), primary_key=True),
    Column("profile_id", String(36), ForeignKey("profiles.id"), nullable=False, index=True),
)

memberships = Table(
    "memberships",
    metadata,
    Column("profile_id", String(36), ForeignKey("profiles.id"), primary_key=True),
    Column("segment", String(100), primary_key=True),
    Column("entered_at", UTCDateTime, nullable=False),
    Index(None, "segment"),
)

outbox = Table(
    "outbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("topic", String(200), nullable=False),
    Column("key", LargeBinary),
    Column("value", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime),
    Index(
        "ix_outbox_unpublished",
        "id",
        postgresql_where=text("published_at IS NULL"),
        sqlite_where=text("published_at IS NULL"),
    ),
)

messages = Table(
    "messages",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("campaign", String(100), nullable=False),
    Column("profile_id", String(36), nullable=False, index=True),
    Column("channel", String(20), nullable=False),
    Column("occurrence_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("provider_message_id", String(200)),
    Column("error", Text),
    Index(None, "campaign", "status"),
)

# Scoped API keys (shared/adapters/store/api_keys.py). Only a SHA-256 of the whole key is
# kept; ``scopes`` and ``stores`` are JSON arrays of strings (``stores`` empty: any store).
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("stores", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)
__all__ += ["api_keys"]
