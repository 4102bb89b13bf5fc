"""The dispatcher process is killed (SIGKILL) while a provider holds its message, then
started again: an SMS is delivered exactly once per idempotency key, an email at most once.

The dispatcher runs as production runs it, ``nudge dispatcher`` in a process of its own
on Kafka and PostgreSQL; ingest and the segmenter run in the test's process. The
providers are real servers on 127.0.0.1 that take the message and then hold their
answer, so the kill lands after the provider received the message and before the
dispatcher recorded the outcome: the test waits for the provider to have it, never
for a guessed time. The message's in-flight guard (``in_flight_timeout``, ten real
minutes) is made due by moving its ``due_at`` to now: the minutes pass.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import update

from services.bootstrap import bootstrap
from services.ingest.app import create_app
from services.segmenter.service import SegmenterService
from shared.adapters.store import schema
from shared.adapters.store.definitions import SqlDefinitions
from shared.domain.campaigns import BUILTIN_CAMPAIGNS
from shared.ports.store import MessageRecord
from shared.settings import Settings
from tests.e2e.stacks import RunningStack, identify
from tests.support.http import serving
from tests.support.ports import free_port
from tests.support.providers import FakeProvider, FakeTwilio, running
from tests.support.smtp import Mailbox
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.fault]

ROOT = Path(__file__).resolve().parents[2]
BUYERS = [
    {"id": "shop-anna", "email": "anna@example.com", "phone": "+79161234501"},
    {"id": "shop-boris", "email": "boris@example.com", "phone": "+79161234502"},
    {"id": "shop-vera", "email": "vera@example.com", "phone": "+79161234503"},
]


class HeldReplies(Mailbox):
    """Keeps each message as DATA ends, then holds the final reply until released."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        await asyncio.get_running_loop().run_in_executor(None, self.released.wait)
        return answer


