"""One hostile request does not hold up the process: ``/healthz`` answers while it is in flight.

Issue 11: a 1 MB body of ``"1 1 1 ..."`` in ``customer.id`` kept the event loop busy
for 21 s (the card scan), and ``/healthz`` waited. The card scan is now linear (its
cost per KiB is in ``python -m bench.ingest scan``), and a large body is read and
validated in a worker thread. The probe runs the app under a real uvicorn on
127.0.0.1, holds that request in flight after its real validation has run (in the
thread it runs in), and asks ``/healthz`` meanwhile: a condition wait, no timed
assertion. Were validation on the event loop, the hold would block the loop and
``/healthz`` would not answer until it was let go.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from services.ingest import app as ingest_app
from services.ingest.intake import OFF_LOOP_BYTES
from tests.conftest import T0
from tests.e2e.stacks import identify
from tests.support.http import serving
from tests.support.waiting import eventually

HOLD_SECONDS = 30.0  # a bound on the hold, so that a failing run ends


def stall_body() -> bytes:
    """The issue's body: 1 MB of single digits and spaces in ``customer.id``."""
    body = orjson.dumps(identify("e-1", T0, customer={"id": "1 " * 500_000}))
    assert len(body) > OFF_LOOP_BYTES
    return body


async def test_healthz_answers_while_a_megabyte_of_digits_is_read(
    app: FastAPI, events_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_flight, let_go = threading.Event(), threading.Event()
    validate = ingest_app.validate_events

    def held(*args: Any, **kwargs: Any) -> Any:
        try:
            return validate(*args, **kwargs)
        finally:
            in_flight.set()
            let_go.wait(HOLD_SECONDS)

    monkeypatch.setattr(ingest_app, "validate_events", held)

    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        posted = asyncio.create_task(
            http.post(
                "/v1/events",
                content=stall_body(),
                headers={
                    "authorization": f"Bearer {events_key}",
                    "content-type": "application/json",
                },
            )
        )

        async def held_in_flight() -> bool:
            return in_flight.is_set()

        await eventually(held_in_flight, what="the 1 MB request to be read and held")
        try:
            health = await http.get("/healthz")
            still_in_flight = not posted.done()
        finally:
            let_go.set()
        response = await posted

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert still_in_flight
    assert response.status_code == 422, response.text  # an id of 1 MB is not valid
    assert response.json()["type"] == "/problems/invalid-events"
