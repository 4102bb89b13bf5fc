"""The embedded bus (``SqliteBus``) beside raw SQLite inserts and selects of the same records.

- embedded bus: the synthetic purchases (``shared/synthetic.py``) as ingest publishes
  them (key and JSON value), in ``publish`` calls of 100 (one transaction each, WAL,
  ``synchronous=FULL``: on disk when the call returns), then consumed by one member of a
  consumer group, polls of 500 each committed, until every record is back;
- raw baseline: the same rows inserted with :mod:`sqlite3` ``executemany``, 100 per
  transaction on the same pragmas, from this thread (no event loop hop), then read
  back by primary key ranges of 500, each followed by an offset upsert transaction.

A fresh database in a temporary folder, migrated first; nothing needs Kafka or PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bench.common import Figure, console, report, timed
from shared.adapters.bus.sqlite import SqliteBus
from shared.adapters.store.migrate import upgrade_async
from shared.synthetic import synthetic_events

BATCH = 100
POLL = 500
TOPIC = "bench.events"


def _records(count: int) -> list[tuple[bytes | None, bytes]]:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    events = list(synthetic_events(max(1, count // 2), 120, 7, start))[:count]
    return [(f"id:{e['customer']['id']}".encode(), orjson.dumps(e)) for e in events]


async def _embedded(path: Path, records: list[tuple[bytes | None, bytes]]) -> tuple[Figure, Figure]:
    bus = SqliteBus(path)
    try:
        await bus.ensure_topics([TOPIC])
        publisher = bus.publisher()
        with timed() as publishing:
            for first in range(0, len(records), BATCH):
                await publisher.publish(TOPIC, records[first : first + BATCH])
        consumer = await bus.consumer("bench", [TOPIC])
        got = 0
        with timed() as consuming:
            while got < len(records):
                batch = await consumer.poll(POLL, 1.0)
                await consumer.commit(batch)
                got += len(batch)
        await consumer.close()
    finally:
        await bus.close()
    return (
        Figure(
            "embedded bus publish (100 a call)", len(records), publishing.seconds, "bus.publish"
        ),
        Figure("embedded bus consume + commit (500 a poll)", got, consuming.seconds, "bus.consume"),
    )


def _raw(path: Path, records: list[tuple[bytes | None, bytes]]) -> tuple[Figure, Figure]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    at = time.time_ns() // 1_000_000
    with timed() as inserting:
        for first in range(0, len(records), BATCH):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO bus_records (topic, partition_no, offset_no, key, value, headers, "
                "at_ms) VALUES ('raw', 0, ?, ?, ?, NULL, ?)",
                [
                    (first + n, key, value, at)
                    for n, (key, value) in enumerate(records[first : first + BATCH])
                ],
            )
            conn.execute("COMMIT")
    got = 0
    with timed() as selecting:
        while got < len(records):
            rows = conn.execute(
                "SELECT key, value FROM bus_records WHERE topic = 'raw' AND partition_no = 0 "
                "AND offset_no >= ? ORDER BY offset_no LIMIT ?",
                (got, POLL),
            ).fetchall()
            got += len(rows)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO bus_offsets (group_name, topic, partition_no, committed) "
                "VALUES ('raw', 'raw', 0, ?) ON CONFLICT (group_name, topic, partition_no) "
                "DO UPDATE SET committed = excluded.committed",
                (got,),
            )
            conn.execute("COMMIT")
    conn.close()
    return (
        Figure("raw sqlite3 insert (100 a transaction)", len(records), inserting.seconds),
        Figure("raw sqlite3 select 500 + offset upsert", got, selecting.seconds),
    )


async def main(count: int) -> None:
    records = _records(count)
    with tempfile.TemporaryDirectory(prefix="nudge-bench-bus-") as folder:
        path = Path(folder) / "nudge.db"
        await upgrade_async(f"sqlite+aiosqlite:///{path}")
        publish, consume = await _embedded(path, records)
        insert, select = _raw(path, records)
    report(
        f"embedded bus vs raw SQLite, {len(records)} records, WAL, synchronous=FULL",
        [(publish, insert), (consume, select)],
    )
    both = Figure("embedded bus publish + consume", len(records), publish.seconds + consume.seconds)
    console.print(f"publish + consume: {both.rate:,.0f} events/s")
