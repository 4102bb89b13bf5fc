"""A real ``nudge serve --embedded`` process under load, for the fault tests.

The server runs as a user runs it, in a process of its own on a data dir of the test's;
four clients post batches of purchases with unique event ids (one new buyer per event),
and note which events were answered 202, which 503, and which got no answer at all.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

from shared.adapters.bus.sqlite import SqliteBus
from shared.adapters.store import schema
from shared.adapters.store.engine import create_engine
from tests.e2e.stacks import purchase
from tests.support.ports import free_port
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 4
BATCH = 25


class EmbeddedServer:
    """``nudge serve --embedded`` processes on one data dir, one after another."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.log = data.parent / "serve.log"
        self.environment = {
            **os.environ,
            "NUDGE_DATA_DIR": str(data),
            "NUDGE_LOG_LEVEL": "WARNING",
            "NUDGE_POLL_TIMEOUT": "0.2",
            "NUDGE_RATE_LIMIT_PER_SECOND": "100000",
            "NUDGE_RATE_LIMIT_BURST": "100000",
            "NUDGE_SCORING_INTERVAL_HOURS": "0",
        }
        self.processes: list[asyncio.subprocess.Process] = []
        self.url = ""

    @property
    def db_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.data / 'nudge.db'}"

    async def create_key(self) -> str:
        """An ``events:write`` key, made as an operator makes one: ``nudge keys create``."""
        process = await asyncio.create_subprocess_exec(
            *self.command("keys", "create", "--name", "fault shop", "--scope", "events:write"),
            cwd=ROOT,
            env=self.environment,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await process.communicate()
        assert process.returncode == 0
        return out.decode().strip().splitlines()[-1]

    async def start(self) -> asyncio.subprocess.Process:
        port = free_port()
        with self.log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                *self.command("serve", "--embedded", "--port", str(port)),
                cwd=ROOT,
                env=self.environment,
                stdout=out,
                stderr=out,
            )
        self.processes.append(process)
        self.url = f"http://127.0.0.1:{port}"

        async def ready() -> bool:
            assert process.returncode is None, self.log.read_text()
            try:
                async with httpx.AsyncClient(base_url=self.url, timeout=2) as http:
                    return (await http.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, timeout=60, interval=0.1, what="nudge serve --embedded to answer")
        return process

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "services.cli", *args]

    async def stop_all(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)
                await process.wait()

    async def lag(self) -> int:
        """Events the segmenter has not committed, read from the database file."""
        bus = SqliteBus(self.data / "nudge.db")
        try:
            return await bus.lag("nudge.segmenter", ["nudge.events"])
        finally:
            await bus.close()

    async def orders_by_buyer(self) -> dict[str, int]:
        """Each buyer's orders count, as the store holds it (the buyer's id is the event's)."""
        engine = create_engine(self.db_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    select(schema.identifiers.c.value, schema.profiles.c.orders_count)
                    .join(schema.profiles, schema.profiles.c.id == schema.identifiers.c.profile_id)
                    .where(schema.identifiers.c.kind == "id")
                )
                return {str(value): int(count) for value, count in rows.all()}
        finally:
            await engine.dispose()


@dataclass
class Answers:
    accepted: set[str] = field(default_factory=set)
    """Event ids answered 202."""
    unanswered: set[str] = field(default_factory=set)
    """Event ids of requests that got no answer (the process died or refused the connection):
    each may or may not have been applied."""
    refused: set[str] = field(default_factory=set)
    """Event ids of requests answered 503: none of them may be applied."""
    after_signal: list[int] = field(default_factory=list)
    """Statuses of the requests sent after the signal that were answered."""
    refusals: list[httpx.Response] = field(default_factory=list)
    refusals_after_signal: list[httpx.Response] = field(default_factory=list)


class Load:
    """Four clients posting batches until told to stop or the server goes away."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key
        self.answers = Answers()
        self.stopping = asyncio.Event()
        self.signalled = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(CLIENTS)]

    async def finish(self) -> Answers:
        self.stopping.set()
        await asyncio.gather(*self._tasks)
        return self.answers

    async def until(self, condition: Callable[[Answers], bool]) -> None:
        async def met() -> bool:
            return condition(self.answers)

        await eventually(met, timeout=120, interval=0.02, what="enough load")

    async def _client(self, n: int) -> None:
        at = datetime.now(UTC) - timedelta(hours=1)
        headers = {"Authorization": f"Bearer {self.key}"}
        async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30) as http:
            batch = 0
            while not self.stopping.is_set():
                ids = [f"c{n}-b{batch}-e{i}" for i in range(BATCH)]
                batch += 1
                events = [purchase(e, at, customer={"id": f"buyer-{e}"}) for e in ids]
                after_signal = self.signalled
                try:
                    response = await http.post("/v1/events", json={"events": events})
                except httpx.TransportError:
                    self.answers.unanswered.update(ids)
                    return  # the server is gone
                if after_signal:
                    self.answers.after_signal.append(response.status_code)
                if response.status_code == 202:
                    self.answers.accepted.update(ids)
                else:
                    self.answers.refusals.append(response)
                    if after_signal:
                        self.answers.refusals_after_signal.append(response)
                    if response.status_code != 503:
                        raise AssertionError(f"{response.status_code}: {response.text[:300]}")
                    self.answers.refused.update(ids)
