"""The serving process trusts nothing a render worker sends, and gives it nothing secret:
a worker starts with a minimal environment, its answers are read without blocking the
event loop, bounded in size, and only the few classes a render answers with are rebuilt."""

from __future__ import annotations

import asyncio
import os
import pickle
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.adapters.rendering import (
    ProcessRenderer,
    decoded_answer,
    read_answer,
    write_request,
)
from shared.domain.rendering import RenderedSms, RenderError, RenderLimits, SmsTemplate
from shared.domain.sms import sms_length


@pytest.fixture
async def pool(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ProcessRenderer]:
    monkeypatch.setenv("NUDGE_DATABASE_URL", "postgresql://nudge:secret@db/nudge")
    monkeypatch.setenv("NUDGE_UNSUBSCRIBE_KEY", "hmac-secret")
    monkeypatch.setenv("SOME_PROVIDER_TOKEN", "provider-secret")
    found = ProcessRenderer(limits=RenderLimits(), timeout=10.0, workers=1)
    yield found
    await found.aclose()


async def test_a_worker_starts_without_the_serving_processes_secrets(
    pool: ProcessRenderer,
) -> None:
    rendered = await pool.message(SmsTemplate("Hello"), {})
    assert isinstance(rendered, RenderedSms)
    (worker,) = pool._workers
    environ = _environ(worker.process.pid)
    names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
    assert not {n for n in names if n.startswith("NUDGE_")}
    assert "SOME_PROVIDER_TOKEN" not in names
    assert names <= {"PATH", "PYTHONPATH", "PYTHONHASHSEED", "LANG", "LANGUAGE"} | {
        n for n in names if n.startswith("LC_")
    }


def _environ(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")


class _Hostile:
    def __reduce__(self) -> tuple[object, ...]:
        return (os.getpid, ())


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps((True, _Hostile())),
        pickle.dumps((False, KeyError("x"))),
        pickle.dumps((True, {"text": _Hostile()})),
    ],
)
def test_an_answer_is_rebuilt_only_from_the_classes_a_render_sends(payload: bytes) -> None:
    with pytest.raises(RenderError, match="not an answer"):
        decoded_answer(payload)


def test_a_rendered_message_and_a_render_error_are_rebuilt() -> None:
    sms = RenderedSms("hi", sms_length("hi"))
    assert decoded_answer(pickle.dumps((True, sms))) == (True, sms)
    ok, error = decoded_answer(pickle.dumps((False, RenderError("text", "bad", 2))))
    assert not ok
    assert isinstance(error, RenderError)
    assert (error.part, error.line) == ("text", 2)


async def test_an_answer_over_the_size_bound_is_refused_before_it_is_read() -> None:
    readable, writable = os.pipe()
    try:
        os.write(writable, struct.pack("!i", 2**31 - 1))
        with pytest.raises(RenderError, match="over"):
            await read_answer(readable, 1024)
    finally:
        os.close(readable)
        os.close(writable)


async def test_a_length_header_without_its_answer_never_blocks_the_event_loop() -> None:
    readable, writable = os.pipe()
    try:
        os.write(writable, struct.pack("!i", 1000) + b"x" * 10)
        reading = asyncio.create_task(read_answer(readable, 4096))
        others = [asyncio.create_task(asyncio.sleep(0, n)) for n in range(10)]
        assert await asyncio.gather(*others) == list(range(10))  # the loop turns meanwhile
        assert not reading.done()
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
    finally:
        os.close(readable)
        os.close(writable)


async def test_a_worker_that_stops_reading_never_blocks_the_event_loop() -> None:
    readable, writable = os.pipe()
    try:
        writing = asyncio.create_task(write_request(writable, b"x" * (1 << 20)))  # > a pipe
        others = [asyncio.create_task(asyncio.sleep(0, n)) for n in range(10)]
        assert await asyncio.gather(*others) == list(range(10))  # the loop turns meanwhile
        assert not writing.done()
        writing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writing
    finally:
        os.close(readable)
        os.close(writable)
