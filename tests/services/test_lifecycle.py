"""Stopping ``nudge serve`` in order: the gate refuses from the signal on, lets the requests
in flight finish, and the drain waits for what was accepted (services/running/lifecycle.py)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from services.running.lifecycle import Gate, drain, on_stop_signal, settle_and_drain
from shared.errors import BusUnavailable


class Held:
    """An app that answers 202 once ``release`` is set."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered.set()
        await self.release.wait()
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b"accepted"})


def client(gate: Gate) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url="http://nudge")


async def test_a_closed_gate_refuses_every_request_but_healthz() -> None:
    app = Held()
    app.release.set()
    gate = Gate(app)
    async with client(gate) as http:
        assert (await http.post("/v1/events", json={})).status_code == 202
        gate.close()
        refused = await http.post("/v1/events", json={})
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "5"
        assert refused.json()["type"] == "/problems/shutting-down"
        assert (await http.get("/readyz")).status_code == 503
        assert (await http.get("/healthz")).status_code == 202


async def test_the_gate_settles_once_the_requests_in_flight_are_answered() -> None:
    app = Held()
    gate = Gate(app)
    async with client(gate) as http:
        in_flight = asyncio.create_task(http.post("/v1/events", json={}))
        await app.entered.wait()
        gate.close()
        settled = asyncio.create_task(gate.settled())
        await asyncio.sleep(0)  # one turn of the loop: the gate must still wait
        assert not settled.done()
        app.release.set()
        assert (await in_flight).status_code == 202, "accepted before the signal: answered"
        await settled


@pytest.fixture
def restored_signals() -> Iterator[None]:
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in kept.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("restored_signals")
async def test_the_gate_closes_in_the_signal_handler_itself() -> None:
    gate = Gate(Held())
    later = asyncio.Event()
    on_stop_signal(asyncio.get_running_loop(), gate.close, later.set)
    os.kill(os.getpid(), signal.SIGTERM)
    assert gate.closed, "closed before the event loop ran anything"
    await later.wait()


async def test_the_drain_waits_until_nothing_is_outstanding() -> None:
    left = [3]

    async def lag() -> int:
        left[0] = max(0, left[0] - 1)
        return left[0]

    assert await drain([lag], timeout=30, interval=0)
    assert left == [0]


async def test_the_drain_gives_up_after_its_timeout() -> None:
    async def stuck() -> int:
        return 1

    assert not await drain([stuck], timeout=0.05, interval=0)


async def test_the_drain_looks_again_when_a_look_fails() -> None:
    """Regression: a lag probe's error (the bus's database busy) ended the drain silently,
    and the consumers stopped with accepted work left."""
    looks = [0]

    async def flaky() -> int:
        looks[0] += 1
        if looks[0] == 1:
            raise BusUnavailable("the embedded bus's database failed: database is locked")
        return 0

    assert await drain([flaky], timeout=30, interval=0)
    assert looks[0] >= 3


async def test_settling_and_draining_share_one_deadline() -> None:
    """Regression: the requests in flight and the drain each had the whole drain timeout."""
    app = Held()
    gate = Gate(app)
    looked = [0]

    async def nothing_left() -> int:
        looked[0] += 1
        return 0

    async with client(gate) as http:
        in_flight = asyncio.create_task(http.post("/v1/events", json={}))
        await app.entered.wait()
        gate.close()
        assert not await settle_and_drain(gate, [nothing_left], timeout=0.05, interval=0)
        assert looked == [0], "the deadline was spent on the request in flight"
        app.release.set()
        await in_flight
        assert await settle_and_drain(gate, [nothing_left], timeout=30, interval=0)
