"""The bus on Apache Kafka, with aiokafka.

Publishing uses an idempotent producer (``enable_idempotence``, ``acks=all``) and
returns only once the broker has acknowledged every record. A publish's records go
as one batch per partition (aiokafka's ``send_batch``), each record on the partition
aiokafka's default partitioner gives its key, so one key's records stay in order on
one partition whichever way they were sent; consuming uses a
consumer group with automatic commits off, so offsets move only when a service
says its work is committed. aiokafka's errors become nudge's own
(:mod:`shared.errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    TopicAlreadyExistsError,
)
from aiokafka.partitioner import murmur2

from shared.errors import BusUnavailable, CommitFailed
from shared.ports.bus import Record

__all__ = ["KafkaBus", "KafkaConsumer", "KafkaPublisher"]


class KafkaBus:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "nudge",
        partitions: int = 12,
        publish_timeout: float = 5.0,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self.partitions = partitions
        self.publish_timeout = publish_timeout
        self._publishers: list[KafkaPublisher] = []

    def publisher(self) -> KafkaPublisher:
        publisher = KafkaPublisher(self)
        self._publishers.append(publisher)
        return publisher

    async def consumer(self, group: str, topics: Sequence[str]) -> KafkaConsumer:
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        try:
            await consumer.start()
        except KafkaError as exc:
            await consumer.stop()
            raise BusUnavailable(f"cannot join group {group!r}: {exc}") from exc
        return KafkaConsumer(consumer)

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, client_id=self.client_id
        )
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t not in existing]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(
                        [
                            NewTopic(t, num_partitions=self.partitions, replication_factor=1)
                            for t in missing
                        ]
                    )
        except KafkaError as exc:
            raise BusUnavailable(f"cannot create topics: {exc}") from exc
        finally:
            await admin.close()

    async def read(
        self, topic: str, start: Mapping[int, int] | None = None
    ) -> AsyncGenerator[Record, None]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        try:
            with _broker_errors(self.publish_timeout, "answer"):
                partitions = await self._partitions(topic)
                await consumer.start()
            for partition in partitions:
                tp = TopicPartition(topic, partition)
                consumer.assign([tp])
                with _broker_errors(self.publish_timeout, "answer"):
                    end = (await consumer.end_offsets([tp]))[tp]
                    first = (await consumer.beginning_offsets([tp]))[tp]
                    position = max(first, (start or {}).get(partition, 0))
                    consumer.seek(tp, position)
                while position < end:
                    with _broker_errors(self.publish_timeout, "answer"):
                        batch = await consumer.getmany(tp, timeout_ms=1000, max_records=500)
                    for message in batch.get(tp, []):
                        if message.offset >= end:
                            break
                        position = message.offset + 1
                        yield _record(message)
                    # A transaction marker or a compacted gap has no record: move on.
                    position = max(position, await consumer.position(tp))
        finally:
            await consumer.stop()

    async def _partitions(self, topic: str) -> list[int]:
        """The partitions of ``topic`` as the cluster has them now (none: no such topic)."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, client_id=self.client_id
        )
        try:
            await admin.start()
            (described,) = await admin.describe_topics([topic])
        finally:
            await admin.close()
        if described["error_code"] != 0:
            return []
        return sorted(p["partition"] for p in described["partitions"])

    async def close(self) -> None:
        for publisher in self._publishers:
            await publisher.close()
        self._publishers.clear()


