"""The dispatcher's messages per second, segment changes to an SMTP server and an SMS API.

2,000 buyers, each with an email address and a phone, their one order 40 days
before the clock (midday UTC, 1 June 2026: outside the quiet hours of 21:00 to
09:00 in their zone, UTC; each buyer gets one message, well under the caps). The
real segmenter's handler applies those orders (untimed), so every buyer enters
``no-order-30d``, and its outbox relay publishes the segment changes (the entries,
and the lifecycle ones no campaign reads) to the run's segment-changes topic on
Kafka. Then the dispatcher service runs as deployed (``DispatcherService.run``:
consumer group, batches of 100 changes, campaign decision, message row committed
``sending`` before the provider is called, outcome after), with one campaign per
channel, in two runs, each with a PostgreSQL database and topics of its own:

- email: the built-in ``win-back-30d`` (email on entering ``no-order-30d``)
  through ``SmtpProvider`` (``NUDGE_EMAIL=smtp``) to an aiosmtpd server the
  benchmark starts on 127.0.0.1 (in a thread of its own);
- sms: its SMS variant (``channels: ["sms"]``, a win-back SMS template), stored
  as the console stores them (``SqlDefinitions``: the template, the campaign
  active, the built-in email one paused), through the Twilio-shaped provider
  (``NUDGE_SMS=http``, retries and breaker included) to a Starlette app under
  uvicorn on 127.0.0.1 (a thread of its own) that answers ``POST
  /2010-04-01/Accounts/{sid}/Messages.json`` with 201 and a ``sid``.

Timed from the first message the server receives to the last; the run fails
unless the server received exactly one message per buyer and every message row is
``sent``. The raw baselines, same process, same servers: the very messages the
server received, sent again in a loop, one at a time as the dispatcher sends them:
``aiosmtplib.send`` (a connection per message, as ``SmtpProvider``), and an httpx
POST on one keep-alive client (as the SMS provider), timed the same way. Ratio:
nudge's rate over the raw one. The CPU seconds the benchmark's process spent per
message (the server's thread included, in both) are printed too: steadier than the
rate on a machine shared with other work. Messages render in the dispatcher's render
worker processes (as deployed): their CPU is not in that figure. Logging at WARNING
(the dispatcher's info line per message is not counted). The databases, topics and
servers are gone afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import httpx
import uvicorn
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.common import KAFKA, Figure, console, record, report, timed, unique
from bench.stack import (
    asyncpg_dsn,
    create_database,
    database,
    delete_topics,
    drop_database,
    end_offsets,
    kafka_settings,
    lag,
    until,
)
from services.bootstrap import TOPICS, Runtime, bootstrap
from services.dispatcher.service import DispatcherService
from services.segmenter.handlers import Segmenter, relay_outbox
from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.migrate import upgrade_async
from shared.domain.campaigns import BUILTIN_CAMPAIGNS
from shared.domain.events import Channel, validate_event
from shared.domain.segments import BUILTIN_SEGMENTS
from shared.logging import configure_logging
from shared.ports.bus import Record
from shared.settings import Settings

BUYERS = 2_000
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
QUIET = datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
"""The clock of ``decide_only``: inside every buyer's quiet hours (21:00 to 09:00 UTC), so
each decision schedules its send for the morning and nothing is sent."""
CONCURRENT_SENDS = 16
"""Provider calls in flight at once per channel, as the dispatcher's
(``Delivery.concurrent_sends``, services/dispatcher/delivery.py): the raw loops' too."""
DECIDE_BATCH = 100
"""Segment changes a dispatcher batch holds: the raw decide loop's transaction size."""
HOST = "127.0.0.1"
SETUP_BATCH = 500
START_TIMEOUT = 60.0
RUN_TIMEOUT = 240.0
ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "bench-token"

