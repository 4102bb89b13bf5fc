"""The customer pages: look a buyer up by an identifier, and see them whole.

- ``GET /customers``: the lookup form (phone, email, loyalty card, the shop's id, app
  install id or nudge's profile id); with ``kind`` and ``value`` it goes to the buyer.
- ``GET /customers/{id}``: the profile, lifecycle stage, segments, predictions,
  standard basket and message history with the decision behind each message: what
  ``GET /v1/customers/{id}`` answers, for a person. Phones and emails are masked
  unless the user is an admin.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from services.console.api.customers import customer_json, find_customer
from services.console.pages import render
from services.console.security import Analyst
from services.http.problems import Problem
from shared.domain.lifecycle import DEFAULT_POLICY, LifecyclePolicy
from shared.ports.clock import Clock
from shared.ports.console import ConsoleQueries

__all__ = ["router"]

Kind = Literal["phone", "email", "loyalty_card", "id", "app_install_id", "profile_id"]
KIND_NAMES = {  # LOOKUP_KINDS of the API, as a marketer calls them
    "phone": "phone",
    "email": "email",
    "loyalty_card": "loyalty card",
    "id": "shop's customer id",
    "app_install_id": "app install id",
    "profile_id": "nudge profile id",
}


def router(
    queries: ConsoleQueries,
    *,
    clock: Clock,
    default_region: str | None = None,
    policy: LifecyclePolicy = DEFAULT_POLICY,
) -> APIRouter:
    """The customer pages on ``queries``; ``default_region`` reads phones as ingest does."""
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
        return render(request, "customer.html", user=user, c=customer)

    return pages
