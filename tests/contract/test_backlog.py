"""The backlog port's contract: what a stopping process still has to apply.

Only the embedded pipeline has a backlog of its own (its bus and its outbox live in the
process's database); on Kafka the work left is the broker's and ``Runtime.backlog`` is
``None``. So the contract runs against the one adapter, on a real migrated SQLite file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.adapters.backlog import EmbeddedBacklog
from shared.adapters.bus.sqlite import SqliteBus
from shared.adapters.store.engine import open_store
from shared.adapters.store.migrate import upgrade_async
from shared.adapters.store.sql import SqlStore
from shared.ports.backlog import Backlog
from shared.ports.store import OutgoingRecord
from tests.contract.test_bus import take

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TOPIC = "t.events"
GROUP = "g.segmenter"


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[tuple[SqliteBus, SqlStore]]:
    path = tmp_path / "nudge.db"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade_async(url)
    bus, store = SqliteBus(path, wake_interval=0.02), open_store(url)
    await bus.ensure_topics([TOPIC])
    try:
        yield bus, store
    finally:
        await bus.close()
        await store.close()


@pytest.fixture
def backlog(parts: tuple[SqliteBus, SqlStore]) -> Backlog:
    bus, store = parts
    return EmbeddedBacklog(bus, store.engine, [(GROUP, [TOPIC])])


async def test_nothing_accepted_is_nothing_outstanding(backlog: Backlog) -> None:
    assert await backlog.outstanding() == 0


async def test_records_count_until_their_group_commits_them(
    parts: tuple[SqliteBus, SqlStore], backlog: Backlog
) -> None:
    bus, _ = parts
    await bus.publisher().publish(TOPIC, [(b"k", b"a"), (b"k", b"b"), (b"k", b"c")])
    assert await backlog.outstanding() == 3
    consumer = await bus.consumer(GROUP, [TOPIC])
    got = await take(consumer, 3)
    assert await backlog.outstanding() == 3, "polled is not applied: only a commit counts"
    await consumer.commit(got[:2])
    assert await backlog.outstanding() == 1
    await consumer.commit(got)
    await consumer.close()
    assert await backlog.outstanding() == 0


async def test_another_groups_commits_do_not_count(
    parts: tuple[SqliteBus, SqlStore], backlog: Backlog
) -> None:
    bus, _ = parts
    await bus.publisher().publish(TOPIC, [(b"k", b"a")])
    other = await bus.consumer("g.someone-else", [TOPIC])
    await other.commit(await take(other, 1))
    await other.close()
    assert await backlog.outstanding() == 1


async def test_outbox_rows_count_until_published(
    parts: tuple[SqliteBus, SqlStore], backlog: Backlog
) -> None:
    _, store = parts
    async with store.unit_of_work() as uow:
        await uow.outbox.add([OutgoingRecord("t.changes", b"k", b"v") for _ in range(2)], T0)
        await uow.commit()
    assert await backlog.outstanding() == 2
    async with store.unit_of_work() as uow:
        claimed = await uow.outbox.claim(1)
        await uow.outbox.mark_published([r.id for r in claimed], T0)
        await uow.commit()
    assert await backlog.outstanding() == 1
