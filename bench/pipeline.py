"""Purchase to message at a fixed offered rate: the segmenter and the dispatcher as deployed.

For each rate of ``--rates`` (200 and 1,000 purchases a second by default), for
``--seconds`` (10 by default): first purchases of new buyers (an email address each),
published straight to the run's events topic as ingest publishes them (key
``id:<customer>``, the event's JSON; ingest's HTTP side is the ``ingest`` benchmark's),
at the rate, in a send every 10 ms of the purchases due by then. ``nudge segmenter``
and ``nudge dispatcher`` run in processes of their own (their system clock; the
buyers' time zone one where it is midday now, so no quiet hours), on a PostgreSQL
database and topics of the run's own, with one campaign stored active as the console
stores it: an email on entering ``lifecycle-new`` (a first order), no delay, no
holdout, through ``SmtpProvider`` to an aiosmtpd server the benchmark runs on
127.0.0.1. Each purchase's latency: from the moment it was offered (just before its
send to Kafka) to the moment the server received its buyer's message; p50 and p99 of
them (``pipeline.e2e_p50_ms@<rate>``, ``pipeline.e2e_p99_ms@<rate>``). Messages not
received within the drain deadline count at that deadline (the figure is then a lower
bound, and the run says how many). The services' peak resident memory is read before
they stop (``dispatcher.peak_rss_mb``: the highest rate's run, its render workers'
added). The databases, topics, processes and server are gone afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from bench.common import KAFKA, console, record, unique
from bench.dispatcher import HOST, WIN_BACK, SmtpServer
from bench.segmenter import records
from bench.stack import (
    stack,
    until,
)
from shared.adapters.store.definitions import SqlDefinitions
from shared.logging import configure_logging

RATES = (200, 1_000)
SECONDS = 10.0
TICK = 0.01
JOIN_TIMEOUT = 90.0
DRAIN_TIMEOUT = 120.0
"""Seconds after the last purchase offered before the missing messages stop being waited for."""

FIRST_ORDER = {
    **WIN_BACK.to_dict(),
    "key": "bench-first-order",
    "name": "Thank you for a first order",
    "trigger": {"segment": "lifecycle-new", "on": "entered"},
    "reentry": "once_per_buyer",
}
"""The campaign a purchase sets off at once: an email on the first order."""


def midday_zone(now: datetime) -> str:
    """A fixed-offset zone where ``now`` is about midday: no buyer in their quiet hours."""
    offset = (12 - now.astimezone(UTC).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return f"Etc/GMT{-offset:+d}"  # the Etc zones' sign is the other way round


def purchases(rate: int, count: int) -> list[dict[str, Any]]:
    """``count`` first purchases of new buyers, occurring now."""
    at = datetime.now(UTC).isoformat()
    tag = unique("p")
    return [
        {
            "event_id": f"{tag}-{n}",
            "type": "purchase",
            "occurred_at": at,
            "customer": {"id": f"{tag}-{n}", "email": f"{tag}-{n}@example.com"},
            "data": {"order_id": f"{tag}-{n}", "total": "1990.00", "currency": "RUB"},
        }
        for n in range(count)
    ]


def percentile(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


async def rate_run(rate: int, seconds: float, smtp: SmtpServer) -> dict[str, Any]:
    """Offer ``rate`` purchases a second for ``seconds``; each one's latency to its email."""
    smtp.received.clear()
    events = purchases(rate, max(1, round(rate * seconds)))
    keyed = records(events)
    email_of = {e["customer"]["email"]: n for n, e in enumerate(events)}
    offered = [0.0] * len(events)
    async with stack("pipeline") as run:
        definitions = SqlDefinitions(run.runtime.store.engine, clock=run.runtime.clock)
        await definitions.campaigns.put(
            FIRST_ORDER["key"], definition=FIRST_ORDER, status="active", expected_version=None
        )
        await definitions.campaigns.put(
            WIN_BACK.key, definition=WIN_BACK.to_dict(), status="paused", expected_version=None
        )
        await run.start("segmenter", scoring_interval_hours=0)
        await run.start(
            "dispatcher", email="smtp", smtp_host=HOST, smtp_port=smtp.port,
            default_timezone=midday_zone(datetime.now(UTC)),
        )  # fmt: skip
        await run.joined("segmenter", 1, JOIN_TIMEOUT)
        await run.joined("dispatcher", 1, JOIN_TIMEOUT)
        publisher = run.runtime.bus.publisher()
        topic = run.settings.topic("events")
        try:
            started = time.perf_counter()
            sent = 0
            while sent < len(keyed):
                due = min(len(keyed), int((time.perf_counter() - started) * rate) + 1)
                now = time.perf_counter()
                for n in range(sent, due):
                    offered[n] = now
                await publisher.publish(topic, keyed[sent:due])
                sent = due
                pause = started + sent / rate - time.perf_counter()
                await asyncio.sleep(max(0.0, min(TICK, pause)))
            offer_seconds = time.perf_counter() - started
        finally:
            await publisher.close()

        async def delivered() -> bool:
            run.alive()
            return smtp.received.count() >= len(events)

        with contextlib.suppress(TimeoutError):  # the missing count at the deadline
            await until(delivered, DRAIN_TIMEOUT, "every message", 0.05)
        deadline = time.perf_counter()
    arrived = [deadline] * len(events)
    with smtp.received.lock:
        for moment, (_sender, recipients, _content) in zip(
            smtp.received.moments, smtp.received.payloads, strict=True
        ):
            for address in recipients:
                if address in email_of:
                    arrived[email_of[address]] = min(arrived[email_of[address]], moment)
    received = sum(1 for moment in arrived if moment < deadline)
    latencies = [(a - o) * 1000 for a, o in zip(arrived, offered, strict=True)]
    return {
        "rate": rate,
        "offered": len(events),
        "offer_rate": len(events) / offer_seconds,
        "received": received,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "rss": {s.command: s.peak_rss_mb for s in run.services},
    }


async def main(rates: list[int] | tuple[int, ...] = RATES, seconds: float = SECONDS) -> None:
    configure_logging("WARNING")
    console.print(
        f"pipeline benchmark: first purchases offered at {', '.join(map(str, rates))}/s for "
        f"{seconds:.0f} s each, straight to the events topic (as ingest publishes), through "
        f"`nudge segmenter` and `nudge dispatcher` to an SMTP server on {HOST}; Kafka {KAFKA}"
    )
    runs = []
    with SmtpServer() as smtp:
        for rate in rates:
            runs.append(await rate_run(rate, seconds, smtp))
    for run in runs:
        late = run["offered"] - run["received"]
        for p in ("p50", "p99"):
            record(f"pipeline.e2e_{p}_ms@{run['rate']}", run[p], "ms", n=run["offered"])
        console.print(
            f"{run['rate']:,}/s offered ({run['offer_rate']:,.0f}/s reached), "
            f"{run['received']:,} of {run['offered']:,} messages: purchase to message p50 "
            f"{run['p50']:,.0f} ms, p99 {run['p99']:,.0f} ms"
            + (f" (lower bounds: {late:,} not received in {DRAIN_TIMEOUT:.0f} s)" if late else "")
            + "; peak RSS "
            + ", ".join(f"{name} {mb or 0:,.0f} MB" for name, mb in run["rss"].items())
        )
    top = max(runs, key=lambda run: run["rate"])
    if top["rss"].get("dispatcher") is not None:
        record("dispatcher.peak_rss_mb", top["rss"]["dispatcher"], "MB", n=top["offered"])
