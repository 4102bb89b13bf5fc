"""A batch's ledger shows each decision what the store would show once the batch's
writes are in: the buyer's recent messages (the caps and sunset) and waiting sends, the
message rows by key. Checked against the store itself, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from services.dispatcher.ledger import Ledger
from shared.adapters.store.engine import open_store
from shared.adapters.store.sql import SqlStore
from shared.domain.decisions import Reason, ScheduledSend
from shared.ports.store import MessageOutcome, MessageRecord, ScheduledRecord
from tests.conftest import T0
from tests.support.campaign_pipeline import STORES

DAY = timedelta(days=1)
BUYERS = ["p1", "p2"]


@pytest.fixture(params=STORES)
def url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else sqlite_url


@pytest.fixture
async def store(url: str) -> AsyncIterator[SqlStore]:
    store = open_store(url)
    yield store
    await store.close()


def _message(
    key: str, *, status: str, sent_at: datetime | None, profile_id: str = "p1"
) -> MessageRecord:
    return MessageRecord(
        key=key,
        campaign=f"campaign-{key}",
        profile_id=profile_id,
        channel="email",
        occurrence_id=f"o-{key}",
        status=status,
        created_at=T0 - 40 * DAY,
        priority=len(key),
        sent_at=sent_at,
    )


def _waiting(key: str, due_at: datetime, profile_id: str = "p1") -> ScheduledRecord:
    send = ScheduledSend(key, f"campaign-{key}", profile_id, f"o-{key}", T0, due_at, "email", 1)
    return ScheduledRecord(send, {"segment": "s"})


async def test_a_decision_sees_the_batch_s_messages_as_the_store_does_after_it(
    store: SqlStore,
) -> None:
    async with store.unit_of_work() as uow:
        for record in (
            _message("long-ago", status="sent", sent_at=T0 - 30 * DAY),
            _message("older", status="sent", sent_at=T0 - 20 * DAY),
            _message("week", status="sent", sent_at=T0 - 3 * DAY),
            _message("failed", status="failed", sent_at=T0 - DAY),
            _message("woken", status="scheduled", sent_at=None),
            _message("theirs", status="sent", sent_at=T0 - DAY, profile_id="p2"),
        ):
            await uow.messages.begin(record)
        await uow.schedule.add([_waiting("woken", T0 - DAY), _waiting("later", T0 + DAY)], T0)
        await uow.commit()
    keys = ["woken", "new-sent", "new-wait", "new-skip", "week"]
    async with store.unit_of_work() as uow:
        ledger = Ledger(uow)
        await ledger.read(BUYERS, keys, since=T0 - 7 * DAY, at_least=2)
        assert ledger.message("new-sent") is None
        for key in ("new-sent", "new-wait", "new-skip"):
            assert ledger.begin(_message(key, status="new", sent_at=None))
        assert not ledger.begin(_message("week", status="new", sent_at=None))
        ledger.finish("new-sent", MessageOutcome("sending", T0, channel="email", sent_at=T0))
        ledger.finish("woken", MessageOutcome("sending", T0, sent_at=T0))
        ledger.finish("new-skip", MessageOutcome("holdout", T0, reason="holdout", holdout=True))
        why = (Reason("quiet_hours", "quiet_hours", "until nine"),)
        moment = T0 + 9 * DAY
        wait = MessageOutcome("scheduled", T0, scheduled_for=moment, decision=why)
        ledger.finish("new-wait", wait)
        ledger.schedule([_waiting("new-wait", moment), _waiting("later", T0 + 2 * DAY)])
        ledger.schedule([_waiting("guard", T0 + DAY, profile_id="p2")])
        seen = {
            (since, at_least): {b: ledger.recent(b, since, at_least=at_least) for b in BUYERS}
            for since, at_least in ((T0 - 7 * DAY, 2), (T0 - DAY, 2), (T0, 0), (T0, 4))
        }
        waiting = {b: ledger.pending(b) for b in BUYERS}
        rows = {key: ledger.message(key) for key in keys}
        await ledger.write(T0)
        stored = {
            (since, at_least): await uow.messages.recent(BUYERS, since, at_least=at_least)
            for since, at_least in seen
        }
        assert seen == stored
        assert waiting == await uow.schedule.pending(BUYERS)
        assert rows == await uow.messages.get_many(keys)
        await uow.commit()
