"""Ingest as deployed, over real HTTP, beside raw aiokafka produce of the same records.

- nudge ingest: ``nudge ingest`` in a process of its own (uvicorn on uvloop and
  httptools, as in production) with ``NUDGE_BUS=kafka`` and its API keys in a
  PostgreSQL database made for the run (``nudge db upgrade``, then ``nudge keys
  create``). A load generator in a second process (``python -m bench.ingest load``,
  httpx over ``--connections`` concurrent connections to 127.0.0.1) posts the
  synthetic purchases (``shared/synthetic.py``) in batches of 100, each answered 202
  once the broker acknowledged its events; it times every request.
- raw baseline: the same records (key and JSON value per event), produced from this
  process with aiokafka's idempotent producer (``acks=all``, ``linger_ms=2``, as
  ingest's), in sends of 100 awaited together, as many at once as there are
  connections.

Both print events per second and the p50 and p99 of one batch's round trip; the
ratio is nudge's figure over the raw one.

- card scan (``python -m bench.ingest scan``, no Kafka needed; also printed first by
  the full run): what reading a body for card numbers costs, as ingest reads it
  (:func:`services.ingest.intake.refuse_card_numbers`), in microseconds per KiB, on
  clean bodies (the posted batches, a batch of UUID ids and epoch timestamps, the
  same JSON with every non-ASCII character escaped) and on worst-case bodies of 4 MiB
  (digits and spaces; digit runs in card groupings that fail the Luhn check; card
  numbers); the scan is one pass, so its cost per KiB does not grow with the body.

Everything is bounded: a fixed number of events, each wait with a deadline; the ingest
process, its database and every topic the run made are gone afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from rich.table import Table

from bench.common import KAFKA, Figure, console, record, report, timed, unique
from bench.stack import (
    NUDGE,
    cpu_seconds,
    database,
    delete_topics,
    end_offsets,
    peak_rss_mb,
    run_command,
)
from services.bootstrap import TOPICS
from services.http.bodies import MAX_BODY_BYTES
from services.http.problems import Problem
from services.ingest.intake import refuse_card_numbers
from shared.adapters.bus.kafka import KafkaBus
from shared.synthetic import synthetic_events

BATCH = 100
HOST = "127.0.0.1"
START_TIMEOUT = 30.0
RUN_TIMEOUT = 300.0
REPEATS = 3


# --- what is posted ----------------------------------------------------------------------


def realistic_events(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` purchases of synthetic buyers over 90 days, in time order."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    buyers = max(1, count // 3)
    while len(events := list(synthetic_events(buyers, 90, seed, start))) < count:
        buyers *= 2
    return events[:count]


def bodies(events: Sequence[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps({"events": events[i : i + BATCH]}) for i in range(0, len(events), BATCH)]


def records(events: Sequence[dict[str, Any]]) -> list[list[tuple[bytes, bytes]]]:
    """The records ingest publishes for ``events``, in sends of ``BATCH``: key, JSON value."""
    keyed = [(f"id:{e['customer']['id']}".encode(), orjson.dumps(e)) for e in events]
    return [keyed[i : i + BATCH] for i in range(0, len(keyed), BATCH)]


@dataclass(frozen=True)
class Run:
    """What one side measured: events, wall time, and each batch's round trip."""

    name: str
    events: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float | None = None
    """CPU time the measured process spent during the run, where the OS tells it."""
    peak_rss_mb: float | None = None
    """The measured process's peak resident memory (its workers' peaks added)."""

    @property
    def figure(self) -> Figure:
        return Figure(self.name, self.events, self.seconds)

    def percentile(self, p: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1]


# --- the card scan ----------------------------------------------------------------------


def _uuid4_text(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128) & ~(0xF000 << 64) | 0x4000 << 64:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _worst(text_of: Any, size: int = MAX_BODY_BYTES - 1024) -> bytes:
    """A body of about ``size`` bytes (by default just under the limit, 4 MiB) whose one
    customer id is ``text_of(size)``."""
    shell = {"type": "identify", "event_id": "e-1", "occurred_at": "2026-01-05T10:00:00+00:00"}
    return orjson.dumps({**shell, "customer": {"id": text_of(size)}})


