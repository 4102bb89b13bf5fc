"""What a benchmark run makes on the real stack, and takes down after: a PostgreSQL
database, Kafka topics, nudge's services as processes of their own (``nudge segmenter``,
``nudge dispatcher``) with their CPU time and peak memory; and waits with deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.engine import make_url

from bench.common import DATABASE_URL, KAFKA, unique
from services.bootstrap import TOPICS, Runtime, bootstrap
from shared.adapters.store.migrate import upgrade_async
from shared.settings import Settings

NUDGE = Path(sys.executable).with_name("nudge")


async def until(
    condition: Callable[[], Awaitable[bool]], timeout: float, what: str, pause: float = 0.02
) -> None:
    """Wait for ``condition``; :class:`TimeoutError` naming ``what`` after ``timeout`` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() >= deadline:
            raise TimeoutError(f"{what} not within {timeout:.0f} s")
        await asyncio.sleep(pause)


# --- PostgreSQL ----------------------------------------------------------------------------


async def _admin(statement: str) -> None:
    dsn = make_url(DATABASE_URL).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def create_database(name: str) -> str:
    """A database of the run's own; its SQLAlchemy URL."""
    await _admin(f'CREATE DATABASE "{name}"')
    return make_url(DATABASE_URL).set(database=name).render_as_string(hide_password=False)


