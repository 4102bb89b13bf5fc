"""A batch of segment changes, or of events, is decided in a fixed, small number of
statements and one transaction, on the embedded SQLite and on PostgreSQL: the dispatcher
reads what its decisions need for the whole batch at once and writes the message and
scheduled-send rows one statement each, whatever the batch's size; the outcomes of sends
that end together are recorded together (statements and transactions counted, never
timed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import event

from services.bootstrap import bootstrap
from services.dispatcher.outgoing import Outgoing
from services.dispatcher.triggers import Triggers
from services.tools.embedded import Pipeline
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.sql import SqlStore
from shared.codec import encode_change
from shared.domain.campaigns import Campaign, parse_campaign
from shared.domain.events import read_published_event
from shared.domain.segments import MembershipChange, occurrence_id
from shared.ports.bus import Record
from shared.ports.providers import EmailMessage, SendReceipt
from shared.settings import Settings
from tests.support.campaign_pipeline import STORES, on_store, pipeline_with

SEGMENT = "no-order-30d"
MOST_STATEMENTS = 12
"""Per batch: the catalogue's look at the stored definitions, the buyers followed through
merges and locked, their memberships, the batch's message keys, their recent messages and
waiting sends, the base's open hours (once an hour), the message rows and the
scheduled-send rows."""


def _campaign(key: str, **fields: Any) -> Campaign:
    return parse_campaign(
        {
            "key": key,
            "name": key,
            "status": "active",
            "trigger": {"segment": SEGMENT, "on": "entered"},
            "channels": ["email"],
            "templates": {"email": "win-back-email"},
            **fields,
        }
    )


CAMPAIGNS = [
    _campaign("win-back-now", holdout=0.3, priority=2),
    _campaign("win-back-later", delay="1h", priority=1),
]

MOST_FOR_EVENTS = 14
"""As for changes, but the buyers are found by their identifiers (not their memberships),
and the events the segmenter applied are looked up first."""
CART_CAMPAIGNS = [
    parse_campaign(
        {
            "key": f"cart-{n}",
            "name": f"cart-{n}",
            "status": "active",
            "trigger": {"event": "track", "name": "cart_updated"},
            "channels": ["email"],
            "templates": {"email": "abandoned-cart-email"},
            **fields,
        }
    )
    for n, fields in enumerate([{"holdout": 0.3}, {"delay": "2h"}])
]


@pytest.fixture(params=STORES)
def settings(request: pytest.FixtureRequest, embedded_settings: Settings) -> Settings:
    return on_store(request, embedded_settings)


async def _buyers(pipeline: Pipeline, names: Sequence[str]) -> list[MembershipChange]:
    """Buyers in the segment, one in five with no address, one in five unsubscribed, one
    in five in their quiet hours (New York, before dawn); their entries."""
    now = pipeline.runtime.clock.now()
    async with pipeline.runtime.store.unit_of_work() as uow:
        resolved = await uow.profiles.resolve([{"profile_id": n} for n in names], now)
        for n, profile in enumerate(resolved.profiles):
            profile.email = None if n % 5 == 0 else f"{profile.id}@example.com"
            if n % 5 == 1:
                profile.consents = {"email": False}
            if n % 5 == 2:
                profile.traits = {"timezone": "America/New_York"}
        await uow.profiles.save(resolved.profiles, now)
        entries = [
            MembershipChange("entered", SEGMENT, p.id, now, occurrence_id(SEGMENT, p.id, now))
            for p in resolved.profiles
        ]
        await uow.memberships.apply(entries)
        await uow.commit()
    return entries


def _records(changes: Sequence[MembershipChange]) -> list[Record]:
    return [
        Record("segment-changes", 0, n, c.profile_id.encode(), encode_change(c))
        for n, c in enumerate(changes)
    ]


async def _changes(pipeline: Pipeline, prefix: str, size: int) -> list[Record]:
    """``size`` changes: entries of buyers of the segment, one of which comes twice, one of a
    buyer unknown to the store and one of a buyer who left the segment since."""
    entries = await _buyers(pipeline, [f"{prefix}-{n}" for n in range(size - 3)])
    now = pipeline.runtime.clock.now()
    unknown = MembershipChange("entered", SEGMENT, f"{prefix}-unknown", now, f"{prefix}-o1")
    (gone,) = await _buyers(pipeline, [f"{prefix}-gone"])
    async with pipeline.runtime.store.unit_of_work() as uow:
        await uow.memberships.apply([MembershipChange("exited", SEGMENT, gone.profile_id, now, "")])
        await uow.commit()
    return _records([*entries, entries[0], unknown, gone])


@contextmanager
def _counted(store: SqlStore) -> Iterator[tuple[list[str], list[str]]]:
    """The statements sent on ``store``'s engine meanwhile (an executemany counts once),
    and the transactions committed."""
    sent: list[str] = []
    committed: list[str] = []

    def statement(*args: Any) -> None:
        sent.append(args[2])

    def commit(*_args: Any) -> None:
        committed.append("commit")

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield sent, committed
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


@dataclass
class _Seen:
    counts: dict[int, tuple[int, int]]
    """Per batch size, the statements sent and the transactions committed."""
    statuses: set[str]
    handed: list[Outgoing]


async def _decided(
    pipeline: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    batch: Callable[[Pipeline, str, int], Awaitable[list[Record]]],
    handler: Callable[[Triggers], Callable[[Sequence[Record]], Awaitable[None]]],
) -> _Seen:
    """A batch of 10 records and one of 100 (after one of 5 that reads the campaigns and
    the base's open hours) handled by the dispatcher's triggers, counted; what went out
    handed to a recorder instead of the providers."""
    handed: list[Outgoing] = []

    async def hand_over(outgoing: Sequence[Outgoing]) -> None:
        handed.extend(outgoing)

    triggers = pipeline.dispatcher.triggers
    monkeypatch.setattr(triggers.delivery, "hand_over", hand_over)
    store, clock = pipeline.runtime.store, pipeline.runtime.clock
    assert isinstance(store, SqlStore)
    assert isinstance(clock, SimulatedClock)
    await handler(triggers)(await batch(pipeline, "warm", 5))
    warmed = clock.now()
    counts: dict[int, tuple[int, int]] = {}
    for size in (10, 100):
        records = await batch(pipeline, f"b{size}", size)
        clock.advance(timedelta(seconds=1))
        with _counted(store) as (sent, committed):
            await handler(triggers)(records)
        counts[size] = (len(sent), len(committed))
    async with store.unit_of_work() as uow:
        statuses = {m.status for m in await uow.messages.all() if m.created_at > warmed}
    return _Seen(counts, statuses, handed)


async def _carts(pipeline: Pipeline, prefix: str, size: int) -> list[Record]:
    """``size`` carts updated, applied by the segmenter (as far as the dispatcher can
    tell): buyers with an email address, one in five unsubscribed, one with two carts."""
    now = pipeline.runtime.clock.now()
    raw = [
        orjson.dumps(
            {
                "event_id": f"{prefix}-cart-{n}",
                "type": "track",
                "occurred_at": now.isoformat(),
                "customer": {"id": f"{prefix}-{min(n, size - 2)}", "email": f"{prefix}{n}@a.ru"},
                "data": {"name": "cart_updated", "properties": {"total": 100 + n}},
            }
        )
        for n in range(size)
    ]
    events = [read_published_event(r) for r in raw]
    async with pipeline.runtime.store.unit_of_work() as uow:
        named = [dict(e.customer.identifiers()) for e in events]
        resolved = await uow.profiles.resolve(named, now)
        for n, profile in enumerate(resolved.profiles):
            profile.email = f"{profile.id}@example.com"
            if n % 5 == 1:
                profile.consents = {"email": False}
        await uow.profiles.save(resolved.loaded.values(), now)
        await uow.inbox.claim([e.dedupe_id for e in events], now)
        await uow.commit()
    return [Record("events", 0, n, None, r) for n, r in enumerate(raw)]


@dataclass(frozen=True)
class _Trigger:
    campaigns: list[Campaign]
    batch: Callable[[Pipeline, str, int], Awaitable[list[Record]]]
    handler: Callable[[Triggers], Callable[[Sequence[Record]], Awaitable[None]]]
    most_statements: int
    statuses: set[str]
    """Some of the batch's messages end so (the mix of decisions)."""


TRIGGERS = {
    "changes": _Trigger(
        CAMPAIGNS,
        _changes,
        lambda t: t.handle_changes,
        MOST_STATEMENTS,
        {"sending", "scheduled", "holdout", "no_address", "unsubscribed"},
    ),
    "events": _Trigger(
        CART_CAMPAIGNS,
        _carts,
        lambda t: t.handle_events,
        MOST_FOR_EVENTS,
        {"sending", "scheduled", "holdout", "unsubscribed"},
    ),
}


@pytest.mark.parametrize("kind", list(TRIGGERS))
async def test_a_batch_of_changes_or_events_is_decided_in_a_fixed_number_of_statements(
    kind: str,
    settings: Settings,
    clock: SimulatedClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trigger = TRIGGERS[kind]
    async for pipeline in pipeline_with(settings, clock, tmp_path / "mail", trigger.campaigns):
        seen = await _decided(pipeline, monkeypatch, trigger.batch, trigger.handler)

    assert seen.counts[10] == seen.counts[100], seen.counts
    statements, transactions = seen.counts[100]
    assert statements <= trigger.most_statements
    assert transactions == 1
    assert trigger.statuses <= seen.statuses
    assert seen.handed, "some messages go out"


class _AtOnce:
    """An email provider that takes every message at once (no wait)."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> SendReceipt:
        self.sent.append(message)
        return SendReceipt(f"<{message.idempotency_key}@fake>")


async def test_the_outcomes_of_sends_ending_together_are_recorded_together(
    settings: Settings, clock: SimulatedClock
) -> None:
    provider = _AtOnce()
    runtime = await bootstrap(settings, clock=clock, bus=MemoryBus(), email=provider)
    runtime.campaigns = CAMPAIGNS
    async with Pipeline(runtime) as pipeline:
        records = await _changes(pipeline, "b", 100)
        store = pipeline.runtime.store
        assert isinstance(store, SqlStore)
        with _counted(store) as (_sent, committed):
            await pipeline.dispatcher.triggers.handle_changes(records)
            await pipeline.dispatcher.delivery.drain()
        async with store.unit_of_work() as uow:
            messages = await uow.messages.all()
    await runtime.close()

    sent = [m for m in messages if m.status == "sent"]
    assert len(sent) == len(provider.sent) > 16
    assert not [m for m in messages if m.status == "sending"]
    waves = -(-len(sent) // pipeline.dispatcher.delivery.concurrent_sends)
    assert len(committed) <= 1 + 2 * waves  # the decisions; per wave of sends, one or two