class KafkaPublisher:
    def __init__(self, bus: KafkaBus) -> None:
        self._bus = bus
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bus.bootstrap_servers,
                    client_id=self._bus.client_id,
                    enable_idempotence=True,
                    acks="all",
                    linger_ms=2,
                    request_timeout_ms=max(1000, int(self._bus.publish_timeout * 1000)),
                )
                try:
                    await producer.start()
                except KafkaError as exc:
                    await producer.stop()
                    raise BusUnavailable(f"broker unreachable: {exc}") from exc
                self._producer = producer
            return self._producer

    async def publish(
        self,
        topic: str,
        records: Sequence[tuple[bytes | None, bytes]],
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        await self.publish_many([(topic, records)], headers)

    async def publish_many(
        self,
        batches: Sequence[tuple[str, Sequence[tuple[bytes | None, bytes]]]],
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Every record handed to the producer in order, as one batch per topic and
        partition (only queued: one key goes to one partition, in order, idempotent), then
        every ack awaited at once."""
        with _broker_errors(self._bus.publish_timeout, "acknowledge"):
            async with asyncio.timeout(self._bus.publish_timeout):
                producer = await self._started()
                acks = [
                    ack
                    for topic, records in batches
                    for ack in await _send_batches(producer, topic, records, headers)
                ]
                await asyncio.gather(*acks)

    async def ping(self) -> None:
        """A metadata request to the cluster, on the producer's own connections."""
        with _broker_errors(self._bus.publish_timeout, "answer"):
            async with asyncio.timeout(self._bus.publish_timeout):
                producer = await self._started()
                await producer.client.fetch_all_metadata()

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()


async def _send_batches(
    producer: AIOKafkaProducer,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes]],
    headers: Sequence[tuple[str, bytes]],
) -> list[asyncio.Future[Any]]:
    """``records`` queued as one batch per partition (more where one fills): what the
    broker's acknowledgements will resolve. Cheaper than a ``send`` per record, which
    costs aiokafka a coroutine, a partitioner call and an accumulator lookup each."""
    partitions = sorted(await producer.partitions_for(topic))
    keyless = random.choice(partitions)  # noqa: S311 - as aiokafka places a keyless record
    chunks: dict[int, list[tuple[bytes | None, bytes]]] = {}
    for key, value in records:
        partition = keyless if key is None else partitions[_key_hash(key) % len(partitions)]
        chunks.setdefault(partition, []).append((key, value))
    sent: list[asyncio.Future[Any]] = []
    for partition, chunk in chunks.items():
        batch = producer.create_batch()
        for key, value in chunk:
            if batch.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
                sent.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()  # a batch's first record always fits
                batch.append(key=key, value=value, timestamp=None, headers=list(headers))
        sent.append(await producer.send_batch(batch, topic, partition=partition))
    return sent


@functools.lru_cache(maxsize=1 << 16)
def _key_hash(key: bytes) -> int:
    """The hash aiokafka's default partitioner (and the Java client's) places ``key`` by:
    murmur2 in pure Python, so a buyer's, who sends many events, is computed once."""
    return int(murmur2(key)) & 0x7FFFFFFF


@contextmanager
def _broker_errors(timeout: float, what: str) -> Iterator[None]:
    """A broker that times out or fails becomes :class:`BusUnavailable`."""
    try:
        yield
    except TimeoutError as exc:
        raise BusUnavailable(f"broker did not {what} within {timeout}s") from exc
    except KafkaError as exc:
        raise BusUnavailable(f"broker failed: {exc}") from exc


def _record(message: ConsumerRecord[bytes, bytes]) -> Record:
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value if message.value is not None else b"",
        headers=tuple(message.headers or ()),
        timestamp=datetime.fromtimestamp(message.timestamp / 1000, UTC)
        if message.timestamp is not None and message.timestamp >= 0
        else None,
    )


class KafkaConsumer:
    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer

    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        try:
            batches = await self._consumer.getmany(
                timeout_ms=int(timeout * 1000), max_records=max_records
            )
        except KafkaError as exc:
            raise BusUnavailable(f"poll failed: {exc}") from exc
        return [
            _record(m)
            for tp in sorted(batches, key=lambda tp: (tp.topic, tp.partition))
            for m in batches[tp]
        ]

    async def commit(self, records: Sequence[Record]) -> None:
        ends: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            ends[tp] = max(ends.get(tp, 0), record.offset + 1)
        if not ends:
            return
        try:
            await self._consumer.commit(ends)
        except (CommitFailedError, IllegalStateError) as exc:
            raise CommitFailed(str(exc)) from exc
        except KafkaError as exc:
            raise BusUnavailable(f"commit failed: {exc}") from exc

    async def close(self) -> None:
        await self._consumer.stop()