async def drop_database(name: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def database(prefix: str) -> AsyncIterator[str]:
    """A database made for the run (its URL), dropped when the run ends."""
    name = unique(prefix)
    url = await create_database(name)
    try:
        yield url
    finally:
        await drop_database(name)


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- Kafka ---------------------------------------------------------------------------------


async def delete_topics(topics: Sequence[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [t for t in topics if t in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def partitions_of(topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]


async def end_offsets(topic: str) -> dict[TopicPartition, int]:
    partitions = await partitions_of(topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def lag(group: str, ends: dict[TopicPartition, int]) -> int:
    """Records of ``ends`` the consumer ``group`` has not committed yet: 0 once it has
    applied them all (nudge's consumers commit after the database does)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(
        max(0, end - (committed[tp].offset if tp in committed else 0)) for tp, end in ends.items()
    )


async def members(group: str) -> int:
    """Members of the consumer ``group`` once it is stable (0 while it rebalances)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        (described,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    _error, _group, state, _protocol_type, _protocol, found = described.groups[0][:6]
    return len(found) if state == "Stable" else 0


# --- the services' processes ---------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def _tree(pid: int) -> list[int]:
    """``pid`` and its live children (render or ingest workers), from Linux ``/proc``."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int(_stat(int(entry.name))[1]) == pid:  # field 4 of proc(5): the parent
                    found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds so far of process ``pid`` and its live children;
    ``None`` where there is no ``/proc``."""
    total = 0
    for member in _tree(pid):
        try:
            fields = _stat(member)
        except OSError:
            if member == pid:
                return None
            continue
        total += int(fields[11]) + int(fields[12])  # utime and stime: fields 14 and 15
    return total / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int | None = None) -> float | None:
    """Peak resident memory (``VmHWM``) in MB of process ``pid`` (this one by default)
    plus that of each of its live children, each at its own peak; ``None`` without
    ``/proc``."""
    total_kb = 0
    for member in _tree(pid) if pid is not None else ["self"]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024 if total_kb else None


async def run_command(*args: str, env: dict[str, str], timeout: float = 60) -> str:
    """Run a command to completion; its stdout, or an error with its output."""
    process = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"{args[0]} {args[1]} took over {timeout}s") from None
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed:\n{err.decode()}{out.decode()}")
    return out.decode()


class Service:
    """``nudge <command>`` in a process of its own, on the environment given; its log
    kept in ``log_path`` and printed if the run fails."""

    def __init__(self, command: str, env: dict[str, str], log_path: Path) -> None:
        self.command = command
        self.env = env
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.peak_rss_mb: float | None = None
        """Read just before the process is stopped."""

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                str(NUDGE), self.command, env=self.env, stdout=log, stderr=log
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> None:
        """Raise, with the log's end, if the process has ended."""
        if self.process is not None and self.process.returncode is not None:
            raise RuntimeError(
                f"nudge {self.command} ended ({self.process.returncode}):\n"
                + self.log_path.read_text(errors="replace")[-3000:]
            )

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid) or 0.0

    async def stop(self, timeout: float = 30) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.peak_rss_mb = peak_rss_mb(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


def kafka_settings(url: str, prefix: str, data_dir: Path, **more: Any) -> Settings:
    """Settings of a run in the benchmark's own process: Kafka, the run's database, its
    topics and groups (``prefix``), and ``more``."""
    return Settings(
        data_dir=data_dir,
        bus="kafka",
        kafka_bootstrap=KAFKA,
        database_url=url,
        topic_prefix=prefix,
        group_prefix=prefix,
        **more,
    )


def service_env(
    url: str, prefix: str, data_dir: Path, **settings: str | int | float
) -> dict[str, str]:
    """The environment of nudge's processes for a run: Kafka, the run's database, topics
    and groups of its own, logging at WARNING, and ``NUDGE_<NAME>`` for each of
    ``settings``."""
    return {
        **os.environ,
        "NUDGE_BUS": "kafka",
        "NUDGE_KAFKA_BOOTSTRAP": KAFKA,
        "NUDGE_DATABASE_URL": url,
        "NUDGE_DATA_DIR": str(data_dir),
        "NUDGE_TOPIC_PREFIX": prefix,
        "NUDGE_GROUP_PREFIX": prefix,
        "NUDGE_LOG_LEVEL": "WARNING",
        "NUDGE_TOKEN_HMAC_KEY": "b" * 64,
        "NUDGE_UNSUBSCRIBE_KEY": "k" * 32,
        **{f"NUDGE_{name.upper()}": str(value) for name, value in settings.items()},
    }


@dataclass
class Stack:
    """A run's database (migrated), topics, data folder and the benchmark's own runtime
    on them; and the services started on it (:meth:`start`)."""

    url: str
    prefix: str
    work: Path
    settings: Settings
    runtime: Runtime
    services: list[Service] = field(default_factory=list)

    async def start(self, command: str, **settings: str | int | float) -> Service:
        """``nudge <command>`` on the run's stack, ``NUDGE_<NAME>`` for each of ``settings``."""
        env = service_env(self.url, self.prefix, self.work, **settings)
        service = Service(command, env, self.work / f"{command}-{len(self.services)}.log")
        self.services.append(service)
        await service.start()
        return service

    def alive(self) -> None:
        for service in self.services:
            service.alive()

    async def joined(self, group: str, count: int, timeout: float) -> None:
        """Wait until ``count`` services are members of the stable consumer ``group``."""

        async def stable() -> bool:
            self.alive()
            return await members(self.settings.group(group)) == count

        await until(stable, timeout, f"{count} members in the {group} group", 0.2)


@contextlib.asynccontextmanager
async def stack(name: str) -> AsyncIterator[Stack]:
    """A :class:`Stack` for the run ``name``; every part of it gone afterwards, its
    services stopped first (their peak memory read then)."""
    prefix = unique(f"bench{name}")
    work = Path(tempfile.mkdtemp(prefix=f"nudge-bench-{name}-"))
    try:
        async with database(f"bench_{name}_") as url:
            await upgrade_async(url)
            settings = kafka_settings(url, prefix, work)
            runtime = await bootstrap(settings)  # makes the topics, as a deployment's would
            running = Stack(url, prefix, work, settings, runtime)
            try:
                yield running
            finally:
                for service in running.services:
                    await service.stop()
                await runtime.close()
                await delete_topics([settings.topic(topic) for topic in TOPICS])
    finally:
        shutil.rmtree(work, ignore_errors=True)
