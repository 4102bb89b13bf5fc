"""A batch of segment changes is decided in a fixed, small number of statements, on the
embedded SQLite and on PostgreSQL: the dispatcher reads what its decisions need for the
whole batch at once and writes the message and scheduled-send rows one statement each,
whatever the batch's size (statements counted, never timed)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from services.dispatcher.outgoing import Outgoing
from services.tools.embedded import Pipeline
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.sql import SqlStore
from shared.codec import encode_change
from shared.domain.campaigns import Campaign, parse_campaign
from shared.domain.segments import MembershipChange, occurrence_id
from shared.ports.bus import Record
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


async def _batch(pipeline: Pipeline, prefix: str, size: int) -> list[MembershipChange]:
    """``size`` changes: entries of buyers of the segment, one of which comes twice, one of a
    buyer unknown to the store and one of a buyer who left the segment since."""
    entries = await _buyers(pipeline, [f"{prefix}-{n}" for n in range(size - 3)])
    now = pipeline.runtime.clock.now()
    unknown = MembershipChange("entered", SEGMENT, f"{prefix}-unknown", now, f"{prefix}-o1")
    (gone,) = await _buyers(pipeline, [f"{prefix}-gone"])
    async with pipeline.runtime.store.unit_of_work() as uow:
        await uow.memberships.apply([MembershipChange("exited", SEGMENT, gone.profile_id, now, "")])
        await uow.commit()
    return [*entries, entries[0], unknown, gone]


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


async def test_a_batch_of_changes_is_decided_in_a_fixed_number_of_statements(
    settings: Settings, clock: SimulatedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed: list[Outgoing] = []

    async def hand_over(outgoing: Sequence[Outgoing]) -> None:
        handed.extend(outgoing)

    async for pipeline in pipeline_with(settings, clock, tmp_path / "mail", CAMPAIGNS):
        triggers = pipeline.dispatcher.triggers
        monkeypatch.setattr(triggers.delivery, "hand_over", hand_over)
        store = pipeline.runtime.store
        assert isinstance(store, SqlStore)
        await triggers.handle_changes(_records(await _batch(pipeline, "warm", 5)))
        counts: dict[int, tuple[int, int]] = {}
        for size in (10, 100):
            changes = await _batch(pipeline, f"b{size}", size)
            clock.advance(timedelta(seconds=1))
            with _counted(store) as (sent, committed):
                await triggers.handle_changes(_records(changes))
            counts[size] = (len(sent), len(committed))
        async with store.unit_of_work() as uow:
            statuses = {m.status for m in await uow.messages.all() if m.profile_id.startswith("b")}

    assert counts[10] == counts[100], counts
    statements, transactions = counts[100]
    assert statements <= MOST_STATEMENTS
    assert transactions == 1
    assert {"sending", "scheduled", "holdout", "no_address", "unsubscribed"} <= statuses
    assert handed, "some messages go out"
