"""The embedded bus, kept in the embedded SQLite database: a 202 means the record is on disk.

The same semantics as Kafka's that nudge relies on (see :mod:`shared.ports.bus`):

- records with the same key go to the same partition, in order (offsets are given in
  the publishing transaction, under SQLite's one-writer lock);
- a consumer group shares its topics' partitions among its members, and a member
  joining or leaving moves partitions (a rebalance);
- delivery is at least once: a member starts every partition it is given at the
  group's committed offset, so whatever was not committed is delivered again.

Records (``bus_records``), topics (``bus_topics``) and committed offsets
(``bus_offsets``) are tables of the store's database (migration 0014), so dead letters
(the ``.dlq`` topics) are durable too. Each ``publish`` call is one transaction, each
``commit`` another; the connection runs ``synchronous=FULL`` in WAL mode, so a
transaction is on disk (the WAL fsynced) before the call returns, and survives a
SIGKILL and a power cut alike.

Group membership lives in this object: the members of a group are this process's, and
one process at a time may consume (a lock on ``<database>.consumers``, released when the
process ends, however it ends; a second one gets :class:`ConsumedElsewhere`). Other
processes may publish and read (``nudge dlq``), and consumers notice their records
within ``wake_interval`` seconds.

Retention: a record older than ``retention`` seconds that every group reading its topic
has committed is deleted (a partition's last record stays, so offsets go on from it);
topics no group reads, such as the dead-letter topics, keep every record. A group reads
a topic from the first time it joins on it: it gets offset 0 in each of its partitions
then, so a group that never committed (a new one, one stuck on errors) keeps every record.

SQLite's calls run on two threads of the bus's own (one connection writing, one
reading), never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import itertools
import math
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson

from shared.adapters.bus.groups import Groups
from shared.adapters.files import private_sqlite_file
from shared.errors import BusError, BusUnavailable, CommitFailed
from shared.logging import get_logger
from shared.ports.bus import Record

__all__ = ["ConsumedElsewhere", "SqliteBus", "SqliteConsumer", "SqlitePublisher"]

T = TypeVar("T")
Partition = tuple[str, int]

_COLUMNS = "topic, partition_no, offset_no, key, value, headers, at_ms"
_READ_PAGE = 500
_PRUNE_CHUNK = 5000

log = get_logger(__name__)


class ConsumedElsewhere(BusError):
    """Another process consumes this database's bus: run one consuming process per file."""


