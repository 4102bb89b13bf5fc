"""The store on SQLAlchemy Core: one implementation, two dialects (PostgreSQL, SQLite).

Where the dialects differ, the repositories ask the engine's
:class:`~shared.adapters.store.dialect.Dialect`: the ``INSERT … ON CONFLICT``
construct, the single outbox relay (a transaction-level advisory lock on PostgreSQL)
and SQLite's one writer (units of work queue on one lock). Row locks (``FOR UPDATE
SKIP LOCKED``) are written once: SQLite, one writer at a time anyway, goes without.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from datetime import UTC, date, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import DateTime, String, bindparam, delete, func, select, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.adapters.store import schema as t
from shared.adapters.store.dialect import Dialect, dialect_of
from shared.adapters.store.errors import database_errors
from shared.adapters.store.offer_codes import SqlOfferCodes
from shared.adapters.store.positions import SqlPositions
from shared.adapters.store.rows import from_row
from shared.adapters.store.schedule import SqlSchedule
from shared.adapters.store.writer import writer_lock
from shared.domain.decisions import Reason, SentMessage
from shared.domain.events import Channel
from shared.domain.identifiers import new_profile_id
from shared.domain.money import OrderBalance
from shared.domain.profile import SCORE_FIELDS, Basket, Engagement, Profile, Purchases, Tally
from shared.domain.segments import MembershipChange
from shared.ports.store import (
    NOT_SENT,
    MessageOutcome,
    MessageRecord,
    OutboxRecord,
    OutgoingRecord,
    PlacedOrder,
    Resolution,
)

__all__ = ["SqlStore", "SqlUnitOfWork"]

_OUTBOX_RELAY_LOCK = 0x6E75646765  # "nudge"
_CHUNK = 1000  # rows per statement: far below every driver's bind-parameter limit


class SqlStore:
    """A :class:`~shared.ports.store.Store` over an async SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = dialect_of(engine)
        # SQLite allows one writer: serialise units of work in this process, with every
        # other writer on the engine, rather than meet "database is locked" half-way.
        self._writer = writer_lock(engine)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[SqlUnitOfWork]:
        if self._writer is not None:
            async with self._writer, self._transaction() as uow:
                yield uow
        else:
            async with self._transaction() as uow:
                yield uow

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[SqlUnitOfWork]:
        with database_errors():
            async with self.engine.connect() as conn:
                tx = await conn.begin()
                uow = SqlUnitOfWork(conn, self.dialect)
                try:
                    yield uow
                finally:
                    if tx.is_active:
                        await tx.rollback()

    async def close(self) -> None:
        await self.engine.dispose()


class _Repository:
    def __init__(self, conn: AsyncConnection, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    def insert(self, table: Any) -> Any:
        return self.dialect.insert(table)


class SqlInbox(_Repository):
    async def claim(self, event_ids: Sequence[str], at: datetime) -> set[str]:
        claimed: set[str] = set()
        unique = list(dict.fromkeys(event_ids))
        for start in range(0, len(unique), _CHUNK):
            rows = [{"event_id": e, "processed_at": at} for e in unique[start : start + _CHUNK]]
            stmt = (
                self.insert(t.processed_events)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["event_id"])
                .returning(t.processed_events.c.event_id)
            )
            claimed.update((await self.conn.scalars(stmt)).all())
        return claimed

    async def seen(self, event_ids: Collection[str]) -> set[str]:
        found: set[str] = set()
        ordered = sorted(event_ids)
        for start in range(0, len(ordered), _CHUNK):
            stmt = select(t.processed_events.c.event_id).where(
                t.processed_events.c.event_id.in_(ordered[start : start + _CHUNK])
            )
            found.update((await self.conn.scalars(stmt)).all())
        return found


def _profile(row: Any) -> Profile:
    return Profile(
        id=row.id,
        email=row.email,
        phone=row.phone,
        orders_count=row.orders_count,
        revenue_total=row.revenue_total,
        first_order_at=row.first_order_at,
        last_order_at=row.last_order_at,
        refunds_count=row.refunds_count,
        refunds_total=row.refunds_total,
        traits=dict(row.traits),
        consents=dict(row.consents),
        tracked={name: _from_json(Tally, v) for name, v in row.tracked.items()},
        engagement={channel: _from_json(Engagement, v) for channel, v in row.engagement.items()},
        suppressions=dict(row.suppressions),
        next_timer_at=row.next_timer_at,
        evaluated_at=row.evaluated_at,
        merged_into=row.merged_into,
        **_behaviour(row),
    )


