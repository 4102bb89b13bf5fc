"""The customer pages: look a buyer up by an identifier, and see them whole.

- ``GET /customers``: the lookup form (phone, email, loyalty card, the shop's id, app
  install id or nudge's profile id); with ``kind`` and ``value`` it goes to the buyer.
- ``GET /customers/{id}``: the profile, lifecycle stage, segments, predictions,
  standard basket and message history with the decision behind each message: what
  ``GET /v1/customers/{id}`` answers, for a person: each decision in words a marketer
  reads ("deferred: the frequency caps leave room soon", never ``capped_deferred``, the
  code kept as the tag's title), every time in the buyer's own time zone (their
  ``timezone`` trait, else the shop's default), to the minute. Phones and emails are
  masked unless the user is an admin.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from services.console.api.customers import customer_json, find_customer
from services.console.pages import render
from services.console.security import Analyst
from services.http.problems import Problem
from shared.domain.lifecycle import DEFAULT_POLICY, LifecyclePolicy
from shared.domain.profile import local_zone
from shared.ports.clock import Clock
from shared.ports.console import ConsoleQueries

__all__ = ["DECISION_WORDS", "decision_words", "router"]

Kind = Literal["phone", "email", "loyalty_card", "id", "app_install_id", "profile_id"]
KIND_NAMES = {  # LOOKUP_KINDS of the API, as a marketer calls them
    "phone": "phone",
    "email": "email",
    "loyalty_card": "loyalty card",
    "id": "shop's customer id",
    "app_install_id": "app install id",
    "profile_id": "nudge profile id",
}


DECISION_WORDS: Mapping[str, str] = {
    # what happened to the message
    "scheduled": "scheduled",
    "sending": "being sent",
    "sent": "sent",
    "delivered": "delivered",
    "opened": "opened",
    "clicked": "clicked",
    "failed": "failed",
    "rejected": "refused by the provider",
    "skipped": "not sent",
    "outcome_unknown": "sent, outcome unknown",
    # why: the deciding step's code
    "send_now": "sent at once",
    "delay": "waiting for the campaign's delay",
    "holdout": "held out (control group)",
    "in_holdout": "held out (control group)",
    "capped": "dropped: frequency caps full",
    "capped_deferred": "deferred: the frequency caps leave room soon",
    "quiet_hours": "moved past the buyer's quiet hours",
    "best_hour": "moved to the buyer's best hour",
    "sunset": "dropped: the buyer stopped responding (sunset)",
    "sunset_reduced": "high priority only: the buyer responds less (sunset)",
    "no_address": "no address to send to",
    "unsubscribed": "unsubscribed",
    "suppressed": "suppressed (bounced or complained)",
    "unreachable": "no channel reaches the buyer",
    "not_in_audience": "not in the campaign's audience",
    "campaign_not_live": "the campaign is not running",
    "converted": "dropped: the buyer reached the goal first",
    "left_segment": "dropped: the buyer left the segment",
    "back_in_segment": "back in the segment",
    "moment_moved": "the moment it waited for moved",
    "buyer_gone": "the buyer was merged or erased",
    "programme_gone": "the programme is gone",
    "render_failed": "the template did not render",
    "renderer_unavailable": "no renderer: tried again later",
    "provider_unavailable": "provider away: tried again later",
    "tried_again_later": "tried again later",
    "best": "best channel",
    "own": "the buyer's own channel",
    "falls_back": "fell back to the next channel",
    # the steps
    "campaign": "campaign",
    "audience": "audience",
    "consent": "consent",
    "caps": "frequency caps",
    "channel": "channel",
    "render": "template",
    "send": "send",
    "wake": "when due",
}
"""The dispatcher's codes (statuses, reasons, steps) as a marketer reads them."""

_MOMENT = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)


def decision_words(code: str | None) -> str:
    """``code`` in words (an unknown one with its underscores as spaces)."""
    if not code:
        return ""
    return DECISION_WORDS.get(code, code.replace("_", " "))


def _local(zone: tzinfo) -> Any:
    """A function reading an ISO moment (UTC when it has no offset) as local time in
    ``zone``, to the minute; ``None`` or ``""`` reads as a dash."""

    def local(value: str | None) -> str:
        if not value:
            return "–"
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    return local


def _local_text(zone: tzinfo) -> Any:
    """A function writing every ISO moment inside a text (a decision's detail) as local
    time in ``zone``, to the minute."""
    local = _local(zone)
    return lambda text: _MOMENT.sub(lambda m: local(m.group(0)), text or "")


def router(
    queries: ConsoleQueries,
    *,
    clock: Clock,
    default_region: str | None = None,
    default_timezone: str = "UTC",
    policy: LifecyclePolicy = DEFAULT_POLICY,
) -> APIRouter:
    """The customer pages on ``queries``; ``default_region`` reads phones as ingest does,
    times are shown in the buyer's zone, else ``default_timezone``."""
    pages = APIRouter(include_in_schema=False)

    @pages.get("/customers", response_class=HTMLResponse)
    async def lookup(
        request: Request,
        user: Analyst,
        kind: Annotated[Kind, Query()] = "phone",
        value: Annotated[str, Query(max_length=320)] = "",
    ) -> Response:
        problem = None
        if value.strip():
            try:
                found = await find_customer(queries, kind, value, default_region=default_region)
            except Problem as refused:
                found, problem = None, refused.detail
            if found is not None:
                return RedirectResponse(f"/customers/{found.id}", status_code=303)
            problem = problem or f"No buyer with that {KIND_NAMES[kind]}."
        return render(
            request,
            "customers.html",
            status_code=404 if problem and "No buyer" in problem else 200,
            user=user,
            kinds=KIND_NAMES,
            kind=kind,
            value=value,
            problem=problem,
        )

    @pages.get("/customers/{profile_id}", response_class=HTMLResponse)
    async def customer_page(
        request: Request, user: Analyst, profile_id: Annotated[str, Path(max_length=64)]
    ) -> Response:
        profile = await queries.find_buyer(profile_id)
        if profile is None:
            raise Problem("not-found", f"no buyer {profile_id}")
        customer = await customer_json(
            queries, profile, clock=clock, unmasked=user.has("admin"), policy=policy
        )
        zone = local_zone(profile, default_timezone)
        return render(
            request,
            "customer.html",
            user=user,
            c=customer,
            zone=str(zone),
            local=_local(zone),
            local_text=_local_text(zone),
            words=decision_words,
        )

    return pages
