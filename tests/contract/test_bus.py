"""One contract for the bus port, run against the in-process bus and real Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.bus.kafka import KafkaBus
from shared.adapters.bus.memory import MemoryBus
from shared.errors import BusUnavailable
from shared.ports.bus import Bus, Consumer, Record
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


def values(records: Sequence[Record]) -> list[bytes]:
    return [r.value for r in records]


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

    async def test_a_group_resumes_after_what_it_committed(self, bus: Bus, topic: str) -> None:
        publisher = bus.publisher()
        await publisher.publish(topic, [(b"k", b"a"), (b"k", b"b"), (b"k", b"c")])
        group = infra.unique("g")
        first = await bus.consumer(group, [topic])
        got = await take(first, 3)
        await first.commit(got[:2])
        await first.close()
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


class TestMemoryBus(BusContract):
    @pytest.fixture
    async def bus(self) -> AsyncIterator[Bus]:
        bus = MemoryBus()
        yield bus
        await bus.close()

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


@pytest.mark.kafka
class TestKafkaBus(BusContract):
    @pytest.fixture
    async def bus(self, kafka_bootstrap: str) -> AsyncIterator[Bus]:
        bus = KafkaBus(kafka_bootstrap, publish_timeout=10)
        yield bus
        await bus.close()


async def test_a_kafka_publisher_ping_says_when_no_broker_answers() -> None:
    """No broker needed: nothing listens on the port."""
    bus = KafkaBus(f"127.0.0.1:{free_port()}", publish_timeout=1.0)
    publisher = bus.publisher()
    with pytest.raises(BusUnavailable):
        await publisher.ping()
    await publisher.close()
    await bus.close()
