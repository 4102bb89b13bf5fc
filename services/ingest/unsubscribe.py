"""Unsubscribe links (RFC 8058): a buyer leaves a channel with one click, no login.

Every marketing email carries ``<public url>/v1/unsubscribe/<token>``, the token
signed by the dispatcher (:mod:`shared.domain.unsubscribe`):

- ``GET`` answers a small page that asks to confirm, with a button that posts
  the form below; it changes nothing, as mail scanners follow links;
- ``POST`` with the form body ``List-Unsubscribe=One-Click`` (urlencoded or
  multipart, as RFC 8058 mail clients send it) publishes an ``unsubscribed``
  event for the buyer the token names (``customer.profile_id``) and answers a
  page saying it is done.

Neither needs an API key: the token is the authority. A token that nudge did
not sign, or that was altered, is 400 ``bad-token``.
"""

from __future__ import annotations

import hashlib
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from services.http.bodies import read_body
from services.http.problems import Problem
from services.ingest.intake import EventPublisher
from shared.domain.events import UnsubscribedEvent
from shared.domain.unsubscribe import BadToken, Unsubscription, verify
from shared.ports.clock import Clock

__all__ = ["unsubscribe_router"]

_MAX_FORM_BYTES = 64 * 1024
_CHANNEL_NAMES = {"email": "emails", "sms": "text messages", "push": "push notifications"}

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto; padding: 0 1em">
<h1>{title}</h1>
{body}
</body>
</html>
"""


def unsubscribe_router(key: bytes, clock: Clock, events: EventPublisher) -> APIRouter:
    """The unsubscribe routes, checking tokens with ``key`` and dating events by ``clock``."""
    router = APIRouter()

    @router.get(
        "/v1/unsubscribe/{token}",
        response_class=HTMLResponse,
        summary="The page behind an unsubscribe link: asks to confirm, changes nothing",
        responses={400: {"description": "bad-token: not a link nudge made, or altered"}},
    )
    async def confirm_page(token: str) -> HTMLResponse:
        what = _verified(token, key, events)
        channel = escape(_CHANNEL_NAMES[what.channel])
        return _page(
            "Unsubscribe",
            f"<p>Stop receiving {channel} from us?</p>"
            f'<form method="post" action="{escape(token)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<button type="submit">Unsubscribe</button></form>',
        )

    @router.post(
        "/v1/unsubscribe/{token}",
        response_class=HTMLResponse,
        summary="One-click unsubscribe (RFC 8058): publishes an unsubscribed event",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    media: {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}
                            },
                            "required": ["List-Unsubscribe"],
                        }
                    }
                    for media in ("application/x-www-form-urlencoded", "multipart/form-data")
                },
            }
        },
        responses={
            400: {"description": "bad-token: not a link nudge made, or altered"},
            422: {"description": "the body is not List-Unsubscribe=One-Click"},
            503: {"description": "broker-unavailable: try again"},
        },
    )
    async def one_click(token: str, request: Request) -> HTMLResponse:
        what = _verified(token, key, events)
        await read_body(request, _MAX_FORM_BYTES)  # the form below parses what it kept
        async with request.form(max_files=0, max_fields=10) as form:
            one_click = form.get("List-Unsubscribe")
        if one_click != "One-Click":
            raise Problem(
                "invalid-request",
                "the request is not valid",
                [{"pointer": "/List-Unsubscribe", "detail": "expected One-Click (RFC 8058)"}],
            )
        await events.publish([_unsubscribed(token, what, clock)])
        channel = escape(_CHANNEL_NAMES[what.channel])
        return _page("You are unsubscribed", f"<p>You will receive no more {channel} from us.</p>")

    return router


def _verified(token: str, key: bytes, events: EventPublisher) -> Unsubscription:
    try:
        return verify(token, key)
    except BadToken as exc:
        events.metrics.refused.labels("bad-token").inc()
        raise Problem("bad-token", str(exc)) from None


def _unsubscribed(token: str, what: Unsubscription, clock: Clock) -> UnsubscribedEvent:
    """The event for one click: its id differs from one click to the next (a buyer who
    consented again and clicks an old link is unsubscribed again)."""
    now = clock.now()
    seed = f"{token}\n{now.isoformat()}".encode()
    data: dict[str, str] = {"channel": what.channel}
    if what.campaign is not None:
        data["campaign"] = what.campaign
    try:
        return UnsubscribedEvent.model_validate(
            {
                "event_id": "unsubscribe-" + hashlib.sha256(seed).hexdigest()[:40],
                "type": "unsubscribed",
                "occurred_at": now,
                "customer": {"profile_id": what.buyer},
                "data": data,
            }
        )
    except ValidationError:  # signed with our key, yet naming no buyer nudge could have
        raise Problem("bad-token", "the link names no buyer") from None


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=escape(title), body=body))