@pytest.fixture
def mailbox() -> Iterator[tuple[HeldReplies, int]]:
    """A real SMTP server (aiosmtpd) whose replies to DATA wait for ``released``."""
    held = HeldReplies()
    port = free_port()
    controller = Controller(held, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield held, port
    finally:
        held.released.set()
        controller.stop()


@pytest.fixture
async def twilio() -> AsyncIterator[FakeProvider]:
    async with running(FakeTwilio()) as fake:
        yield fake


@pytest.fixture
def environment(
    kafka_settings: Settings,
    tmp_path: Path,
    twilio: FakeProvider,
    mailbox: tuple[HeldReplies, int],
) -> dict[str, str]:
    """The dispatcher process's settings: this test's topics, database and providers."""
    assert kafka_settings.database_url is not None
    return {
        **os.environ,
        "NUDGE_BUS": "kafka",
        "NUDGE_KAFKA_BOOTSTRAP": kafka_settings.kafka_bootstrap,
        "NUDGE_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "NUDGE_GROUP_PREFIX": kafka_settings.group_prefix,
        "NUDGE_DATABASE_URL": kafka_settings.database_url,
        "NUDGE_DATA_DIR": str(tmp_path / "dispatcher"),
        "NUDGE_POLL_TIMEOUT": "0.2",
        "NUDGE_TIMER_INTERVAL": "0.2",
        "NUDGE_LOG_LEVEL": "INFO",
        "NUDGE_UNSUBSCRIBE_KEY": "fault-test-unsubscribe-key-0123456789abcdef",
        # The process runs on the real clock: no quiet hours, whatever the hour of the run.
        "NUDGE_QUIET_HOURS_START": "09:00",
        "NUDGE_QUIET_HOURS_END": "09:00",
        "NUDGE_EMAIL": "smtp",
        "NUDGE_SMTP_HOST": "127.0.0.1",
        "NUDGE_SMTP_PORT": str(mailbox[1]),
        "NUDGE_SMS": "http",
        "NUDGE_SMS_BASE_URL": twilio.url,
        "NUDGE_SMS_ACCOUNT_SID": FakeTwilio.account_sid,
        "NUDGE_SMS_AUTH_TOKEN": twilio.credential,
    }


@pytest.fixture
async def shop(kafka_settings: Settings) -> AsyncIterator[RunningStack]:
    """Ingest over HTTP and the segmenter, in this process, on the system clock."""
    runtime = await bootstrap(kafka_settings, migrate=False)
    publisher = runtime.bus.publisher()
    _key, secret = await runtime.api_keys.create("fault shop backend", ["events:write"])
    segmenter = SegmenterService(runtime)
    try:
        async with (
            serving(create_app(kafka_settings, publisher, runtime.api_keys)) as base_url,
            httpx.AsyncClient(
                base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {secret}"}
            ) as http,
        ):
            stack = RunningStack(runtime, http, segmenter=segmenter)
            await segmenter.start()
            stack.tasks = [asyncio.create_task(segmenter.run())]
            try:
                yield stack
            finally:
                await stack.stop_services()
    finally:
        await publisher.close()
        await runtime.close()


class Dispatchers:
    """``nudge dispatcher`` processes, started one after another; all stopped at the end."""

    def __init__(self, environment: dict[str, str], log: Path) -> None:
        self.environment = environment
        self.log = log
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(self) -> asyncio.subprocess.Process:
        with self.log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.cli",
                "dispatcher",
                cwd=ROOT,
                env=self.environment,
                stdout=out,
                stderr=out,
            )
        self.processes.append(process)
        return process

    async def stop_all(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await process.wait()


@pytest.fixture
async def dispatchers(environment: dict[str, str], tmp_path: Path) -> AsyncIterator[Dispatchers]:
    started = Dispatchers(environment, tmp_path / "dispatcher.log")
    try:
        yield started
    finally:
        await started.stop_all()


async def welcome_on(shop: RunningStack, channel: str) -> None:
    """The ready-made welcome campaign, active with no holdout, on ``channel`` only."""
    (welcome,) = [c for c in BUILTIN_CAMPAIGNS if c.key == "welcome-lead"]
    definitions = SqlDefinitions(shop.runtime.store.engine)
    templates = {"email": "welcome-email", "sms": "welcome-sms"}
    if channel == "sms":
        await definitions.templates.put(
            "welcome-sms",
            channel="sms",
            content={"text": "Welcome! 5% off your first order: code WELCOME5."},
            expected_version=None,
        )
    definition = {
        **welcome.to_dict(),
        "holdout": 0,
        "channels": [channel],
        "templates": {channel: templates[channel]},
    }
    await definitions.campaigns.put(
        "welcome-lead", definition=definition, status="active", expected_version=None
    )


async def sign_up(shop: RunningStack, buyers: list[dict[str, str]]) -> None:
    """Each buyer identifies: a new lead, whom the welcome campaign greets."""
    now = shop.runtime.clock.now()
    events = [identify(f"{b['id']}-signs-up", now, customer=b) for b in buyers]
    assert (await shop.post(*events)).status_code == 202


async def welcome_messages(shop: RunningStack) -> list[MessageRecord]:
    async with shop.runtime.store.unit_of_work() as uow:
        return [m for m in await uow.messages.all() if m.campaign == "welcome-lead"]


async def rows_become(
    shop: RunningStack, count: int, *, status: str, reason: str | None = None
) -> None:
    async def there() -> bool:
        rows = [
            m
            for m in await welcome_messages(shop)
            if m.status == status and (reason is None or m.reason == reason)
        ]
        return len(rows) == count

    await eventually(there, timeout=60, what=f"{count} welcome messages {status} {reason or ''}")


async def the_in_flight_timeout_passes(shop: RunningStack, key: str) -> None:
    """Make the message's in-flight guard due now, as ten real minutes would."""
    async with shop.runtime.store.engine.begin() as conn:
        moved = await conn.execute(
            update(schema.scheduled_sends)
            .where(schema.scheduled_sends.c.key == key)
            .values(due_at=shop.runtime.clock.now())
        )
    assert moved.rowcount == 1, "the guard of the message in flight"


async def kill(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)
    await process.wait()


async def test_an_sms_in_flight_when_the_dispatcher_is_killed_is_delivered_exactly_once(
    shop: RunningStack, dispatchers: Dispatchers, twilio: FakeProvider
) -> None:
    first_buyer, *others = BUYERS
    await welcome_on(shop, "sms")
    twilio.hang()
    first = await dispatchers.start()
    await sign_up(shop, [first_buyer])

    async def provider_has_it() -> bool:
        return len(twilio.requests) == 1

    await eventually(provider_has_it, timeout=60, what="the provider to receive the SMS")
    await kill(first)
    (in_flight,) = await welcome_messages(shop)
    assert (in_flight.status, in_flight.channel) == ("sending", "sms")
    assert twilio.keys_seen() == [in_flight.key]

    twilio.release()
    await dispatchers.start()
    await sign_up(shop, others)
    await rows_become(shop, len(others), status="sent")
    await the_in_flight_timeout_passes(shop, in_flight.key)
    await rows_become(shop, len(BUYERS), status="sent")

    keys = twilio.keys_seen()
    assert set(keys) == {m.key for m in await welcome_messages(shop)}
    assert keys.count(in_flight.key) == 2, "sent again with the same key after the restart"
    assert len(twilio.delivered) == len(BUYERS)
    assert sorted(p["To"] for p in twilio.delivered.values()) == sorted(b["phone"] for b in BUYERS)
    async with shop.runtime.store.unit_of_work() as uow:
        assert await uow.schedule.count_pending() == 0


async def test_an_email_taken_by_the_server_before_the_kill_is_not_sent_again(
    shop: RunningStack, dispatchers: Dispatchers, mailbox: tuple[HeldReplies, int]
) -> None:
    held, _port = mailbox
    first_buyer, *others = BUYERS
    await welcome_on(shop, "email")
    first = await dispatchers.start()
    await sign_up(shop, [first_buyer])

    async def server_has_it() -> bool:
        return held.count() == 1

    await eventually(server_has_it, timeout=60, what="the SMTP server to take the email")
    await kill(first)
    (in_flight,) = await welcome_messages(shop)
    assert (in_flight.status, in_flight.channel) == ("sending", "email")

    held.released.set()
    await dispatchers.start()
    await sign_up(shop, others)
    await rows_become(shop, len(others), status="sent")
    await the_in_flight_timeout_passes(shop, in_flight.key)
    await rows_become(shop, 1, status="sending", reason="outcome_unknown")

    mailed = sorted(m["To"] for m in held.messages)
    assert mailed == sorted(b["email"] for b in BUYERS), "each buyer got one email, none twice"
    async with shop.runtime.store.unit_of_work() as uow:
        assert await uow.schedule.count_pending() == 0
