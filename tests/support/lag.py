"""Has a consumer group consumed everything in a topic? On either bus."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.adapters.bus.kafka import KafkaBus
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.bus.sqlite import SqliteBus
from shared.ports.bus import Bus


async def consumed_everything(bus: Bus, group: str, topic: str) -> bool:
    if isinstance(bus, MemoryBus):
        return bus.lag(group, [topic]) == 0
    if isinstance(bus, SqliteBus):
        return await bus.lag(group, [topic]) == 0
    assert isinstance(bus, KafkaBus)
    admin = AIOKafkaAdminClient(bootstrap_servers=bus.bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=bus.bootstrap_servers)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
        await admin.close()
    return all((committed[tp].offset if tp in committed else 0) >= end for tp, end in ends.items())