class _Connection:
    """One SQLite connection, used from one thread of its own."""

    def __init__(self, path: Path, name: str, busy_timeout: float) -> None:
        self._path = path
        self._busy_ms = max(1, int(busy_timeout * 1000))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"bus-{name}")
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            private_sqlite_file(self._path)
            conn = sqlite3.connect(self._path, isolation_level=None, timeout=self._busy_ms / 1000)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            self._conn = conn
        return self._conn

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: work(self._open()))
        except sqlite3.Error as exc:
            raise BusUnavailable(f"the embedded bus's database failed: {exc}") from exc

    async def run_if_started(self, work: Callable[[sqlite3.Connection], T], within: float) -> T:
        """Run ``work`` if the thread starts it within ``within`` seconds (``TimeoutError``
        then, and ``work`` never runs); once started, wait for its real outcome, which a
        timeout or a cancellation of the caller does not stop."""
        loop = asyncio.get_running_loop()
        began = asyncio.Event()
        claim = threading.Lock()
        state = {"started": False, "abandoned": False}

        def job() -> T | None:
            with claim:
                if state["abandoned"]:
                    return None
                state["started"] = True
            loop.call_soon_threadsafe(began.set)
            return work(self._open())

        future = loop.run_in_executor(self._executor, job)
        # Retrieved even when nobody waits any more (the caller cancelled meanwhile).
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            async with asyncio.timeout(within):
                await began.wait()
        except TimeoutError:
            with claim:
                state["abandoned"] = not state["started"]
            if state["abandoned"]:
                raise
        try:
            return cast("T", await asyncio.shield(future))
        except sqlite3.Error as exc:
            raise BusUnavailable(f"the embedded bus's database failed: {exc}") from exc

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                conn.close()

        loop = asyncio.get_running_loop()
        with contextlib.suppress(RuntimeError):  # already shut down
            await loop.run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` (the write lock first: no upgrade deadlock) … ``COMMIT``.

    Whatever fails, the ``COMMIT`` included (a full disk, an I/O error), the transaction
    is rolled back: the connection lives as long as the bus, and one left in its
    transaction would hold the write lock and refuse every later one."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite ends it itself after some errors
            with contextlib.suppress(sqlite3.Error):  # the first error is the one to tell
                conn.execute("ROLLBACK")
        raise


def _encode_headers(headers: Sequence[tuple[str, bytes]]) -> bytes | None:
    if not headers:
        return None
    return orjson.dumps([[name, value.decode("latin-1")] for name, value in headers])


def _record(row: tuple[Any, ...]) -> Record:
    topic, partition, offset, key, value, headers, at_ms = row
    return Record(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        headers=()
        if headers is None
        else tuple((name, text.encode("latin-1")) for name, text in orjson.loads(headers)),
        timestamp=datetime.fromtimestamp(at_ms / 1000, UTC),
    )


def _page(
    conn: sqlite3.Connection, *, topic: str, partition: int, first: int, end: int
) -> list[Record]:
    """Records of a partition from ``first`` up to ``end``, a page at a time."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM bus_records WHERE topic = ? "  # noqa: S608
        "AND partition_no = ? AND offset_no >= ? AND offset_no < ? "
        "ORDER BY offset_no LIMIT ?",
        (topic, partition, first, end, _READ_PAGE),
    ).fetchall()
    return [_record(row) for row in rows]


def _end(conn: sqlite3.Connection, topic: str, partition: int) -> int:
    """The offset the next record of the partition gets (an index lookup)."""
    row = conn.execute(
        "SELECT MAX(offset_no) FROM bus_records WHERE topic = ? AND partition_no = ?",
        (topic, partition),
    ).fetchone()
    return 0 if row[0] is None else int(row[0]) + 1


class SqliteBus:
    def __init__(
        self,
        path: Path | str,
        *,
        partitions: int = 3,
        publish_timeout: float = 5.0,
        wake_interval: float = 0.1,
        retention: float = 7 * 24 * 3600.0,
        prune_interval: float = 600.0,
    ) -> None:
        """``path``: the SQLite database, migrated (``nudge db upgrade``, or the services'
        start); ``wake_interval``: how often an idle consumer looks for records another
        process wrote (this process's own records wake it at once); ``retention``: seconds
        a consumed record is kept, looked at every ``prune_interval`` seconds of commits."""
        self.path = Path(path)
        self.partitions = partitions
        self.publish_timeout = publish_timeout
        self.wake_interval = wake_interval
        self.retention = retention
        self.prune_interval = prune_interval
        self._pruned_at = time.monotonic()
        self._pruning: asyncio.Task[None] | None = None
        self._lock: int | None = None
        # A publish waits its turn on the writer's thread, then for SQLite's write lock
        # (another connection's transaction): half of publish_timeout each, so it is answered
        # within about publish_timeout, and a timeout means nothing was written.
        self._start_within = publish_timeout / 2
        self._writer = _Connection(self.path, "writer", publish_timeout / 2)
        self._reader = _Connection(self.path, "reader", publish_timeout)
        self._topics: dict[str, int] = {}
        self._groups: Groups[SqliteConsumer] = Groups(self._notify)
        self._round_robin = itertools.count()
        self._arrived = asyncio.Event()
        self._closed = False

    # --- Bus port ---------------------------------------------------------------------

    def publisher(self) -> SqlitePublisher:
        return SqlitePublisher(self)

    async def consumer(self, group: str, topics: Sequence[str]) -> SqliteConsumer:
        self._lock_consumers()
        await self.ensure_topics(topics)
        await self._writer.run(functools.partial(self._enrol, group=group, topics=topics))
        member = SqliteConsumer(self, group, tuple(topics))
        self._groups.join(member)
        return member

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        missing = [t for t in topics if t not in self._topics]
        if missing:
            self._topics.update(await self._writer.run(lambda conn: self._create(conn, missing)))

    async def read(
        self, topic: str, start: Mapping[int, int] | None = None
    ) -> AsyncGenerator[Record, None]:
        def ends(conn: sqlite3.Connection) -> list[int]:
            row = conn.execute(
                "SELECT partitions FROM bus_topics WHERE name = ?", (topic,)
            ).fetchone()
            return [] if row is None else [_end(conn, topic, p) for p in range(row[0])]

        for partition, end in enumerate(await self._reader.run(ends)):
            position = max(0, (start or {}).get(partition, 0))
            while position < end:
                records = await self._reader.run(
                    functools.partial(
                        _page, topic=topic, partition=partition, first=position, end=end
                    )
                )
                if not records:
                    break
                for record in records:
                    yield record
                position = records[-1].offset + 1

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pruning is not None:
            self._pruning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruning
        for member in self._groups.everyone():
            await member.close()
        await self._writer.close()
        await self._reader.close()
        if self._lock is not None:
            lock, self._lock = self._lock, None
            os.close(lock)  # releases the lock

    def _lock_consumers(self) -> None:
        """Hold ``<database>.consumers`` while this bus has consumers; the kernel drops the
        lock with the process, so a SIGKILL leaves nothing to clean up."""
        if self._lock is not None:
            return
        path = self.path.with_name(self.path.name + ".consumers")
        lock = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise ConsumedElsewhere(
                f"another process consumes the embedded bus of {self.path} (a running "
                "`nudge serve --embedded` on this data dir?): stop it first"
            ) from None
        self._lock = lock

    # --- inspection: the embedded server's drain, the tests ---------------------------

    async def lag(self, group: str, topics: Sequence[str]) -> int:
        """Records in ``topics`` that ``group`` has not committed yet."""
        wanted = list(topics)

        def lag(conn: sqlite3.Connection) -> int:
            total = 0
            for topic in wanted:
                row = conn.execute(
                    "SELECT partitions FROM bus_topics WHERE name = ?", (topic,)
                ).fetchone()
                for partition in range(row[0] if row else 0):
                    committed = _committed(conn, group, topic, partition)
                    total += max(0, _end(conn, topic, partition) - committed)
            return total

        return await self._reader.run(lag)

    async def committed(self, group: str, topic: str, partition: int) -> int:
        return await self._reader.run(lambda conn: _committed(conn, group, topic, partition))

    # --- what the publisher and the consumers share -----------------------------------

    def _create(self, conn: sqlite3.Connection, topics: Sequence[str]) -> dict[str, int]:
        """Create ``topics`` where missing; their partition counts (a topic keeps its own)."""
        with _transaction(conn):
            conn.executemany(
                "INSERT INTO bus_topics (name, partitions) VALUES (?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                [(t, self.partitions) for t in topics],
            )
            return {
                t: int(
                    conn.execute(
                        "SELECT partitions FROM bus_topics WHERE name = ?", (t,)
                    ).fetchone()[0]
                )
                for t in topics
            }

    def _enrol(self, conn: sqlite3.Connection, group: str, topics: Sequence[str]) -> None:
        """Give ``group`` an offset (0 where it has none) in every partition of ``topics``:
        retention then waits for it, from its first join on, even before its first commit."""
        with _transaction(conn):
            conn.executemany(
                "INSERT INTO bus_offsets (group_name, topic, partition_no, committed) "
                "VALUES (?, ?, ?, 0) ON CONFLICT (group_name, topic, partition_no) DO NOTHING",
                [(group, t, p) for t in topics for p in range(self._topics[t])],
            )

    async def _append(
        self,
        topic: str,
        records: Sequence[tuple[bytes | None, bytes]],
        headers: Sequence[tuple[str, bytes]],
    ) -> None:
        await self.ensure_topics([topic])
        count = self._topics[topic]
        encoded = _encode_headers(headers)
        chosen = [
            (zlib.crc32(key) if key is not None else next(self._round_robin)) % count
            for key, _value in records
        ]

        def append(conn: sqlite3.Connection) -> None:
            at_ms = time.time_ns() // 1_000_000
            with _transaction(conn):
                ends = {p: _end(conn, topic, p) for p in set(chosen)}
                rows = []
                for partition, (key, value) in zip(chosen, records, strict=True):
                    rows.append((topic, partition, ends[partition], key, value, encoded, at_ms))
                    ends[partition] += 1
                conn.executemany(
                    f"INSERT INTO bus_records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                    rows,
                )

        try:
            await self._writer.run_if_started(append, within=self._start_within)
        except TimeoutError as exc:
            raise BusUnavailable(
                f"the embedded bus could not start writing within {self._start_within}s; "
                "nothing was written"
            ) from exc
        self._notify()

    async def _commit(self, group: str, ends: Mapping[Partition, int]) -> None:
        rows = [(group, topic, partition, end) for (topic, partition), end in ends.items()]

        def commit(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.executemany(
                    "INSERT INTO bus_offsets (group_name, topic, partition_no, committed) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (group_name, topic, partition_no) "
                    "DO UPDATE SET committed = MAX(committed, excluded.committed)",
                    rows,
                )

        await self._writer.run(commit)
        if self._pruning is None and time.monotonic() - self._pruned_at >= self.prune_interval:
            self._pruned_at = time.monotonic()
            self._pruning = asyncio.create_task(self._prune_beside())

    async def _prune_beside(self) -> None:
        """:meth:`prune` beside the consumers: its failure is logged, never a commit's."""
        try:
            await self.prune()
        except BusError as exc:
            log.warning("pruning the embedded bus failed; tried again later", error=str(exc))
        finally:
            self._pruning = None

    async def prune(self) -> int:
        """Delete the records past their retention that every group reading their topic
        has committed; how many. The bounds are found on the reader (index lookups), and
        the writer deletes ranges of the primary key, a chunk per transaction, so
        publishers wait little."""
        cutoff = time.time_ns() // 1_000_000 - int(self.retention * 1000)

        def prunable(conn: sqlite3.Connection) -> list[tuple[str, int, int, int]]:
            readers = dict(
                conn.execute(
                    "SELECT topic, COUNT(DISTINCT group_name) FROM bus_offsets GROUP BY topic"
                ).fetchall()
            )
            found = []
            for topic, partition, low, groups in conn.execute(
                "SELECT topic, partition_no, MIN(committed), COUNT(*) FROM bus_offsets "
                "GROUP BY topic, partition_no"
            ).fetchall():
                if groups != readers[topic]:  # a group has not joined on this partition
                    continue
                # The partition's last record stays: the next offset follows it.
                below = min(low, _end(conn, topic, partition) - 1)
                first = _first(conn, topic, partition)
                if first is not None and first < below:
                    end = _aged(conn, topic, partition, first=first, below=below, cutoff=cutoff)
                    found.append((topic, partition, first, end))
            return found

        def chunk(
            conn: sqlite3.Connection, topic: str, partition: int, first: int, end: int
        ) -> int:
            with _transaction(conn):
                return conn.execute(
                    "DELETE FROM bus_records WHERE topic = ? AND partition_no = ? "
                    "AND offset_no >= ? AND offset_no < ?",
                    (topic, partition, first, end),
                ).rowcount

        deleted = 0
        for topic, partition, first, end in await self._reader.run(prunable):
            for start in range(first, end, _PRUNE_CHUNK):
                deleted += await self._writer.run(
                    functools.partial(
                        chunk,
                        topic=topic,
                        partition=partition,
                        first=start,
                        end=min(start + _PRUNE_CHUNK, end),
                    )
                )
        return deleted

    def _notify(self) -> None:
        self._arrived.set()
        self._arrived = asyncio.Event()

    def _assignment(self, member: SqliteConsumer) -> list[Partition]:
        return self._groups.assignment(member, lambda topic: self._topics.get(topic, 0))


def _first(conn: sqlite3.Connection, topic: str, partition: int) -> int | None:
    """The partition's first offset still kept (an index lookup)."""
    row = conn.execute(
        "SELECT MIN(offset_no) FROM bus_records WHERE topic = ? AND partition_no = ?",
        (topic, partition),
    ).fetchone()
    return None if row[0] is None else int(row[0])


def _aged(
    conn: sqlite3.Connection, topic: str, partition: int, *, first: int, below: int, cutoff: int
) -> int:
    """The first offset in ``first``..``below`` written after ``cutoff`` (``below`` if none).

    A binary search by index lookups: ``at_ms`` rises with the offset, as each publish
    takes the clock's time under the write lock and the next offsets."""

    def at_ms(offset: int) -> int:
        row = conn.execute(
            "SELECT at_ms FROM bus_records WHERE topic = ? AND partition_no = ? "
            "AND offset_no >= ? ORDER BY offset_no LIMIT 1",
            (topic, partition, offset),
        ).fetchone()
        return cutoff + 1 if row is None else int(row[0])

    low, high = first, below
    while low < high:
        middle = (low + high) // 2
        if at_ms(middle) <= cutoff:
            low = middle + 1
        else:
            high = middle
    return low


def _committed(conn: sqlite3.Connection, group: str, topic: str, partition: int) -> int:
    row = conn.execute(
        "SELECT committed FROM bus_offsets WHERE group_name = ? AND topic = ? AND partition_no = ?",
        (group, topic, partition),
    ).fetchone()
    return 0 if row is None else int(row[0])


class SqlitePublisher:
    def __init__(self, bus: SqliteBus) -> None:
        self._bus = bus

    async def publish(
        self,
        topic: str,
        records: Sequence[tuple[bytes | None, bytes]],
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        if records:
            await self._bus._append(topic, records, headers)

    async def publish_many(
        self,
        batches: Sequence[tuple[str, Sequence[tuple[bytes | None, bytes]]]],
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """One write per batch, in order: each is durable when it returns, as publish's."""
        for topic, records in batches:
            await self.publish(topic, records, headers)

    async def ping(self) -> None:
        """A read of the database: the bus answers while its file does."""
        await self._bus._reader.run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        return None


class SqliteConsumer:
    def __init__(self, bus: SqliteBus, group: str, topics: tuple[str, ...]) -> None:
        self._bus = bus
        self.group = group
        self.topics = topics
        self._generation = -1
        self._positions: dict[Partition, int] = {}

    async def _sync(self) -> None:
        """After a rebalance, start every partition given at the group's committed offset."""
        generation = self._bus._groups.generation(self.group)
        if generation == self._generation:
            return
        assigned = self._bus._assignment(self)
        group = self.group

        def committed(conn: sqlite3.Connection) -> dict[Partition, int]:
            return {tp: _committed(conn, group, *tp) for tp in assigned}

        positions = await self._bus._reader.run(committed)
        if self._bus._groups.generation(self.group) == generation:
            self._generation, self._positions = generation, positions

    async def _take(self, max_records: int) -> list[Record]:
        await self._sync()
        positions = list(self._positions.items())
        if not positions or max_records <= 0:
            return []
        share = max(1, math.ceil(max_records / len(positions)))
        one = (
            f"SELECT * FROM (SELECT {_COLUMNS} FROM bus_records "  # noqa: S608
            "WHERE topic = ? AND partition_no = ? AND offset_no >= ? ORDER BY offset_no LIMIT ?)"
        )
        sql = " UNION ALL ".join([one] * len(positions))
        parameters = [v for (topic, p), at in positions for v in (topic, p, at, share)]

        def fetch(conn: sqlite3.Connection) -> list[Record]:
            return [_record(row) for row in conn.execute(sql, parameters).fetchall()]

        generation = self._generation
        records = (await self._bus._reader.run(fetch))[:max_records]
        if generation != self._bus._groups.generation(self.group):
            return []  # a rebalance meanwhile: what was read may be another member's now
        for record in records:
            tp = (record.topic, record.partition)
            self._positions[tp] = max(self._positions.get(tp, 0), record.offset + 1)
        return records

    async def poll(self, max_records: int, timeout: float) -> list[Record]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while True:
            arrived = self._bus._arrived
            taken = await self._take(max_records)
            remaining = deadline - loop.time()
            if taken or remaining <= 0:
                return taken
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, self._bus.wake_interval)):
                    await arrived.wait()

    async def commit(self, records: Sequence[Record]) -> None:
        ends: dict[Partition, int] = {}
        for record in records:
            tp = (record.topic, record.partition)
            ends[tp] = max(ends.get(tp, 0), record.offset + 1)
        if not ends:
            return
        assigned = set(self._bus._assignment(self))
        lost = [tp for tp in ends if tp not in assigned]
        if lost:
            raise CommitFailed(f"partitions no longer assigned to this member: {lost}")
        await self._bus._commit(self.group, ends)

    async def close(self) -> None:
        self._bus._groups.leave(self)