def scan_bodies(events: Sequence[dict[str, Any]]) -> list[tuple[str, list[bytes]]]:
    """The bodies the card scan is measured on: clean ones, then the worst cases."""
    rng = random.Random(11)
    with_ids = [
        {**e, "event_id": _uuid4_text(rng), "placed_ms": rng.randint(631152000000, 4102444800000)}
        for e in events[:1000]
    ]
    batch = orjson.dumps({"events": with_ids})
    cyrillic = [{**e, "note": "Корзина: 2 шт., 1 499 ₽ — спасибо"} for e in events[:1000]]
    escaped = json.dumps({"events": cyrillic}).encode()  # ensure_ascii: \u escapes
    grouped = "4111 1111 1111 1112 "  # a card grouping that fails the Luhn check
    runs = "4111111111111112 "
    return [
        (f"clean: the posted batches ({BATCH} purchases)", bodies(events)),
        ("clean: 1000 events, UUID ids and epoch ms", [batch]),
        ("clean: 1000 events, Cyrillic, ensure_ascii", [escaped]),
        ('worst: 4 MiB of "1 1 1 ..."', [_worst(lambda n: "1 " * (n // 2))]),
        ("worst: 4 MiB of 4-4-4-4 groups, no card", [_worst(lambda n: grouped * (n // 20))]),
        ("worst: 4 MiB of 16-digit runs, no card", [_worst(lambda n: runs * (n // 17))]),
        ("worst: 4 MiB of one digit run", [_worst(lambda n: "1" * n)]),
        ("worst: 4 MiB of card numbers", [_worst(lambda n: "4111 1111 1111 1111 " * (n // 20))]),
    ]  # fmt: skip


def _screen(body: bytes) -> tuple[float, str]:
    """Seconds ingest takes to read ``body`` (already parsed) for card numbers; the verdict."""
    payload = orjson.loads(body)
    items, prefix = (payload["events"], "/events/{}") if "events" in payload else ([payload], "")
    started = time.perf_counter()
    try:
        refuse_card_numbers(items, prefix)
        verdict = "clear"
    except Problem as problem:
        verdict = "refused" + (" (bound reached)" if "too many" in problem.detail else "")
    return time.perf_counter() - started, verdict


def card_scan(events: Sequence[dict[str, Any]] | None = None) -> None:
    """Print the card scan's cost per KiB on each kind of body (see the module's docstring)."""
    table = Table(title="card scan: reading a body for card numbers, as ingest does")
    for column in ("body", "KiB", "ms", "µs per KiB", "verdict"):
        table.add_column(column, justify="left" if column in ("body", "verdict") else "right")
    for name, posted in scan_bodies(events or realistic_events(2000)):
        kib = sum(map(len, posted)) / 1024
        seconds, verdicts = float("inf"), set()
        for _ in range(REPEATS):  # the best of a few: the least disturbed by the machine
            spent = 0.0
            for body in posted:
                took, verdict = _screen(body)
                spent += took
                verdicts.add(verdict)
            seconds = min(seconds, spent)
        slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
        record(f"ingest.card_scan.{slug}", seconds * 1e6 / kib, "µs per KiB")
        table.add_row(
            name, f"{kib:,.0f}", f"{seconds * 1000:,.1f}", f"{seconds * 1e6 / kib:,.1f}",
            ", ".join(sorted(verdicts)),
        )  # fmt: skip
    console.print(table)


# --- the load generator: the second process -----------------------------------------------


async def _load(url: str, key: str, batches: list[bytes], connections: int) -> dict[str, Any]:
    pending = iter(batches)
    latencies: list[float] = []
    refusals: list[str] = []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:

        async def worker() -> None:
            for body in pending:
                started = time.perf_counter()
                response = await http.post("/v1/events", content=body)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 202:
                    refusals.append(f"{response.status_code} {response.text[:300]}")

        with timed() as elapsed:
            await asyncio.gather(*(worker() for _ in range(connections)))
    return {"seconds": elapsed.seconds, "latencies": latencies, "refusals": refusals}


def load_generator(argv: Sequence[str]) -> None:
    """``python -m bench.ingest load URL FILE CONNECTIONS``; the key in ``BENCH_INGEST_KEY``."""
    url, path, connections = argv
    key = os.environ["BENCH_INGEST_KEY"]
    batches = Path(path).read_bytes().splitlines()
    try:
        import uvloop  # noqa: PLC0415 - the generator should not be the bottleneck

        result = uvloop.run(_load(url, key, batches, int(connections)))
    except ImportError:  # pragma: no cover - platforms without uvloop
        result = asyncio.run(_load(url, key, batches, int(connections)))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


# --- the ingest process and what it needs ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


async def _stop(process: asyncio.subprocess.Process, timeout: float = 15) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()


async def _answers(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/readyz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"nudge ingest did not get ready at {url}")
            await asyncio.sleep(0.1)


async def _warm(url: str, key: str, event: dict[str, Any]) -> None:
    """One request first: ingest's producer connects to the broker on the first one."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
        response = await http.post("/v1/events", content=orjson.dumps({"events": [event]}))
        response.raise_for_status()


async def nudge_ingest(
    events: list[dict[str, Any]], connections: int, work: Path, workers: int = 1
) -> Run:
    prefix = unique("benchingest")
    port = _free_port()
    url = f"http://{HOST}:{port}"
    async with database("bench_ingest_") as database_url:
        env = {
            **os.environ,
            "NUDGE_BUS": "kafka",
            "NUDGE_KAFKA_BOOTSTRAP": KAFKA,
            "NUDGE_DATABASE_URL": database_url,
            "NUDGE_DATA_DIR": str(work),
            "NUDGE_TOPIC_PREFIX": prefix,
            "NUDGE_GROUP_PREFIX": prefix,
            "NUDGE_TOKEN_HMAC_KEY": secrets.token_hex(32),
            # One client pushing as fast as it can: not throttled.
            "NUDGE_RATE_LIMIT_PER_SECOND": "1000000",
            "NUDGE_RATE_LIMIT_BURST": "1000000",
            "NUDGE_LOG_LEVEL": "WARNING",
        }
        await run_command(str(NUDGE), "db", "upgrade", env=env)
        create = ("keys", "create", "--name", "bench", "--scope", "events:write")
        key = (await run_command(str(NUDGE), *create, env=env)).strip()
        payload = work / "batches.jsonl"
        payload.write_bytes(b"\n".join(bodies(events)))
        load = (sys.executable, "-m", "bench.ingest", "load", url, str(payload), str(connections))
        log_path = work / "ingest.log"
        with log_path.open("wb") as log:
            ingest = await asyncio.create_subprocess_exec(
                str(NUDGE), "ingest", "--host", HOST, "--port", str(port),
                "--workers", str(workers), env=env, stdout=log, stderr=log,
            )  # fmt: skip
            try:
                await _answers(url)
                await _warm(url, key, events[0])
                cpu_before = cpu_seconds(ingest.pid)
                output = await run_command(
                    *load, env={**env, "BENCH_INGEST_KEY": key}, timeout=RUN_TIMEOUT
                )
                cpu_after = cpu_seconds(ingest.pid)
                peak = peak_rss_mb(ingest.pid)
            except BaseException:
                console.print(log_path.read_text(errors="replace")[-4000:], markup=False)
                raise
            finally:
                await _stop(ingest)
        try:
            landed = sum((await end_offsets(f"{prefix}.events")).values())  # a new topic
        finally:
            await delete_topics([f"{prefix}.{topic}" for topic in TOPICS])
    result = orjson.loads(output)
    if result["refusals"]:
        raise RuntimeError(f"{len(result['refusals'])} batches refused: {result['refusals'][:3]}")
    if landed != len(events) + 1:  # and the warm-up event
        raise RuntimeError(f"{len(events) + 1} events accepted, {landed} on the topic")
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Run(
        "nudge ingest (HTTP, 202 after acks)",
        len(events),
        result["seconds"],
        result["latencies"],
        cpu_seconds=cpu,
        peak_rss_mb=peak,
    )


async def raw_produce(events: list[dict[str, Any]], connections: int) -> Run:
    topic = unique("bench.raw.")
    await KafkaBus(KAFKA).ensure_topics([topic])
    pending = iter(records(events))
    latencies: list[float] = []
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA, enable_idempotence=True, acks="all", linger_ms=2
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"warm", key=b"warm")

        async def sender() -> None:
            for batch in pending:
                started = time.perf_counter()
                acks = [await producer.send(topic, value, key=key) for key, value in batch]
                await asyncio.gather(*acks)
                latencies.append(time.perf_counter() - started)

        with timed() as elapsed:
            await asyncio.gather(*(sender() for _ in range(connections)))
    finally:
        await producer.stop()
        await delete_topics([topic])
    return Run("raw aiokafka produce (acks=all)", len(events), elapsed.seconds, latencies)


def _latencies(rows: list[tuple[Run, Run]]) -> None:
    """Print each run's p50 and p99 of one batch's round trip beside the raw baseline's."""
    table = Table(title=f"round trip of one batch of {BATCH} events; raw: aiokafka produce")
    columns = ("measure", "batches", "p50 ms", "p99 ms", "raw p50 ms", "raw p99 ms")
    for column in (*columns, "p50 ratio", "p99 ratio"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for run, raw in rows:
        table.add_row(
            run.name,
            str(len(run.latencies)),
            *(f"{run.percentile(p) * 1000:.1f}" for p in (50, 99)),
            *(f"{raw.percentile(p) * 1000:.1f}" for p in (50, 99)),
            *(f"{run.percentile(p) / raw.percentile(p):.2f}" for p in (50, 99)),
        )
    console.print(table)


async def main(count: int, connections: int = 8, workers: int = 1) -> None:
    events = realistic_events(max(BATCH, count - count % BATCH))
    console.print(
        f"ingest benchmark: {len(events)} purchase events in batches of {BATCH}, "
        f"{connections} connections, {workers} ingest worker processes, Kafka {KAFKA}"
    )
    card_scan(events)
    with tempfile.TemporaryDirectory(prefix="nudge-bench-ingest-") as work:
        nudge = await nudge_ingest(events, connections, Path(work), workers)
    raw = await raw_produce(events, connections)
    report(
        "events through nudge ingest over HTTP (real Kafka, PostgreSQL keys)",
        [(Figure(nudge.name, nudge.events, nudge.seconds, "ingest.http"), raw.figure)],
    )
    _latencies([(nudge, raw)])
    for p in (50, 99):
        record(
            f"ingest.http_p{p}_ms",
            nudge.percentile(p) * 1000,
            "ms",
            baseline=raw.percentile(p) * 1000,
            baseline_name=raw.name,
            n=len(nudge.latencies),
        )
    if nudge.peak_rss_mb is not None:
        record("ingest.peak_rss_mb", nudge.peak_rss_mb, "MB", n=workers)
    if nudge.cpu_seconds is not None:
        console.print(
            f"nudge ingest used {nudge.cpu_seconds:.2f} CPU seconds in {nudge.seconds:.2f} s "
            f"({nudge.cpu_seconds / nudge.seconds:.0%} of one core, {workers} worker processes)"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["scan"]:
        card_scan()
        sys.exit()
    if sys.argv[1:2] != ["load"]:
        sys.exit(
            "usage: python -m bench.ingest scan | load URL FILE CONNECTIONS (see python -m bench)"
        )
    load_generator(sys.argv[2:])
