"""Every body ingest reads is limited while it streams, and a webhook's signature headers
are checked before a byte of its body is read.

The bodies here are sent chunked, without ``Content-Length``, by the raw ASGI client
of :mod:`tests.support.chunked`, which counts what the app pulled.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from fastapi import FastAPI

from services.bootstrap import unsubscribe_key
from services.http.bodies import MAX_BODY_BYTES
from shared.adapters.bus.memory import MemoryBus
from shared.domain.unsubscribe import sign
from shared.settings import Settings
from tests.api import test_webhooks
from tests.conftest import T0
from tests.support.chunked import CHUNK, Answer, post_chunked, repeated

HUGE = 200 * 1024 * 1024
SECRET, TOPIC = test_webhooks.SECRET, test_webhooks.TOPIC
settings = test_webhooks.settings  # the webhook's secret set, as there
app = test_webhooks.app  # on the test's clock, as there


def webhook_headers(*, signature: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-nudge-timestamp": str(int(T0.timestamp())),
        "x-nudge-signature": signature,
    }


def assert_refused_while_streaming(answer: Answer) -> None:
    assert answer.status == 413, answer.body
    assert answer.problem()["type"] == "/problems/body-too-large"
    assert answer.pulled <= MAX_BODY_BYTES + CHUNK, "the app stopped reading past the limit"


async def test_an_unsigned_webhook_is_refused_before_its_body_is_read(
    app: FastAPI, bus: MemoryBus
) -> None:
    answer = await post_chunked(
        app,
        "/v1/webhooks/mailer",
        {"content-type": "application/json"},
        repeated(b'{"events": [', HUGE),
    )

    assert answer.status == 401
    assert answer.problem()["type"] == "/problems/bad-signature"
    assert answer.pulled == 0
    assert bus.records(TOPIC) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"x-nudge-timestamp": "yesterday", "x-nudge-signature": "v1=" + "0" * 64},
        {
            "x-nudge-timestamp": str(int(T0.timestamp()) - 3600),
            "x-nudge-signature": "v1=" + "0" * 64,
        },
        {"x-nudge-timestamp": str(int(T0.timestamp())), "x-nudge-signature": "v2=abc"},
    ],
    ids=["bad-timestamp", "replayed", "bad-signature-format"],
)
async def test_signature_headers_that_cannot_be_right_are_refused_before_the_body_is_read(
    app: FastAPI, headers: dict[str, str]
) -> None:
    answer = await post_chunked(
        app,
        "/v1/webhooks/mailer",
        {"content-type": "application/json", **headers},
        repeated(b"x", HUGE),
    )

    assert answer.status == 401
    assert answer.pulled == 0


async def test_a_huge_chunked_webhook_with_a_wrong_signature_is_cut_off_at_the_limit(
    app: FastAPI, bus: MemoryBus
) -> None:
    answer = await post_chunked(
        app,
        "/v1/webhooks/mailer",
        webhook_headers(signature="v1=" + "0" * 64),
        repeated(b'{"events": [', HUGE),
    )

    assert_refused_while_streaming(answer)
    assert bus.records(TOPIC) == []


async def test_a_webhook_signature_is_checked_before_the_body_is_parsed(app: FastAPI) -> None:
    body = b"this is not JSON"
    answer = await post_chunked(
        app,
        "/v1/webhooks/mailer",
        {**webhook_headers(signature="v1=" + "0" * 64), "content-type": "text/plain"},
        iter([body]),
    )
    assert answer.status == 401, "neither 400 malformed-json nor 415: the signature comes first"
    assert answer.problem()["type"] == "/problems/bad-signature"

    timestamp = str(int(T0.timestamp()))
    mac = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    signed = webhook_headers(signature=f"v1={mac.hexdigest()}")
    answer = await post_chunked(app, "/v1/webhooks/mailer", signed, iter([body]))
    assert answer.status == 400, "signed: now the body is parsed"
    assert answer.problem()["type"] == "/problems/malformed-json"


async def test_a_huge_chunked_batch_of_events_is_cut_off_at_the_limit(
    app: FastAPI, bus: MemoryBus, events_key: str
) -> None:
    answer = await post_chunked(
        app,
        "/v1/events",
        {"content-type": "application/json", "authorization": f"Bearer {events_key}"},
        repeated(b'{"events": [', HUGE),
    )

    assert_refused_while_streaming(answer)
    assert bus.records(TOPIC) == []


async def test_a_body_just_at_the_limit_is_read_whole(app: FastAPI, events_key: str) -> None:
    answer = await post_chunked(
        app,
        "/v1/events",
        {"content-type": "application/json", "authorization": f"Bearer {events_key}"},
        repeated(b" ", MAX_BODY_BYTES),
    )

    assert answer.pulled == MAX_BODY_BYTES
    assert answer.status == 400, "read to the end, then parsed: whitespace is no JSON"


async def test_a_huge_chunked_unsubscribe_form_is_cut_off(
    app: FastAPI, settings: Settings, bus: MemoryBus
) -> None:
    token = sign("0b3e2c1a-7f4d-4e5b-9a8c-1d2e3f4a5b6c", "email", None, unsubscribe_key(settings))
    answer = await post_chunked(
        app,
        f"/v1/unsubscribe/{token}",
        {"content-type": "application/x-www-form-urlencoded"},
        repeated(b"List-Unsubscribe=One-Click&", HUGE),
    )

    assert answer.status == 413
    assert answer.problem()["type"] == "/problems/body-too-large"
    assert answer.pulled <= 64 * 1024 + CHUNK
    assert bus.records(TOPIC) == []