def _behaviour(row: Any) -> dict[str, Any]:
    """The profile's behaviour and scores, from their columns (JSON as :func:`_behaviour_row`)."""
    return {
        "order_moments": [datetime.fromisoformat(m) for m in row.order_moments],
        "baskets": [Basket(datetime.fromisoformat(b["at"]), dict(b["items"])) for b in row.baskets],
        "categories": {k: _from_json(Purchases, v) for k, v in row.categories.items()},
        "skus": {k: _from_json(Purchases, v) for k, v in row.skus.items()},
        "stores": {k: _from_json(Purchases, v) for k, v in row.stores.items()},
        "tracked_days": {
            name: {date.fromisoformat(day): count for day, count in days.items()}
            for name, days in row.tracked_days.items()
        },
        "open_hours": {channel: list(hours) for channel, hours in row.open_hours.items()},
        **{name: getattr(row, name) for name in SCORE_FIELDS},
    }


def _behaviour_row(p: Profile) -> dict[str, Any]:
    """The profile's behaviour as JSON (moments in UTC ISO 8601, days as ISO dates) and scores."""
    return {
        "order_moments": [_iso(m) for m in p.order_moments],
        "baskets": [{"at": _iso(b.at), "items": b.items} for b in p.baskets],
        "categories": {k: _to_json(v) for k, v in p.categories.items()},
        "skus": {k: _to_json(v) for k, v in p.skus.items()},
        "stores": {k: _to_json(v) for k, v in p.stores.items()},
        "tracked_days": {
            name: {day.isoformat(): count for day, count in days.items()}
            for name, days in p.tracked_days.items()
        },
        "open_hours": p.open_hours,
        **{name: getattr(p, name) for name in SCORE_FIELDS},
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _profile_row(p: Profile) -> dict[str, Any]:
    """What :meth:`SqlProfiles.save` writes of a profile (``id`` as ``profile_id``)."""
    return {
        "profile_id": p.id,
        "email": p.email,
        "phone": p.phone,
        "orders_count": p.orders_count,
        "revenue_total": p.revenue_total,
        "first_order_at": p.first_order_at,
        "last_order_at": p.last_order_at,
        "refunds_count": p.refunds_count,
        "refunds_total": p.refunds_total,
        "traits": p.traits,
        "consents": p.consents,
        "tracked": {name: _to_json(tally) for name, tally in p.tracked.items()},
        "engagement": {channel: _to_json(stats) for channel, stats in p.engagement.items()},
        "suppressions": p.suppressions,
        "next_timer_at": p.next_timer_at,
        "evaluated_at": p.evaluated_at,
        "merged_into": p.merged_into,
        **_behaviour_row(p),
    }


_Fact = TypeVar("_Fact", Tally, Engagement, Purchases)


_FIELDS: dict[type, tuple[str, ...]] = {
    kind: tuple(f.name for f in fields(kind)) for kind in (Tally, Engagement, Purchases)
}
"""Each profile fact's fields (flat: counts and moments), read once."""


def _to_json(fact: Tally | Engagement | Purchases) -> dict[str, Any]:
    """A profile fact as a JSON object: moments (the ``*_at`` fields) as UTC ISO 8601."""
    found: dict[str, Any] = {}
    for name in _FIELDS[type(fact)]:
        value = getattr(fact, name)
        found[name] = value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value
    return found


def _from_json(kind: type[_Fact], raw: dict[str, Any]) -> _Fact:
    known = _FIELDS[kind]
    values: dict[str, Any] = {
        name: datetime.fromisoformat(value) if name.endswith("_at") and value else value
        for name, value in raw.items()
        if name in known
    }
    return kind(**values)


Pair = tuple[str, str]


def _last_survivors(merges: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Each profile absorbed by ``merges`` (in order) to the survivor it ends in: a
    survivor absorbed by a later merge passes on what it absorbed."""
    into = dict(merges)

    def last(profile_id: str) -> str:
        while profile_id in into:
            profile_id = into[profile_id]
        return profile_id

    return {absorbed: last(absorbed) for absorbed in into}


async def _rows_by(
    conn: AsyncConnection, key: Any, keys: Collection[str], *, lock: bool
) -> list[Any]:
    """The rows of ``key``'s table whose ``key`` is one of ``keys``, in key order, locked
    for update with ``lock``: one lock order for every writer, so no deadlocks."""
    found: list[Any] = []
    ordered = sorted(keys)
    for start in range(0, len(ordered), _CHUNK):
        stmt = select(key.table).where(key.in_(ordered[start : start + _CHUNK])).order_by(key)
        if lock:
            stmt = stmt.with_for_update()
        found.extend(await conn.execute(stmt))
    return found


class SqlProfiles(_Repository):
    async def resolve(
        self, identifier_sets: Sequence[Mapping[str, str]], at: datetime
    ) -> Resolution:
        owners = await self._owners({pair for ids in identifier_sets for pair in ids.items()})
        merged_into: dict[str, str] = {}

        def current(profile_id: str) -> str:
            while profile_id in merged_into:
                profile_id = merged_into[profile_id]
            return profile_id

        assigned: list[str] = []
        created: list[str] = []
        links: dict[Pair, str] = {}
        merges: list[tuple[str, str]] = []
        for ids in identifier_sets:
            pairs = list(ids.items())  # strongest first
            named = list(dict.fromkeys(current(owners[p]) for p in pairs if p in owners))
            if named:
                profile_id = named[0]
            else:
                # An unknown profile id (a link to a buyer since removed) becomes the new one's.
                profile_id = ids.get("profile_id") or new_profile_id(pairs[0], at)
                created.append(profile_id)
                # Every profile is known by its own id: an unsubscribe link names a buyer so.
                owners[("profile_id", profile_id)] = profile_id
                links[("profile_id", profile_id)] = profile_id
            for other in named[1:]:
                merged_into[other] = profile_id
                merges.append((other, profile_id))
            for pair in pairs:
                if pair not in owners:
                    owners[pair] = links[pair] = profile_id
            assigned.append(profile_id)
        if created:
            # Two writers may name the same new buyer at the same instant: one row.
            await self.conn.execute(
                self.insert(t.profiles).on_conflict_do_nothing(index_elements=["id"]),
                [{"id": p, "created_at": at, "updated_at": at} for p in created],
            )
        if links:
            await self.conn.execute(
                self.insert(t.identifiers).on_conflict_do_nothing(index_elements=["kind", "value"]),
                [{"kind": k, "value": v, "profile_id": p} for (k, v), p in links.items()],
            )
            assigned = await self._follow_winners(links, set(created), assigned)
        involved = set(assigned) | {p for pair in merges for p in pair}
        loaded = await self.get_many(involved, lock=True)
        return Resolution([loaded[p] for p in assigned], merges, loaded)

    async def merge(self, absorbed: str, survivor: str) -> None:
        await self.merge_many([(absorbed, survivor)])

    async def merge_many(self, merges: Sequence[tuple[str, str]]) -> None:
        """One executemany a table, each absorbed profile's rows moved straight to the
        survivor its merges end in, and one delete of their memberships."""
        into = _last_survivors(merges)
        if not into:
            return
        moves = [
            {"absorbed": absorbed, "survivor": survivor} for absorbed, survivor in into.items()
        ]
        for table in (t.identifiers, t.messages, t.scheduled_sends, t.placed_orders):
            await self.conn.execute(
                update(table)
                .where(table.c.profile_id == bindparam("absorbed"))
                .values(profile_id=bindparam("survivor")),
                moves,
            )
        absorbed = sorted(into)
        m = t.memberships
        for start in range(0, len(absorbed), _CHUNK):
            await self.conn.execute(
                delete(m).where(m.c.profile_id.in_(absorbed[start : start + _CHUNK]))
            )

    async def current(self, profile_id: str) -> Profile | None:
        return (await self.current_many([profile_id])).get(profile_id)

    async def current_many(
        self, profile_ids: Collection[str], *, lock: bool = False
    ) -> dict[str, Profile]:
        heads = {p: p for p in profile_ids}  # each id named, to where its merges lead so far
        for _ in range(32):  # a chain of merges is short; a cycle would be a bug
            merged_into = await self._merged_into(set(heads.values()))
            heads = {named: head for named, head in heads.items() if head in merged_into}
            ahead = {n: s for n, h in heads.items() if (s := merged_into[h]) is not None}
            if not ahead:
                found = await self.get_many(set(heads.values()), lock=lock)
                return {named: found[head] for named, head in heads.items() if head in found}
            heads.update(ahead)
        raise RuntimeError(f"merge chain from {sorted(heads)[0]} does not end")

    async def _merged_into(self, profile_ids: set[str]) -> dict[str, str | None]:
        """For each of ``profile_ids`` that exists, the profile it was merged into, if any."""
        found: dict[str, str | None] = {}
        ordered = sorted(profile_ids)
        for start in range(0, len(ordered), _CHUNK):
            rows = await self.conn.execute(
                select(t.profiles.c.id, t.profiles.c.merged_into).where(
                    t.profiles.c.id.in_(ordered[start : start + _CHUNK])
                )
            )
            found.update({row.id: row.merged_into for row in rows})
        return found

    async def _follow_winners(
        self, links: Mapping[Pair, str], created: set[str], assigned: list[str]
    ) -> list[str]:
        """A concurrent writer may have claimed an identifier first: follow its profile."""
        now_owned = await self._owners(set(links))
        moved = {
            mine: now_owned[pair]
            for pair, mine in links.items()
            if now_owned.get(pair, mine) != mine and mine in created
        }
        for orphan, winner in moved.items():
            await self.conn.execute(
                update(t.identifiers)
                .where(t.identifiers.c.profile_id == orphan)
                .values(profile_id=winner)
            )
            await self.conn.execute(delete(t.profiles).where(t.profiles.c.id == orphan))
        return [moved.get(p, p) for p in assigned]

    async def _owners(self, pairs: set[Pair]) -> dict[Pair, str]:
        owners: dict[Pair, str] = {}
        ordered = sorted(pairs)
        for start in range(0, len(ordered), _CHUNK):
            rows = await self.conn.execute(
                select(
                    t.identifiers.c.kind, t.identifiers.c.value, t.identifiers.c.profile_id
                ).where(
                    tuple_(t.identifiers.c.kind, t.identifiers.c.value).in_(
                        ordered[start : start + _CHUNK]
                    )
                )
            )
            owners.update({(r.kind, r.value): r.profile_id for r in rows})
        return owners

    async def get(self, profile_id: str) -> Profile | None:
        return (await self.get_many({profile_id})).get(profile_id)

    async def get_many(
        self, profile_ids: Collection[str], *, lock: bool = False
    ) -> dict[str, Profile]:
        rows = await _rows_by(self.conn, t.profiles.c.id, profile_ids, lock=lock)
        return {row.id: _profile(row) for row in rows}

    async def find(self, kind: str, value: str) -> Profile | None:
        return (await self.find_many([(kind, value)])).get((kind, value))

    async def find_many(self, identifiers: Collection[Pair]) -> dict[Pair, Profile]:
        owners = await self._owners(set(identifiers))
        profiles = await self.get_many(set(owners.values()))
        return {pair: profiles[owner] for pair, owner in owners.items() if owner in profiles}

    async def open_hours_sample(self, channel: str, *, start: str, limit: int) -> list[int]:
        live = t.profiles.c.merged_into.is_(None)
        query = select(t.profiles.c.open_hours).order_by(t.profiles.c.id)
        rows = list(
            await self.conn.execute(query.where(live, t.profiles.c.id >= start).limit(limit))
        )
        if len(rows) < limit:  # past the last id: go on from the first
            rows += await self.conn.execute(
                query.where(live, t.profiles.c.id < start).limit(limit - len(rows))
            )
        total = [0] * 24
        for (by_channel,) in rows:
            hours = (by_channel or {}).get(channel) or ()
            for hour, opens in enumerate(hours[:24]):
                total[hour] += int(opens)
        return total

    async def identifiers(self, profile_ids: Collection[str], kind: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {p: [] for p in profile_ids}
        ordered = sorted(profile_ids)
        for start in range(0, len(ordered), _CHUNK):
            rows = await self.conn.execute(
                select(t.identifiers.c.profile_id, t.identifiers.c.value)
                .where(
                    t.identifiers.c.kind == kind,
                    t.identifiers.c.profile_id.in_(ordered[start : start + _CHUNK]),
                )
                .order_by(t.identifiers.c.value)
            )
            for row in rows:
                found[row.profile_id].append(row.value)
        return found

    async def save(self, profiles: Collection[Profile], at: datetime) -> None:
        if not profiles:
            return
        await self.conn.execute(
            update(t.profiles).where(t.profiles.c.id == bindparam("profile_id")),
            [{**_profile_row(p), "updated_at": at} for p in profiles],
        )


class SqlMemberships(_Repository):
    async def of(self, profile_ids: Collection[str]) -> dict[str, dict[str, datetime]]:
        found: dict[str, dict[str, datetime]] = {p: {} for p in profile_ids}
        ordered = sorted(profile_ids)
        for start in range(0, len(ordered), _CHUNK):
            rows = await self.conn.execute(
                select(t.memberships).where(
                    t.memberships.c.profile_id.in_(ordered[start : start + _CHUNK])
                )
            )
            for row in rows:
                found[row.profile_id][row.segment] = row.entered_at
        return found

    async def apply(self, changes: Sequence[MembershipChange]) -> None:
        """Write the stays ``changes`` leave, netted per buyer and segment: one delete and
        one insert, whatever the mix of entries and exits (an exit and a later re-entry
        leave the new stay; an entry and a later exit, none). On PostgreSQL each takes
        the batch as arrays (``unnest``); on SQLite each is an executemany."""
        last = {(c.profile_id, c.segment): c for c in changes}
        if not last:
            return
        touched = sorted(last)
        stays = [c for key in touched if (c := last[key]).kind == "entered"]
        if self.dialect.arrays:
            await self.conn.execute(
                _PG_LEAVE,
                {"profile_ids": [p for p, _ in touched], "segments": [s for _, s in touched]},
            )
            if stays:
                await self.conn.execute(
                    _PG_STAY,
                    {
                        "profile_ids": [c.profile_id for c in stays],
                        "segments": [c.segment for c in stays],
                        "entered_ats": [c.at for c in stays],
                    },
                )
            return
        await self.conn.execute(_LEAVE, [{"p": p, "s": s} for p, s in touched])
        if stays:
            await self.conn.execute(
                t.memberships.insert(),
                [
                    {"profile_id": c.profile_id, "segment": c.segment, "entered_at": c.at}
                    for c in stays
                ],
            )

    async def members(
        self, segment: str, *, entered_by: datetime, after: str | None, limit: int
    ) -> list[str]:
        m = t.memberships
        stmt = select(m.c.profile_id).where(m.c.segment == segment, m.c.entered_at <= entered_by)
        if after is not None:
            stmt = stmt.where(m.c.profile_id > after)
        rows = await self.conn.execute(stmt.order_by(m.c.profile_id).limit(limit))
        return [str(r) for r in rows.scalars()]


def _batch_of(name: str, **columns: Any) -> Any:
    """A batch given as one array per column (PostgreSQL's ``unnest``), a table ``name``
    of those columns; each array is the parameter of its column's name plus ``s``."""
    arrays = [bindparam(f"{c}s", type_=postgresql.ARRAY(kind)) for c, kind in columns.items()]
    return func.unnest(*arrays).table_valued(*columns).render_derived(name=name)


def _membership_writes() -> tuple[Any, Any, Any]:
    """The stays of a batch's (buyer, segment) pairs ended, and a batch's new stays, on
    PostgreSQL (each one statement of arrays); one stay ended, on SQLite (executemany)."""
    m = t.memberships
    gone = _batch_of("gone", profile_id=String, segment=String)
    leave = delete(m).where(m.c.profile_id == gone.c.profile_id, m.c.segment == gone.c.segment)
    new = _batch_of("new", profile_id=String, segment=String, entered_at=DateTime(timezone=True))
    stay = m.insert().from_select(
        ["profile_id", "segment", "entered_at"],
        select(new.c.profile_id, new.c.segment, new.c.entered_at),
    )
    one_leaves = delete(m).where(m.c.profile_id == bindparam("p"), m.c.segment == bindparam("s"))
    return leave, stay, one_leaves


_PG_LEAVE, _PG_STAY, _LEAVE = _membership_writes()


class SqlTimers(_Repository):
    async def due(self, now: datetime, limit: int) -> list[str]:
        stmt = (
            select(t.profiles.c.id)
            .where(t.profiles.c.next_timer_at <= now)
            .order_by(t.profiles.c.next_timer_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.conn.scalars(stmt)).all())


class SqlOutbox(_Repository):
    async def add(self, records: Sequence[OutgoingRecord], at: datetime) -> None:
        if records:
            await self.conn.execute(
                t.outbox.insert(),
                [
                    {"topic": r.topic, "key": r.key, "value": r.value, "created_at": at}
                    for r in records
                ],
            )

    async def claim(self, limit: int) -> list[OutboxRecord]:
        if self.dialect.advisory_locks:
            # One relay at a time keeps each buyer's changes in order across replicas.
            got = await self.conn.scalar(select(func.pg_try_advisory_xact_lock(_OUTBOX_RELAY_LOCK)))
            if not got:
                return []
        rows = await self.conn.execute(
            select(t.outbox.c.id, t.outbox.c.topic, t.outbox.c.key, t.outbox.c.value)
            .where(t.outbox.c.published_at.is_(None))
            .order_by(t.outbox.c.id)
            .limit(limit)
        )
        return [OutboxRecord(r.id, r.topic, r.key, r.value) for r in rows]

    async def mark_published(self, ids: Sequence[int], at: datetime) -> None:
        if ids:
            await self.conn.execute(
                update(t.outbox).where(t.outbox.c.id.in_(ids)).values(published_at=at)
            )


class SqlMessages(_Repository):
    async def begin(self, record: MessageRecord) -> bool:
        stmt = (
            self.insert(t.messages)
            .values(_message_row(record))
            .on_conflict_do_nothing(index_elements=["key"])
        )
        return bool((await self.conn.execute(stmt)).rowcount)

    async def write(self, messages: Sequence[tuple[MessageRecord, MessageOutcome | None]]) -> None:
        rows = [
            {**_message_row(record), "finished_at": None}
            | (_outcome_row(outcome) if outcome is not None else {})
            for record, outcome in messages
        ]
        stmt = self.insert(t.messages).on_conflict_do_nothing(index_elements=["key"])
        for start in range(0, len(rows), _CHUNK):
            await self.conn.execute(stmt, rows[start : start + _CHUNK])

    async def finish(self, key: str, outcome: MessageOutcome) -> None:
        await self.finish_many([(key, outcome)])

    async def finish_many(self, outcomes: Sequence[tuple[str, MessageOutcome]]) -> None:
        # One statement per set of columns set (most outcomes of a batch set the same).
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for key, outcome in outcomes:
            row = _outcome_row(outcome)
            given = {f"new_{name}": value for name, value in row.items()}
            by_columns.setdefault(tuple(sorted(row)), []).append({**given, "message_key": key})
        for columns, rows in by_columns.items():
            stmt = (
                update(t.messages)
                .where(t.messages.c.key == bindparam("message_key"))
                .values({name: bindparam(f"new_{name}") for name in columns})
            )
            await self.conn.execute(stmt, rows)

    async def recent(
        self, profile_ids: Collection[str], since: datetime, *, at_least: int = 0
    ) -> dict[str, list[SentMessage]]:
        m = t.messages
        found: dict[str, list[SentMessage]] = {p: [] for p in profile_ids}
        ordered = sorted(profile_ids)
        for start in range(0, len(ordered), _CHUNK):
            latest_first = (
                func.row_number()
                .over(partition_by=m.c.profile_id, order_by=(m.c.sent_at.desc(), m.c.key.desc()))
                .label("latest_first")
            )
            sent = (
                select(m.c.key, m.c.campaign, m.c.profile_id, m.c.channel, m.c.priority)
                .add_columns(m.c.sent_at, latest_first)
                .where(
                    m.c.profile_id.in_(ordered[start : start + _CHUNK]),
                    m.c.sent_at.is_not(None),
                    m.c.status.not_in(NOT_SENT),
                )
                .subquery()
            )
            rows = await self.conn.execute(
                select(sent)
                .where((sent.c.sent_at >= since) | (sent.c.latest_first <= at_least))
                .order_by(sent.c.profile_id, sent.c.sent_at, sent.c.key)
            )
            for r in rows:
                found[r.profile_id].append(
                    SentMessage(r.campaign, r.priority, r.sent_at, _channel(r.channel), r.key)
                )
        return found

    async def get(self, key: str) -> MessageRecord | None:
        return (await self.get_many([key])).get(key)

    async def get_many(self, keys: Collection[str]) -> dict[str, MessageRecord]:
        found: dict[str, MessageRecord] = {}
        ordered = sorted(keys)
        for start in range(0, len(ordered), _CHUNK):
            rows = await self.conn.execute(
                select(t.messages).where(t.messages.c.key.in_(ordered[start : start + _CHUNK]))
            )
            found.update({row.key: _message(row) for row in rows})
        return found

    async def responses(self, keys: Collection[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        r = t.message_responses
        ordered = sorted(keys)
        for start in range(0, len(ordered), _CHUNK):
            rows = await self.conn.execute(
                select(r.c.message_key, r.c.response).where(
                    r.c.message_key.in_(ordered[start : start + _CHUNK])
                )
            )
            for key, response in rows:
                found.setdefault(key, set()).add(response)
        return found

    async def all(self) -> list[MessageRecord]:
        rows = await self.conn.execute(select(t.messages).order_by(t.messages.c.created_at))
        return [_message(r) for r in rows]


def _channel(name: str) -> Channel:
    return cast(Channel, name)


def _message_row(record: MessageRecord) -> dict[str, Any]:
    """The message row as :meth:`SqlMessages.begin` writes it: each field in the column of
    its name (as :func:`~shared.adapters.store.rows.from_row` reads it), the trail as JSON."""
    row = {f.name: getattr(record, f.name) for f in fields(MessageRecord)}
    return {**row, "decision": _decision_json(record.decision)}


def _outcome_row(outcome: MessageOutcome) -> dict[str, Any]:
    """The columns :meth:`SqlMessages.finish` sets for ``outcome``."""
    changes = outcome.changes()
    if "decision" in changes:
        changes["decision"] = _decision_json(changes["decision"])
    return {**changes, "finished_at": outcome.at}


def _decision_json(trail: Sequence[Reason]) -> list[dict[str, str]] | None:
    return [{"step": r.step, "code": r.code, "detail": r.detail} for r in trail] or None


def _message(row: Any) -> MessageRecord:
    return from_row(
        MessageRecord,
        row,
        holdout=bool(row.holdout),
        decision=tuple(Reason(**step) for step in row.decision or ()),
    )


class SqlOrders(_Repository):
    async def of(self, order_ids: Collection[str]) -> dict[str, OrderBalance]:
        rows = await _rows_by(self.conn, t.orders.c.order_id, order_ids, lock=True)
        return {
            row.order_id: OrderBalance(
                row.order_id, row.profile_id, row.bought, row.refunded, row.purchases
            )
            for row in rows
        }

    async def save(self, balances: Collection[OrderBalance], at: datetime) -> None:
        rows = [
            {
                "order_id": b.order_id,
                "profile_id": b.profile_id,
                "bought": b.bought,
                "refunded": b.refunded,
                "purchases": b.purchases,
                "updated_at": at,
            }
            for b in balances
        ]
        for start in range(0, len(rows), _CHUNK):
            stmt = self.insert(t.orders).values(rows[start : start + _CHUNK])
            columns = ("profile_id", "bought", "refunded", "purchases", "updated_at")
            await self.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["order_id"], set_={c: stmt.excluded[c] for c in columns}
                )
            )


class SqlPlacedOrders(_Repository):
    async def record(self, orders: Sequence[PlacedOrder]) -> None:
        """One executemany of the batch's orders, an order id kept already skipped."""
        rows = {
            o.order_id: {
                "order_id": o.order_id,
                "profile_id": o.profile_id,
                "placed_at": o.placed_at,
                "total": o.total,
                "currency": o.currency,
            }
            for o in orders
        }
        if rows:
            await self.conn.execute(
                self.insert(t.placed_orders).on_conflict_do_nothing(index_elements=["order_id"]),
                list(rows.values()),
            )


class SqlUnitOfWork:
    def __init__(self, conn: AsyncConnection, dialect: Dialect) -> None:
        self.conn = conn
        self.inbox = SqlInbox(conn, dialect)
        self.profiles = SqlProfiles(conn, dialect)
        self.memberships = SqlMemberships(conn, dialect)
        self.timers = SqlTimers(conn, dialect)
        self.outbox = SqlOutbox(conn, dialect)
        self.messages = SqlMessages(conn, dialect)
        self.schedule = SqlSchedule(conn, dialect)
        self.positions = SqlPositions(conn, dialect)
        self.orders = SqlOrders(conn, dialect)
        self.placed_orders = SqlPlacedOrders(conn, dialect)
        self.offer_codes = SqlOfferCodes(conn, dialect)

    async def commit(self) -> None:
        await self.conn.commit()
