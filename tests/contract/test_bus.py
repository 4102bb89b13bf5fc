"""One contract for the bus port, run against the in-memory bus, the embedded SQLite bus
and real Kafka; the durable ones (SQLite, Kafka) also keep records and offsets across a
new bus instance."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing, closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from shared.adapters.bus.kafka import KafkaBus
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.bus.sqlite import ConsumedElsewhere, SqliteBus
from shared.adapters.store import schema
from shared.adapters.store.engine import open_store
from shared.adapters.store.migrate import upgrade, upgrade_async
from shared.errors import BusUnavailable, CommitFailed
from shared.ports.bus import Bus, Consumer, Publisher, Record
from tests.support import infra
from tests.support.ports import free_port
from tests.support.waiting import eventually


async def take(consumer: Consumer, count: int, timeout: float = 30.0) -> list[Record]:
    """Poll until ``count`` records have arrived."""
    got: list[Record] = []

    async def enough() -> bool:
        got.extend(await consumer.poll(500, 0.2))
        return len(got) >= count

    await eventually(enough, timeout=timeout, interval=0, what=f"{count} records")
    return got


async def commit_two_of_three(bus: Bus, topic: str) -> tuple[Publisher, str]:
    """Publish a, b, c to ``topic``; a new group takes all three and commits a and b.
    The publisher (still open) and the group."""
    publisher = bus.publisher()
    await publisher.publish(topic, [(b"k", b"a"), (b"k", b"b"), (b"k", b"c")])
    group = infra.unique("g")
    first = await bus.consumer(group, [topic])
    got = await take(first, 3)
    await first.commit(got[:2])
    await first.close()
    return publisher, group


def values(records: Sequence[Record]) -> list[bytes]:
    return [r.value for r in records]


class FailingCommits:
    """A fault for the SQLite bus's connection: its next ``COMMIT`` fails (as a full disk or
    an I/O error makes it), leaving the transaction open."""

    def __init__(self, *, once: bool) -> None:
        self.armed = once

    def wrap(self, conn: sqlite3.Connection) -> Any:
        fault = self

        class Failing:
            def __getattr__(self, name: str) -> Any:
                return getattr(conn, name)

            def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
                if sql == "COMMIT" and fault.armed:
                    fault.armed = False
                    raise sqlite3.OperationalError("disk I/O error")
                return conn.execute(sql, *args)

        return Failing()


class BusContract:
    @pytest.fixture
    def bus(self) -> Bus:
        raise NotImplementedError

    @pytest.fixture
    async def topic(self, bus: Bus) -> str:
        name = infra.unique("contract.")
        await bus.ensure_topics([name])
        return name

    async def test_one_keys_records_arrive_in_order(self, bus: Bus, topic: str) -> None:
        publisher = bus.publisher()
        for n in range(20):
            await publisher.publish(topic, [(b"buyer-1", f"{n}".encode())])
        await publisher.publish(topic, [(b"buyer-2", b"other")])
        consumer = await bus.consumer(infra.unique("g"), [topic])
        got = await take(consumer, 21)
        assert [r.value for r in got if r.key == b"buyer-1"] == [f"{n}".encode() for n in range(20)]
        assert len({r.partition for r in got if r.key == b"buyer-1"}) == 1
        await consumer.close()
        await publisher.close()

    async def test_batches_published_as_one_arrive_each_key_in_order(
        self, bus: Bus, topic: str
    ) -> None:
        other = infra.unique("contract.")
        await bus.ensure_topics([other])
        publisher = bus.publisher()
        first = [(f"buyer-{n % 5}".encode(), f"a{n}".encode()) for n in range(50)]
        between = [(b"buyer-1", b"elsewhere")]
        then = [(f"buyer-{n % 5}".encode(), f"b{n}".encode()) for n in range(50)]
        await publisher.publish_many([(topic, first), (other, between), (topic, then)])
        consumer = await bus.consumer(infra.unique("g"), [topic, other])
        got = await take(consumer, 101)
        for n in range(5):
            key = f"buyer-{n}".encode()
            mine = [r for r in got if r.key == key and r.topic == topic]
            assert values(mine) == [v for k, v in first + then if k == key]
            assert len({r.partition for r in mine}) == 1
        assert [r.value for r in got if r.topic == other] == [b"elsewhere"]
        await consumer.close()
        await publisher.close()

    async def test_a_group_resumes_after_what_it_committed(self, bus: Bus, topic: str) -> None:
        publisher, group = await commit_two_of_three(bus, topic)
        second = await bus.consumer(group, [topic])
        again = await take(second, 1)
        assert values(again) == [b"c"]
        await second.close()
        await publisher.close()

    async def test_what_was_not_committed_is_delivered_again(self, bus: Bus, topic: str) -> None:
        publisher = bus.publisher()
        await publisher.publish(topic, [(b"k", b"a"), (b"k", b"b")])
        group = infra.unique("g")
        first = await bus.consumer(group, [topic])
        assert values(await take(first, 2)) == [b"a", b"b"]
        await first.close()
        second = await bus.consumer(group, [topic])
        assert values(await take(second, 2)) == [b"a", b"b"]
        await second.close()
        await publisher.close()

    async def test_every_group_gets_every_record(self, bus: Bus, topic: str) -> None:
        publisher = bus.publisher()
        await publisher.publish(topic, [(f"k{n}".encode(), f"{n}".encode()) for n in range(9)])
        one = await bus.consumer(infra.unique("g"), [topic])
        two = await bus.consumer(infra.unique("g"), [topic])
        assert sorted(values(await take(one, 9))) == sorted(f"{n}".encode() for n in range(9))
        assert sorted(values(await take(two, 9))) == sorted(f"{n}".encode() for n in range(9))
        await one.close()
        await two.close()
        await publisher.close()

    async def test_headers_travel_with_the_record(self, bus: Bus, topic: str) -> None:
        publisher = bus.publisher()
        await publisher.publish(topic, [(None, b"poison")], [("error", b"ValueError: bad")])
        consumer = await bus.consumer(infra.unique("g"), [topic])
        (record,) = await take(consumer, 1)
        assert record.key is None
        assert dict(record.headers)["error"] == b"ValueError: bad"
        await consumer.close()
        await publisher.close()

    async def test_a_publisher_pings_the_bus_without_publishing(self, bus: Bus, topic: str) -> None:
        publisher = bus.publisher()
        await publisher.ping()
        await publisher.ping()
        await publisher.publish(topic, [(b"k", b"after the pings")])
        consumer = await bus.consumer(infra.unique("g"), [topic])
        assert values(await take(consumer, 1)) == [b"after the pings"]
        await consumer.close()
        await publisher.close()

    async def test_a_topic_is_read_to_its_end_from_where_asked_without_a_group(
        self, bus: Bus, topic: str
    ) -> None:
        publisher = bus.publisher()
        await publisher.publish(topic, [(f"k{n}".encode(), f"{n}".encode()) for n in range(12)])
        whole = [r async for r in bus.read(topic)]
        assert sorted(values(whole)) == sorted(f"{n}".encode() for n in range(12))
        assert [(r.partition, r.offset) for r in whole] == sorted(
            (r.partition, r.offset) for r in whole
        ), "partition by partition, in offset order"
        for record in whole:
            assert record.timestamp is not None
            assert abs(record.timestamp - datetime.now(UTC)) < timedelta(minutes=5)
        first = whole[0]
        later = [r async for r in bus.read(topic, {first.partition: first.offset + 1})]
        assert values(later) == values(whole[1:]), "the partition named starts after its offset"

        async with aclosing(bus.read(topic)) as records:
            async for _ in records:
                break  # leaving early closes the reader
        await publisher.publish(topic, [(b"k", b"after the reading")])
        group = infra.unique("g")
        consumer = await bus.consumer(group, [topic])
        assert len(await take(consumer, 13)) == 13, "reading left no offsets behind"
        await consumer.close()
        await publisher.close()

    async def test_reading_an_empty_topic_ends_at_once(self, bus: Bus, topic: str) -> None:
        assert [r async for r in bus.read(topic)] == []


class DurableBusContract(BusContract):
    """What a bus that keeps its records promises beyond the port: ``reopen`` gives a new
    bus instance on the same storage (the same broker, the same database file)."""

    @pytest.fixture
    def reopen(self) -> Callable[[], Bus]:
        raise NotImplementedError

    @pytest.fixture
    async def bus(self, reopen: Callable[[], Bus]) -> AsyncIterator[Bus]:
        bus = reopen()
        yield bus
        await bus.close()

    async def test_an_acknowledged_record_is_read_by_a_new_bus_after_close(
        self, bus: Bus, topic: str, reopen: Callable[[], Bus]
    ) -> None:
        publisher = bus.publisher()
        await publisher.publish(topic, [(b"k", b"acknowledged"), (None, b"no key")])
        await publisher.close()
        await bus.close()
        again = reopen()
        try:
            consumer = await again.consumer(infra.unique("g"), [topic])
            assert sorted(values(await take(consumer, 2))) == [b"acknowledged", b"no key"]
            await consumer.close()
            assert sorted(values([r async for r in again.read(topic)])) == [
                b"acknowledged",
                b"no key",
            ]
        finally:
            await again.close()

    async def test_committed_offsets_survive_a_reopen(
        self, bus: Bus, topic: str, reopen: Callable[[], Bus]
    ) -> None:
        publisher, group = await commit_two_of_three(bus, topic)
        await publisher.close()
        await bus.close()
        again = reopen()
        try:
            second = await again.consumer(group, [topic])
            assert values(await take(second, 1)) == [b"c"]
            await second.close()
        finally:
            await again.close()


class SharedPartitions:
    async def test_members_of_a_group_share_the_partitions(self, bus: Bus, topic: str) -> None:
        publisher = bus.publisher()
        await publisher.publish(topic, [(f"k{n}".encode(), f"{n}".encode()) for n in range(30)])
        group = infra.unique("g")
        one, two = await bus.consumer(group, [topic]), await bus.consumer(group, [topic])
        got_one = await one.poll(100, 0)
        got_two = await two.poll(100, 0)
        assert got_one
        assert got_two
        assert sorted(values(got_one + got_two)) == sorted(f"{n}".encode() for n in range(30))
        assert not {r.partition for r in got_one} & {r.partition for r in got_two}

    async def test_a_member_leaving_hands_its_partitions_over(self, bus: Bus, topic: str) -> None:
        publisher = bus.publisher()
        await publisher.publish(topic, [(f"k{n}".encode(), f"{n}".encode()) for n in range(30)])
        group = infra.unique("g")
        one, two = await bus.consumer(group, [topic]), await bus.consumer(group, [topic])
        mine = await one.poll(100, 0)
        await one.commit(mine)
        await two.close()
        rest = await take(one, 30 - len(mine))
        assert sorted(values(mine + rest)) == sorted(f"{n}".encode() for n in range(30))
        with pytest.raises(CommitFailed):
            await two.commit(rest[:1])
        await one.close()


class TestMemoryBus(SharedPartitions, BusContract):
    @pytest.fixture
    async def bus(self) -> AsyncIterator[Bus]:
        bus = MemoryBus()
        yield bus
        await bus.close()


class TestSqliteBus(SharedPartitions, DurableBusContract):
    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        path = tmp_path / "nudge.db"
        upgrade(f"sqlite+aiosqlite:///{path}")
        return path

    @pytest.fixture
    def reopen(self, path: Path) -> Callable[[], Bus]:
        return lambda: SqliteBus(path, wake_interval=0.02)

    async def test_a_consumer_sees_records_another_process_wrote(
        self, bus: Bus, topic: str, reopen: Callable[[], Bus]
    ) -> None:
        """Another bus instance on the file stands for another process (`nudge dlq`)."""
        consumer = await bus.consumer(infra.unique("g"), [topic])
        assert await consumer.poll(10, 0) == []
        other = reopen()
        try:
            await other.publisher().publish(topic, [(b"k", b"from elsewhere")])
        finally:
            await other.close()
        assert values(await consumer.poll(10, 5.0)) == [b"from elsewhere"]
        await consumer.close()

    async def test_one_process_at_a_time_consumes_a_database(
        self, bus: Bus, topic: str, reopen: Callable[[], Bus]
    ) -> None:
        """Group membership lives in one process: a second consuming process is refused."""
        first = await bus.consumer(infra.unique("g"), [topic])
        elsewhere = reopen()
        try:
            with pytest.raises(ConsumedElsewhere):
                await elsewhere.consumer(infra.unique("g"), [topic])
            await elsewhere.publisher().publish(topic, [(b"k", b"publishing is fine")])
        finally:
            await elsewhere.close()
        await first.close()
        await bus.close()  # the lock goes with the bus (and with the process, however it ends)
        after = reopen()
        try:
            consumer = await after.consumer(infra.unique("g"), [topic])
            assert values(await take(consumer, 1)) == [b"publishing is fine"]
        finally:
            await after.close()

    async def test_consumed_records_past_retention_are_pruned_and_offsets_go_on(
        self, path: Path, topic: str
    ) -> None:
        bus = SqliteBus(path, retention=0)
        try:
            publisher = bus.publisher()
            await publisher.publish(topic, [(b"k", f"{n}".encode()) for n in range(5)])
            await publisher.publish(f"{topic}.dlq", [(b"k", b"dead letter")])
            group, lagging = infra.unique("g"), infra.unique("g")
            consumer = await bus.consumer(group, [topic])
            await consumer.commit(await take(consumer, 5))
            behind = await bus.consumer(lagging, [topic])
            slower = await take(behind, 5)
            await behind.commit(slower[:2])
            assert await bus.prune() == 2, "what the slower group committed, and no more"
            await behind.commit(slower)
            assert await bus.prune() == 2, "the partition's last record stays"
            assert values([r async for r in bus.read(f"{topic}.dlq")]) == [b"dead letter"]
            await publisher.publish(topic, [(b"k", b"after the pruning")])
            (record,) = await take(consumer, 1)
            assert (record.value, record.offset) == (b"after the pruning", 5)
        finally:
            await bus.close()

    async def test_a_group_that_joined_but_never_committed_keeps_its_records(
        self, path: Path, topic: str
    ) -> None:
        """Regression: retention counted only the groups with a committed offset, so a new
        group (or one stuck on errors) lost the records another group had committed."""
        bus = SqliteBus(path, retention=0)
        try:
            await bus.publisher().publish(topic, [(b"k", f"{n}".encode()) for n in range(5)])
            stuck = await bus.consumer(infra.unique("g"), [topic])
            assert len(await take(stuck, 5)) == 5  # read, failing, never committed
            quick = await bus.consumer(infra.unique("g"), [topic])
            await quick.commit(await take(quick, 5))
            assert await bus.prune() == 0
            await stuck.close()
        finally:
            await bus.close()
        again = SqliteBus(path, retention=0)
        try:
            assert await again.prune() == 0, "a group that joined once is still waited for"
        finally:
            await again.close()

    async def test_a_publish_whose_commit_failed_leaves_the_bus_writable(
        self, bus: SqliteBus, topic: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Regression: a failed COMMIT left the writer connection in its transaction, holding
        the write lock, and every publish after it failed."""
        writer = bus._writer
        opened = writer._open
        failing = FailingCommits(once=True)
        monkeypatch.setattr(writer, "_open", lambda: failing.wrap(opened()))
        with pytest.raises(BusUnavailable):
            await bus.publisher().publish(topic, [(b"k", b"not written")])
        await bus.publisher().publish(topic, [(b"k", b"written")])
        assert values([r async for r in bus.read(topic)]) == [b"written"]

    async def test_records_past_retention_are_pruned_by_age_up_to_the_first_young_one(
        self, path: Path, topic: str
    ) -> None:
        bus = SqliteBus(path, partitions=1)
        try:
            count, old = 12_000, 7_000  # more than one chunk of deletes
            await bus.publisher().publish(topic, [(b"k", f"{n}".encode()) for n in range(count)])
            eight_days_ago = int((datetime.now(UTC) - timedelta(days=8)).timestamp() * 1000)
            with closing(sqlite3.connect(path, isolation_level=None)) as conn:
                conn.execute(
                    "UPDATE bus_records SET at_ms = ? WHERE topic = ? AND offset_no < ?",
                    (eight_days_ago, topic, old),
                )
            consumer = await bus.consumer(infra.unique("g"), [topic])
            await consumer.commit(await take(consumer, count))
            assert await bus.prune() == old
            assert await bus.prune() == 0
            left = [r.offset async for r in bus.read(topic)]
            assert left == list(range(old, count))
        finally:
            await bus.close()

    async def test_pruning_runs_beside_commits_and_its_failure_fails_no_commit(
        self, path: Path, topic: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Regression: the prune ran inside ``commit``, so its error was a commit failure."""
        bus = SqliteBus(path, retention=0, prune_interval=0)
        tried = 0

        async def failing_prune() -> int:
            nonlocal tried
            tried += 1
            raise BusUnavailable("the disk is failing")

        try:
            await bus.publisher().publish(topic, [(b"k", f"{n}".encode()) for n in range(5)])
            consumer = await bus.consumer(infra.unique("g"), [topic])
            got = await take(consumer, 5)
            with monkeypatch.context() as patch:
                patch.setattr(bus, "prune", failing_prune)
                await consumer.commit(got[:2])

                async def tried_once() -> bool:
                    return tried > 0

                await eventually(tried_once, what="the prune in the background")
            await consumer.commit(got)

            async def pruned() -> bool:
                return [r.offset async for r in bus.read(topic)] == [4]

            await eventually(pruned, what="the records committed pruned in the background")
        finally:
            await bus.close()

    async def test_a_publish_that_timed_out_wrote_nothing(self, path: Path, topic: str) -> None:
        """Regression: a publish that timed out (ingest's 503) went on waiting for the write
        lock on its thread, and wrote its records once the lock came free."""
        bus = SqliteBus(path, publish_timeout=1.0)
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            await bus.ensure_topics([topic])
            holder.execute("BEGIN IMMEDIATE")  # a long store transaction elsewhere
            with pytest.raises(BusUnavailable):
                await bus.publisher().publish(topic, [(b"k", b"answered 503")])
            holder.execute("ROLLBACK")
            await bus.publisher().publish(topic, [(b"k", b"answered 202")])  # after the first
            assert values([r async for r in bus.read(topic)]) == [b"answered 202"]
        finally:
            holder.close()
            await bus.close()

    async def test_the_database_and_its_wal_are_private(
        self, bus: Bus, topic: str, path: Path
    ) -> None:
        await bus.publisher().publish(topic, [(b"k", b"pii")])
        for name in (path, path.with_name("nudge.db-wal"), path.with_name("nudge.db-shm")):
            assert stat.S_IMODE(name.stat().st_mode) == 0o600, name


@pytest.mark.kafka
class TestKafkaBus(DurableBusContract):
    @pytest.fixture
    def reopen(self, kafka_bootstrap: str) -> Callable[[], Bus]:
        return lambda: KafkaBus(kafka_bootstrap, publish_timeout=10)


async def test_a_kafka_publisher_ping_says_when_no_broker_answers() -> None:
    """No broker needed: nothing listens on the port."""
    bus = KafkaBus(f"127.0.0.1:{free_port()}", publish_timeout=1.0)
    publisher = bus.publisher()
    with pytest.raises(BusUnavailable):
        await publisher.ping()
    await publisher.close()
    await bus.close()


async def test_migration_0014_builds_the_bus_tables_schema_py_declares(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nudge.db'}"
    await upgrade_async(url)
    store = open_store(url)

    def differences(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        mine = {"bus_topics", "bus_records", "bus_offsets"}
        return [
            d for d in compare_metadata(context, schema.metadata) if mine & set(map(str, _names(d)))
        ]

    try:
        async with store.engine.connect() as conn:
            assert await conn.run_sync(differences) == []
    finally:
        await store.close()


def _names(diff: Any) -> list[str]:
    if isinstance(diff, list):
        return [name for item in diff for name in _names(item)]
    return [getattr(p, "name", p) for p in diff if isinstance(p, str) or hasattr(p, "name")] + [
        p.table.name for p in diff if getattr(p, "table", None) is not None
    ]
