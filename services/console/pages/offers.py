"""The offers pages: every offer with its pool, and a form that creates one.

- ``GET /offers``: the offers, by key: kind, value, validity, where the codes come from,
  and the pool's free and issued codes.
- ``POST /offers``: create an offer (marketers) from the form's fields; a field that
  does not validate is named beside the form and nothing is saved; a key taken is
  refused. Pools are uploaded and offers changed through the API (docs/api.md#offers).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from services.console.pages import render
from services.console.security import Analyst, Marketer
from shared.domain.offers import OfferError, parse_offer
from shared.ports.definitions import StaleVersion
from shared.ports.offers import Offers

__all__ = ["router"]

Field = Annotated[str, Form(max_length=200)]


def _document(form: dict[str, str]) -> dict[str, Any]:
    """The offer the form's fields write, as the API takes it."""
    document: dict[str, Any] = {"key": form["key"].strip(), "name": form["name"]}
    document["kind"] = form["kind"]
    if form["value"].strip():
        document["value"] = form["value"].strip()
    days = form["days_after_send"].strip()
    document["valid"] = {"days_after_send": int(days) if days.isdigit() else days}
    codes: dict[str, Any] = {"source": form["source"]}
    if form["source"] == "generated" and form["prefix"].strip():
        codes["prefix"] = form["prefix"].strip()
    document["codes"] = codes
    return document


def router(offers: Offers) -> APIRouter:
    """The offers pages on ``offers``."""
    pages = APIRouter(include_in_schema=False)

    async def listing(request: Request, user: Any, **form: Any) -> Response:
        rows = []
        for stored in await offers.list():
            rows.append({**stored.definition, "pool": await offers.pool(stored.key)})
        return render(request, "offers.html", user=user, offers=rows, **form)

    @pages.get("/offers", response_class=HTMLResponse)
    async def offer_list(request: Request, user: Analyst) -> Response:
        return await listing(request, user, form={}, error=None)

    @pages.post("/offers", response_class=HTMLResponse)
    async def create_offer(
        request: Request,
        user: Marketer,
        *,
        key: Field,
        name: Field,
        kind: Field,
        days_after_send: Field,
        value: Field = "",
        source: Field = "pool",
        prefix: Field = "",
    ) -> Response:
        form = {
            "key": key,
            "name": name,
            "kind": kind,
            "value": value,
            "days_after_send": days_after_send,
            "source": source,
            "prefix": prefix,
        }
        written = _document(form)
        try:
            offer = parse_offer(written)
        except OfferError as exc:
            error = {"pointer": exc.pointer, "detail": exc.message}
            return await _refused(request, user, form, error)
        try:
            await offers.put(offer.key, definition=offer.to_dict(), expected_version=None)
        except StaleVersion:
            error = {"pointer": "/key", "detail": f"an offer {offer.key!r} exists already"}
            return await _refused(request, user, form, error)
        return RedirectResponse(f"/offers?created={offer.key}", status_code=303)

    async def _refused(
        request: Request, user: Any, form: dict[str, str], error: dict[str, str]
    ) -> Response:
        page = await listing(request, user, form=form, error=error)
        page.status_code = 422
        return page

    return pages
