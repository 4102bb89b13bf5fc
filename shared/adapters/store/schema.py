"""The tables, as SQLAlchemy Core metadata. Change them only with an Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.types import TypeDecorator

from shared.adapters.store.dialect import AUTOINCREMENT_ID, dialect_of, partial_index

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
        return value.replace(tzinfo=None) if dialect_of(dialect).naive_datetimes else value

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
    # Behaviour (migration 0005): the latest 100 order moments and 20 baskets (JSON
    # arrays), purchases per category, SKU and store, custom events per UTC day (400
    # days), opens per channel by local hour (JSON objects).
    Column("order_moments", JSON, nullable=False, server_default=text("'[]'")),
    Column("baskets", JSON, nullable=False, server_default=text("'[]'")),
    Column("categories", JSON, nullable=False, server_default=text("'{}'")),
    Column("skus", JSON, nullable=False, server_default=text("'{}'")),
    Column("stores", JSON, nullable=False, server_default=text("'{}'")),
    Column("tracked_days", JSON, nullable=False, server_default=text("'{}'")),
    Column("open_hours", JSON, nullable=False, server_default=text("'{}'")),
    # Scores set by the base-wide scoring job, as plain columns the console can query.
    Column("rfm_r", SmallInteger),
    Column("rfm_f", SmallInteger),
    Column("rfm_m", SmallInteger),
    Column("rfm_segment", String(40)),
    Column("p_alive", Float),
    Column("expected_purchases", Float),
    Column("expected_spend", Money),
    Column("clv", Money),
    Column("clv_share", Float),
    Column("clv_low", Money),  # migration 0019: the CLV's interval
    Column("clv_high", Money),
    Column("scored_at", UTCDateTime, index=True),  # the scoring loop asks for the latest
    Column("next_timer_at", UTCDateTime),
    Column("evaluated_at", UTCDateTime),
    Column("merged_into", String(36), index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The timer loop reads only what is due: its cost follows the due buyers, not the base.
    partial_index("ix_profiles_next_timer_at", "next_timer_at", where="next_timer_at IS NOT NULL"),
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
    Column("id", AUTOINCREMENT_ID, primary_key=True, autoincrement=True),
    Column("topic", String(200), nullable=False),
    Column("key", LargeBinary),
    Column("value", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime),
    partial_index("ix_outbox_unpublished", "id", where="published_at IS NULL"),
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
    # Why the message went, waited or not (migration 0008): ``reason`` is the deciding
    # step's code (``holdout``, ``capped``, ``quiet_hours``, ``converted``...), ``decision``
    # every step's say as a JSON array of {step, code, detail}; ``sent_at`` is set once the
    # message is handed to a provider, and is what the frequency caps count.
    Column("reason", String(40)),
    Column("holdout", Boolean, nullable=False, server_default=false()),
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Column("scheduled_for", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("decision", JSON),
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

# Every event id ingest accepted, with the digest of its content (shared/adapters/store/
# event_ids.py): the same id with other content is refused. Kept as long as processed_events.
event_ids = Table(
    "event_ids",
    metadata,
    Column("tenant", String(200), primary_key=True),
    Column("event_id", String(100), primary_key=True),
    Column("digest", LargeBinary(20), nullable=False),  # 4 bytes of version, 16 of hash
    Column("claimed_at", UTCDateTime, nullable=False),
)
__all__ += ["event_ids"]

# Console users (shared/adapters/store/users.py). Only an argon2id hash of the password is
# kept; usernames are lower-cased; ``role`` is analyst, marketer or admin.
users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
)
__all__ += ["users"]

# Console sessions (shared/adapters/store/sessions.py): the cookie carries a random id and
# only its SHA-256 is kept here. A session ends at ``expires_at`` or when ``revoked_at`` is
# set (logout, the user disabled).
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", String(32), ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("revoked_at", UTCDateTime),
)
__all__ += ["console_sessions"]

# What marketers define (shared/adapters/store/definitions.py): each row carries a version,
# 1 when created and one more at each change (optimistic concurrency); nothing is deleted,
# ``archived_at`` retires a definition. Rules, contents and campaigns are JSON.


def _versioned() -> tuple[Column[Any], ...]:
    """The columns every kind of definition ends with: its version and its moments."""
    return (
        Column("version", Integer, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("updated_at", UTCDateTime, nullable=False),
        Column("archived_at", UTCDateTime),
    )


segment_definitions = Table(
    "segment_definitions",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("rule", JSON, nullable=False),
    *_versioned(),
)
template_definitions = Table(
    "template_definitions",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("channel", String(10), nullable=False),
    Column("content", JSON, nullable=False),
    *_versioned(),
)
campaign_definitions = Table(
    "campaign_definitions",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("definition", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    *_versioned(),
)
programme_definitions = Table(
    "programme_definitions",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("definition", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    *_versioned(),
)
# Every version a programme had (migration 0015): buyers inside a programme stay on the
# version they entered, so each is kept as it was saved.
programme_versions = Table(
    "programme_versions",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("definition", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("saved_at", UTCDateTime, nullable=False),
    Column("archived_at", UTCDateTime),
)
# How far the base was evaluated against each segment's rule (built-in or stored):
# ``fingerprint`` names the rule, ``cursor`` the last profile id done, in id order.
segment_recomputes = Table(
    "segment_recomputes",
    metadata,
    Column("segment", String(100), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("cursor", String(36)),
    Column("evaluated", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
)
__all__ += [
    "campaign_definitions",
    "programme_definitions",
    "programme_versions",
    "segment_definitions",
    "segment_recomputes",
    "template_definitions",
]

# Messages waiting for their moment (migration 0008): a campaign's delay, room under the
# frequency caps, the end of quiet hours, the buyer's best hour. One row per message key;
# a row is deleted when it wakes, so every row is pending and the index on ``due_at`` is
# what the due-sends loop reads: its cost follows what is due, not what waits.
# ``channel`` is the one planned (chosen again at send time); ``context`` is the trigger
# as JSON, what the message needs when it wakes.
scheduled_sends = Table(
    "scheduled_sends",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("campaign", String(100), nullable=False),
    Column("profile_id", String(36), nullable=False, index=True),
    Column("occurrence_id", String(64), nullable=False),
    Column("channel", String(20)),
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Column("triggered_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("context", JSON, nullable=False, server_default=text("'{}'")),
    Index("ix_scheduled_sends_due_at", "due_at"),
)
__all__ += ["scheduled_sends"]

# Where each buyer is in each programme (migration 0016, shared/adapters/store/positions.py):
# one row per programme, buyer and entry (the trigger occurrence). ``due_at`` is set while
# the buyer waits; the due index holds only those rows, so waking follows what is due.
programme_positions = Table(
    "programme_positions",
    metadata,
    Column("programme", String(100), primary_key=True),
    Column("profile_id", String(36), primary_key=True),
    Column("entry", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("step", String(32), nullable=False),
    Column("entered_at", UTCDateTime, nullable=False),
    Column("arrived_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime),
    Column("holdout", Boolean, nullable=False),
    Column("exited_at", UTCDateTime),
    Column("exit_reason", String(32)),
    Column("updated_at", UTCDateTime, nullable=False),
    partial_index("ix_programme_positions_due_at", "due_at", where="due_at IS NOT NULL"),
    Index("ix_programme_positions_profile_id", "profile_id"),
)
__all__ += ["programme_positions"]

# An "everyone in segment S" programme's entering at activation (migration 0020,
# shared/adapters/store/positions.py): the members enter in id order, batch by batch;
# ``after`` is the last one entered, ``finished_at`` set once all have.
programme_activations = Table(
    "programme_activations",
    metadata,
    Column("programme", String(100), primary_key=True),
    Column("activated_at", UTCDateTime, nullable=False),
    Column("after", String(36)),
    Column("entered", Integer, nullable=False),
    Column("finished_at", UTCDateTime),
)
__all__ += ["programme_activations"]

# Purchases attributed to campaign messages (migration 0009, shared/adapters/store/reports.py):
# one row per message and order whose purchase fell in the campaign's attribution window,
# held-out messages alike (``holdout``), so a report compares the two arms the same way.
conversions = Table(
    "conversions",
    metadata,
    Column("message_key", String(100), primary_key=True),
    Column("order_id", String(200), primary_key=True),
    Column("campaign", String(100), nullable=False),
    Column("profile_id", String(36), nullable=False),
    Column("holdout", Boolean, nullable=False),
    Column("amount", Money, nullable=False),
    Column("converted_at", UTCDateTime, nullable=False),
    Index(None, "campaign"),
)
# What delivery webhooks said of each message (migration 0009): one row per message and
# response (``delivered``, ``opened``, ``clicked``), the first moment it was reported;
# the campaign report's funnel counts them per buyer.
message_responses = Table(
    "message_responses",
    metadata,
    Column("message_key", String(100), primary_key=True),
    Column("response", String(20), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
)
__all__ += ["conversions", "message_responses"]

# How many buyers each segment held, one row a day (migration 0010): the console's
# "size over time". Written by ``SqlConsoleQueries.snapshot_segment_sizes`` (once a day
# from the segmenter, or on demand); a second snapshot of a day replaces the first.
segment_sizes = Table(
    "segment_sizes",
    metadata,
    Column("day", Date, primary_key=True),
    Column("segment", String(100), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("taken_at", UTCDateTime, nullable=False),
)
__all__ += ["segment_sizes"]

# The embedded bus (migration 0014; shared/adapters/bus/sqlite.py writes them with its own
# SQL): a topic's partition count, every record of every partition at its offset, and each
# consumer group's committed offset per partition. The records' primary key is the index
# every poll reads (topic, partition, offset >= position).
bus_topics = Table(
    "bus_topics",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("partitions", Integer, nullable=False),
)
bus_records = Table(
    "bus_records",
    metadata,
    Column("topic", String(255), primary_key=True),
    Column("partition_no", Integer, primary_key=True),
    Column("offset_no", BigInteger, primary_key=True),
    Column("key", LargeBinary, nullable=True),
    Column("value", LargeBinary, nullable=False),
    Column("headers", LargeBinary, nullable=True),
    Column("at_ms", BigInteger, nullable=False),
)
bus_offsets = Table(
    "bus_offsets",
    metadata,
    Column("group_name", String(255), primary_key=True),
    Column("topic", String(255), primary_key=True),
    Column("partition_no", Integer, primary_key=True),
    Column("committed", BigInteger, nullable=False),
)
__all__ += ["bus_offsets", "bus_records", "bus_topics"]

# What each order was paid and refunded (migration 0017, shared/adapters/store/sql.py
# ``SqlOrders``): the segmenter refuses a refund above what its order left. ``profile_id``
# is the buyer who placed it (who was refunded first, for an order never bought here);
# ``purchases`` 0 is an order nudge never saw. Amounts in minor units, as on profiles.
orders = Table(
    "orders",
    metadata,
    Column("order_id", String(200), primary_key=True),
    Column("profile_id", String(36), nullable=False),
    Column("bought", Money, nullable=False, server_default=text("0")),
    Column("refunded", Money, nullable=False, server_default=text("0")),
    Column("purchases", Integer, nullable=False, server_default=text("0")),
    Column("updated_at", UTCDateTime, nullable=False),
)
__all__ += ["orders"]
# Every purchase as placed (migration 0018): the shop's full order history per buyer, which
# the profile keeps only the latest ``ORDER_HISTORY`` moments of and no values. Written by
# the segmenter with the batch that applies it (``SqlPlacedOrders.record``), moved to the survivor
# on a merge; ``nudge models validate`` reads it a buyer at a time (``SqlOrderHistory``).
placed_orders = Table(
    "placed_orders",
    metadata,
    Column("order_id", String(200), primary_key=True),
    Column("profile_id", String(36), nullable=False),
    Column("placed_at", UTCDateTime, nullable=False),
    Column("total", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    Index(None, "profile_id", "placed_at"),
)
__all__ += ["placed_orders"]

# Offers (migration 0022, shared/adapters/store/offers.py): versioned like campaigns, the
# definition as the API took it. Their codes: a pool's uploaded ``free`` and ``issued`` to
# one message when it takes one, in the transaction that writes the message's row; a
# generated code written ``issued``. A message carries at most one code (the unique index).
offers = Table(
    "offers",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("definition", JSON, nullable=False),
    *_versioned(),
)
offer_codes = Table(
    "offer_codes",
    metadata,
    Column("offer", String(100), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("source", String(10), nullable=False),
    Column("state", String(10), nullable=False),
    Column("message_key", String(100)),
    Column("profile_id", String(36)),
    Column("added_at", UTCDateTime, nullable=False),
    Column("issued_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
    Index(None, "offer", "state"),
    Index(None, "message_key", unique=True),
)
__all__ += ["offer_codes", "offers"]
# Each issued code a purchase named (migration 0023): the first purchase naming it redeems
# it; the message it went to says which campaign it counts for. Amounts in minor units.
offer_redemptions = Table(
    "offer_redemptions",
    metadata,
    Column("offer", String(100), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("message_key", String(100), nullable=False),
    Column("order_id", String(200), nullable=False),
    Column("order_total", Money, nullable=False),
    Column("discount", Money, nullable=False),
    Column("redeemed_at", UTCDateTime, nullable=False),
    Index(None, "message_key"),
)
__all__ += ["offer_redemptions"]

# Each run of the base-wide scoring job (migration 0027, shared/adapters/store/scoring.py):
# the moment scored at, the models used and what fell back, and the notes, in words about
# the base (no buyer named), so the console can say how the scores it shows were made.
scoring_runs = Table(
    "scoring_runs",
    metadata,
    Column("id", AUTOINCREMENT_ID, primary_key=True, autoincrement=True),
    Column("scored_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("buyers", Integer, nullable=False),
    Column("scored", Integer, nullable=False),
    Column("purchase_model", String(100)),
    Column("spend_model", String(100)),
    Column("fallbacks", JSON, nullable=False),
    Column("notes", JSON, nullable=False),
)
__all__ += ["scoring_runs"]