WIN_BACK = next(c for c in BUILTIN_CAMPAIGNS if c.key == "win-back-30d")
SMS_TEMPLATE = "We miss you! 10% off your next order: code COMEBACK10. Stop: {{ unsubscribe_url }}"
WIN_BACK_SMS = {
    **WIN_BACK.to_dict(),
    "key": "win-back-30d-sms",
    "name": "Win-back after 30 days without an order, by SMS",
    "channels": ["sms"],
    "templates": {"sms": "win-back-sms"},
}
"""The SMS variant of the built-in win-back campaign, as a marketer stores it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --- the servers ---------------------------------------------------------------------


@dataclass
class Received:
    """What a server received, and when (``time.perf_counter``), across threads."""

    moments: list[float] = field(default_factory=list)
    payloads: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, payload: Any) -> None:
        with self.lock:
            self.moments.append(time.perf_counter())
            self.payloads.append(payload)

    def count(self) -> int:
        with self.lock:
            return len(self.moments)

    def clear(self) -> None:
        with self.lock:
            self.moments.clear()
            self.payloads.clear()

    def span(self) -> float:
        with self.lock:
            return self.moments[-1] - self.moments[0]


class _Mailbox:
    """aiosmtpd handler: keeps each message's envelope as it came."""

    def __init__(self, received: Received) -> None:
        self.received = received

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.add((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self.received = Received()
        self.port = free_port()
        self._controller = Controller(_Mailbox(self.received), hostname=HOST, port=self.port)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._controller.stop()


class SmsServer:
    """Twilio's Messages API in its shape: form in, 201 and a ``sid`` out."""

    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"

    def __init__(self) -> None:
        self.received = Received()
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self._auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        app = Starlette(routes=[Route(self.path, self._messages, methods=["POST"])])
        config = uvicorn.Config(app, host=HOST, port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="bench-sms", daemon=True)

    async def _messages(self, request: Request) -> Response:
        if request.headers.get("authorization") != self._auth:
            return JSONResponse({"code": 20003, "message": "Authenticate"}, status_code=401)
        form = {name: str(value) for name, value in (await request.form()).items()}
        key = request.headers.get("i-twilio-idempotency-token", "")
        self.received.add((key, form))
        return JSONResponse({"sid": f"SM{uuid.uuid4().hex}", "status": "queued"}, status_code=201)

    async def __aenter__(self) -> SmsServer:
        self._thread.start()

        async def started() -> bool:
            return bool(self._server.started)

        await until(started, 10, "the SMS server to start")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._server.should_exit = True
        await asyncio.to_thread(self._thread.join, 10)


# --- nudge ---------------------------------------------------------------------------


def _orders(buyers: int) -> list[Record]:
    """One order per buyer, 40 days before the clock, as ingest publishes it."""
    out = []
    for n in range(buyers):
        at = NOW - timedelta(days=40, minutes=n)
        event = validate_event(
            {
                "event_id": f"bench-order-{n}",
                "type": "purchase",
                "occurred_at": at.isoformat(),
                "customer": {
                    "id": f"buyer-{n:05d}",
                    "email": f"buyer{n}@example.com",
                    "phone": f"+7916{n:07d}",
                },
                "data": {"order_id": f"order-{n}", "total": "2490.00", "currency": "RUB"},
            }
        )
        value = event.model_dump_json(exclude_none=True).encode()
        out.append(Record("events", 0, n, event.key.encode(), value))
    return out


async def _enter_buyers(settings: Settings, runtime: Runtime, buyers: int) -> None:
    """The segmenter's handler applies the orders; its relay publishes the changes."""
    segmenter = Segmenter(
        store=runtime.store,
        clock=runtime.clock,
        segments=BUILTIN_SEGMENTS,
        changes_topic=settings.topic("segment-changes"),
    )
    orders = _orders(buyers)
    for start in range(0, len(orders), SETUP_BATCH):
        await segmenter.apply_events(orders[start : start + SETUP_BATCH])
    publisher = runtime.bus.publisher()
    try:
        while await relay_outbox(runtime.store, publisher, runtime.clock):
            pass
    finally:
        await publisher.close()
    async with runtime.store.engine.connect() as conn:
        entered = await conn.scalar(
            select(func.count())
            .select_from(schema.memberships)
            .where(schema.memberships.c.segment == "no-order-30d")
        )
    if entered != buyers:
        raise RuntimeError(f"{entered} buyers in no-order-30d, not {buyers}")


async def _store_sms_campaign(runtime: Runtime) -> None:
    """As the console stores them: the SMS template and campaign, the email one paused."""
    definitions = SqlDefinitions(runtime.store.engine, clock=runtime.clock)
    await definitions.templates.put(
        "win-back-sms", channel="sms", content={"text": SMS_TEMPLATE}, expected_version=None
    )
    await definitions.campaigns.put(
        "win-back-30d-sms", definition=WIN_BACK_SMS, status="active", expected_version=None
    )
    await definitions.campaigns.put(
        WIN_BACK.key, definition=WIN_BACK.to_dict(), status="paused", expected_version=None
    )


@contextlib.asynccontextmanager
async def _dispatcher(
    channel: Channel, now: datetime, smtp: SmtpServer, sms: SmsServer, buyers: int
) -> AsyncIterator[tuple[Settings, Runtime, DispatcherService]]:
    """A run's database and topics, its buyers in ``no-order-30d`` and their changes on the
    segment-changes topic; the dispatcher service started (its consumer not yet run)."""
    name = unique("bench_dispatcher_")
    prefix = unique("bench")
    url = await create_database(name)
    data_dir = Path(tempfile.mkdtemp(prefix="nudge-bench-"))
    try:
        await upgrade_async(url)
        settings = kafka_settings(
            url,
            prefix,
            data_dir,
            email="smtp",
            smtp_host=HOST,
            smtp_port=smtp.port,
            sms="http",
            sms_base_url=sms.url,
            sms_account_sid=ACCOUNT_SID,
            sms_auth_token=AUTH_TOKEN,
            unsubscribe_key="k" * 32,
        )
        runtime = await bootstrap(settings, clock=SimulatedClock(now))
        try:
            if channel == "sms":
                await _store_sms_campaign(runtime)
            await _enter_buyers(settings, runtime, buyers)
            service = DispatcherService(runtime)
            await service.start()
            yield settings, runtime, service
        finally:
            await runtime.close()
            await delete_topics([f"{prefix}.{topic}" for topic in TOPICS])
    finally:
        await drop_database(name)
        shutil.rmtree(data_dir, ignore_errors=True)


async def dispatcher_run(
    channel: Channel, smtp: SmtpServer, sms: SmsServer, buyers: int
) -> tuple[Figure, float]:
    """The dispatcher sending the win-back message on ``channel`` to every buyer, timed at
    the server; and the CPU seconds this process spent meanwhile."""
    received = smtp.received if channel == "email" else sms.received
    received.clear()
    async with _dispatcher(channel, NOW, smtp, sms, buyers) as (_settings, runtime, service):
        task = asyncio.create_task(service.run())
        try:

            async def started() -> bool:
                return received.count() > 0

            async def done() -> bool:
                return received.count() >= buyers

            await until(started, START_TIMEOUT, f"the first {channel} message", 0.005)
            cpu_before = time.process_time()
            await until(done, RUN_TIMEOUT, f"{buyers} {channel} messages", 0.005)
            cpu = time.process_time() - cpu_before
        finally:
            service.stop()
            await asyncio.wait_for(task, 30)
        async with runtime.store.engine.connect() as conn:
            sent = await conn.scalar(
                select(func.count())
                .select_from(schema.messages)
                .where(schema.messages.c.status == "sent")
            )
    if received.count() != buyers or sent != buyers:
        raise RuntimeError(
            f"{channel}: the server received {received.count()} messages and {sent} rows "
            f"are sent, not {buyers} each"
        )
    return (
        Figure(
            f"nudge dispatcher, {channel}", buyers - 1, received.span(), f"dispatcher.{channel}"
        ),
        cpu,
    )


async def decide_only_run(smtp: SmtpServer, sms: SmsServer, buyers: int) -> Figure:
    """The dispatcher deciding every buyer's win-back email inside their quiet hours: each
    send scheduled for the morning, none sent. Timed from its first committed batch of
    segment changes until its consumer group has committed them all."""
    async with _dispatcher("email", QUIET, smtp, sms, buyers) as (settings, _runtime, service):
        ends = await end_offsets(settings.topic("segment-changes"))
        group = settings.group("dispatcher")
        total = sum(ends.values())
        first = total
        task = asyncio.create_task(service.run())
        try:

            async def started() -> bool:
                nonlocal first
                first = await lag(group, ends)
                return first < total

            async def done() -> bool:
                return await lag(group, ends) == 0

            await until(started, START_TIMEOUT, "the dispatcher's first batch", 0.01)
            with timed() as deciding:
                await until(done, RUN_TIMEOUT, f"{total} segment changes decided", 0.02)
        finally:
            service.stop()
            await asyncio.wait_for(task, 30)
    if smtp.received.count():
        raise RuntimeError(f"{smtp.received.count()} emails sent inside the quiet hours")
    # The changes' share of the buyers' entries: the decisions the timed part made.
    decided = round(buyers * first / total)
    return Figure("nudge dispatcher, decisions (none sent)", decided, deciding.seconds,
                  "dispatcher.decide_only")  # fmt: skip


# --- the raw baselines ---------------------------------------------------------------


async def raw_smtp(smtp: SmtpServer) -> tuple[Figure, float]:
    """The messages the server received, sent again over ``CONCURRENT_SENDS`` aiosmtplib
    connections kept open (a pool, as the dispatcher's), one message at a time each."""
    messages = list(smtp.received.payloads)
    pending = iter(messages)
    smtp.received.clear()
    cpu_before = time.process_time()

    async def connection() -> None:
        client = aiosmtplib.SMTP(hostname=HOST, port=smtp.port)
        await client.connect()
        try:
            for sender, recipients, content in pending:
                await client.sendmail(sender, recipients, content)
        finally:
            await client.quit()

    await asyncio.gather(*(connection() for _ in range(CONCURRENT_SENDS)))
    if smtp.received.count() != len(messages):
        raise RuntimeError(f"raw smtp: {smtp.received.count()} received of {len(messages)}")
    cpu = time.process_time() - cpu_before
    name = f"raw aiosmtplib, {CONCURRENT_SENDS} connections kept open"
    return Figure(name, len(messages) - 1, smtp.received.span()), cpu


async def raw_http(sms: SmsServer) -> tuple[Figure, float]:
    """The SMS the server received, posted again with httpx, ``CONCURRENT_SENDS`` at once
    on one keep-alive client (as the SMS provider's)."""
    messages = list(sms.received.payloads)
    pending = iter(messages)
    sms.received.clear()
    cpu_before = time.process_time()
    limits = httpx.Limits(
        max_connections=CONCURRENT_SENDS, max_keepalive_connections=CONCURRENT_SENDS
    )
    async with httpx.AsyncClient(
        base_url=sms.url, auth=(ACCOUNT_SID, AUTH_TOKEN), limits=limits
    ) as client:

        async def sender() -> None:
            for key, form in pending:
                response = await client.post(
                    sms.path, data=form, headers={"I-Twilio-Idempotency-Token": key}
                )
                response.raise_for_status()

        await asyncio.gather(*(sender() for _ in range(CONCURRENT_SENDS)))
    if sms.received.count() != len(messages):
        raise RuntimeError(f"raw http: {sms.received.count()} received of {len(messages)}")
    cpu = time.process_time() - cpu_before
    name = f"raw httpx POST, {CONCURRENT_SENDS} at once, one client"
    return Figure(name, len(messages) - 1, sms.received.span()), cpu


_DECIDE_SCHEMA = (
    "CREATE TABLE profiles (id text PRIMARY KEY, email text, phone text)",
    "CREATE TABLE messages (key text PRIMARY KEY, profile_id text NOT NULL, "
    "campaign text NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL)",
    "CREATE INDEX ON messages (profile_id, created_at)",
    "CREATE TABLE scheduled (key text PRIMARY KEY, due_at timestamptz NOT NULL, "
    "context jsonb NOT NULL)",
)


async def raw_decide(buyers: int) -> Figure:
    """asyncpg deciding the same ``buyers`` sends set-wise, ``DECIDE_BATCH`` a transaction:
    the batch's buyers locked, their recent messages counted (the caps), a message row
    and a scheduled send written for each, one statement each."""
    async with database("bench_decide_") as url:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            for statement in _DECIDE_SCHEMA:
                await conn.execute(statement)
            ids = [f"buyer-{n:05d}" for n in range(buyers)]
            await conn.copy_records_to_table(
                "profiles",
                records=[(b, f"{b}@example.com", f"+7916{n:07d}") for n, b in enumerate(ids)],
            )
            morning = QUIET + timedelta(hours=10)
            with timed() as deciding:
                for start in range(0, buyers, DECIDE_BATCH):
                    batch = ids[start : start + DECIDE_BATCH]
                    keys = [f"win-back-30d:{b}:1" for b in batch]
                    async with conn.transaction():
                        await conn.fetch(
                            "SELECT id, email, phone FROM profiles WHERE id = ANY($1) "
                            "ORDER BY id FOR UPDATE",
                            batch,
                        )
                        await conn.fetch(
                            "SELECT profile_id, count(*) FROM messages WHERE profile_id = ANY($1) "
                            "AND created_at > $2 GROUP BY profile_id",
                            batch,
                            QUIET - timedelta(days=7),
                        )
                        await conn.execute(
                            "INSERT INTO messages SELECT k, p, 'win-back-30d', 'scheduled', $3 "
                            "FROM unnest($1::text[], $2::text[]) AS t(k, p)",
                            keys,
                            batch,
                            QUIET,
                        )
                        await conn.execute(
                            "INSERT INTO scheduled SELECT k, $2, '{}'::jsonb "
                            "FROM unnest($1::text[]) AS t(k)",
                            keys,
                            morning,
                        )
        finally:
            await conn.close()
    return Figure(
        f"raw asyncpg set-wise decide (lock, caps, write; tx per {DECIDE_BATCH})",
        buyers,
        deciding.seconds,
    )


async def main(buyers: int = BUYERS) -> None:
    configure_logging("WARNING")
    console.print(
        f"dispatcher benchmark: {buyers:,} buyers entering no-order-30d, one message each, "
        f"per channel; Kafka {KAFKA}, SMTP and SMS servers on {HOST}"
    )
    with SmtpServer() as smtp:
        async with SmsServer() as sms:
            email, email_cpu = await dispatcher_run("email", smtp, sms, buyers)
            raw_email, raw_email_cpu = await raw_smtp(smtp)
            text, text_cpu = await dispatcher_run("sms", smtp, sms, buyers)
            raw_text, raw_text_cpu = await raw_http(sms)
            smtp.received.clear()
            deciding = await decide_only_run(smtp, sms, buyers)
    decide_raw = await raw_decide(buyers)
    report(
        "campaign messages from segment changes (real Kafka, PostgreSQL; servers on 127.0.0.1)",
        [
            (email, raw_email),
            (text, raw_text),
            (deciding, decide_raw),
            (raw_email, None),
            (raw_text, None),
            (decide_raw, None),
        ],
    )
    for figure, cpu, raw, raw_cpu in (
        (email, email_cpu, raw_email, raw_email_cpu),
        (text, text_cpu, raw_text, raw_text_cpu),
    ):
        mine, theirs = cpu / figure.count * 1000, raw_cpu / raw.count * 1000
        record(
            f"{figure.key}_cpu_ms",
            mine,
            "ms CPU per message",
            baseline=theirs,
            baseline_name=raw.name,
            n=figure.count,
        )
        console.print(
            f"{figure.name}: {mine:.1f} ms of this process's CPU per message, "
            f"{raw.name} {theirs:.1f} ms ({mine / theirs:.1f}×; the server's thread in both)"
        )
