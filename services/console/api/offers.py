"""The offers API: what a message gives the buyer, and the pools of codes it is given with.

- ``PUT /v1/offers/{key}``: create (no ``If-Match``, 201) or change (``If-Match``, 200) an
  offer written as docs/offers.md shows; one that does not validate is ``422
  invalid-offer`` with the JSON pointer of the bad field. It is stored as it reads back.
- ``GET /v1/offers/{key}`` with its ``ETag`` and its pool's counts; ``GET /v1/offers``:
  ``{"offers": [...]}``, every offer in key order.
- ``POST /v1/offers/{key}/codes``: upload codes to the offer's pool, as CSV (one code a
  line, an optional ``code`` header); a bad file is ``422 invalid-codes`` at its line, an
  upload naming codes already there ``409 codes-taken``, an offer whose codes are
  generated ``409 not-a-pool``. Taken whole or not at all.
- ``GET /v1/offers/{key}/codes``: every code of the offer as CSV (``code, state,
  issued_at, expires_at, redeemed_at``), the generated ones issued too: for the shop's
  checkout or an export.

Reads need the ``console:read`` scope, changes ``console:write``, as for campaigns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Request
from fastapi.responses import JSONResponse, Response

from services.catalogue.editing import version_fields
from services.console.api import versions
from services.console.api.segments import KEY_PATTERN
from services.console.api.versions import etag, stale_problem
from services.http.auth import require as require_key
from services.http.bodies import MAX_BODY_BYTES, read_body
from services.http.problems import Problem
from shared.domain.offers import Offer, OfferError, PoolCodes, PoolError, parse_offer, parse_pool
from shared.ports.api_keys import Scope
from shared.ports.clock import Clock
from shared.ports.definitions import StaleVersion
from shared.ports.offers import CodesTaken, OfferDefinition, Offers, PoolCounts

__all__ = ["MAX_UPLOAD_BYTES", "router"]

Key = Annotated[str, Path(pattern=KEY_PATTERN, description="The offer's key.")]
IfMatch = Annotated[
    str | None, Header(description='The version the change is made against: "<version>"')
]
Requirement = Callable[[Scope], Callable[..., Any]]
OfferBody = Annotated[dict[str, Any], Body(description="The offer, as docs/offers.md shows it.")]

MAX_UPLOAD_BYTES = MAX_BODY_BYTES
"""An upload of codes: as any body of the console (4 MiB: 100 000 codes of up to 40
characters); a larger pool goes up in parts."""


def _document(stored: OfferDefinition, pool: PoolCounts | None = None) -> dict[str, Any]:
    document = {**stored.definition, "key": stored.key, **version_fields(stored, builtin=None)}
    if pool is not None:
        document["pool"] = {"free": pool.free, "issued": pool.issued}
    return document


def _parsed(key: str, body: Any) -> Offer:
    try:
        return parse_offer(body, key=key)
    except OfferError as exc:
        raise Problem(
            "invalid-offer",
            f"{exc.pointer}: {exc.message}",
            [{"pointer": exc.pointer, "detail": exc.message}],
        ) from None


def router(offers: Offers, *, clock: Clock, require: Requirement = require_key) -> APIRouter:
    """The offers routes on ``offers``; ``require(scope)`` is the dependency that admits a
    caller for a scope (API keys by default)."""
    api = APIRouter(prefix="/v1/offers", tags=["offers"])
    readers = [Depends(require("console:read"))]
    writers = [Depends(require("console:write"))]

    @api.get("", summary="Every offer", dependencies=readers)
    async def list_offers() -> dict[str, Any]:
        return {"offers": [_document(o) for o in await offers.list()]}

    @api.get(
        "/{key}",
        summary="One offer with its pool's counts; its version is the ETag",
        dependencies=readers,
        responses={404: {"description": "no such offer"}},
    )
    async def get_offer(key: Key) -> JSONResponse:
        found = await offers.get(key)
        if found is None:
            raise Problem("not-found", f"no offer {key}")
        return JSONResponse(
            _document(found, await offers.pool(key)), headers={"ETag": etag(found.version)}
        )

    @api.put(
        "/{key}",
        summary="Create an offer, or change it with If-Match",
        dependencies=writers,
        responses={
            201: {"description": "created"},
            412: {"description": "If-Match is not the current version"},
            428: {"description": "the offer exists and If-Match is missing"},
            422: {"description": "the offer does not validate"},
        },
    )
    async def put_offer(key: Key, body: OfferBody, if_match: IfMatch = None) -> JSONResponse:
        offer = _parsed(key, body)
        current = await offers.get(key)
        expected = versions.expected_version(
            key, if_match, None if current is None else current.version
        )
        try:
            stored = await offers.put(key, definition=offer.to_dict(), expected_version=expected)
        except StaleVersion as stale:
            raise stale_problem(stale) from None
        return JSONResponse(
            _document(stored, await offers.pool(key)),
            status_code=201 if expected is None else 200,
            headers={"ETag": etag(stored.version)},
        )

    @api.post(
        "/{key}/codes",
        summary="Upload codes to the offer's pool (CSV, one code a line); all or nothing",
        dependencies=writers,
        responses={
            404: {"description": "no such offer"},
            409: {"description": "codes already in the pool, or the offer's codes are generated"},
            422: {"description": "the file is not one code a line"},
        },
    )
    async def upload_codes(key: Key, request: Request) -> dict[str, Any]:
        found = await offers.get(key)
        if found is None:
            raise Problem("not-found", f"no offer {key}")
        if not isinstance(_parsed(key, found.definition).codes, PoolCodes):
            raise Problem("not-a-pool", f"{key}'s codes are generated; it takes no upload")
        body = await read_body(request, MAX_UPLOAD_BYTES)
        try:
            codes = parse_pool(body.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise Problem(
                "invalid-codes",
                "the file is not UTF-8 text",
                [{"line": 0, "detail": "expected UTF-8 text"}],
            ) from None
        except PoolError as exc:
            raise Problem(
                "invalid-codes", str(exc), [{"line": exc.line, "detail": exc.message}]
            ) from None
        try:
            pool = await offers.add_codes(key, codes, clock.now())
        except CodesTaken as taken:
            raise Problem(
                "codes-taken",
                f"{taken.count or 'some'} of the codes are in {key}'s pool already; "
                "nothing was taken",
                [{"code": code, "detail": "in the pool already"} for code in taken.codes],
            ) from None
        return {
            "offer": key,
            "added": len(codes),
            "pool": {"free": pool.free, "issued": pool.issued},
        }

    @api.get(
        "/{key}/codes",
        summary="Every code of the offer, as CSV: code, state, issued_at, expires_at, redeemed_at",
        dependencies=readers,
        response_class=Response,
        responses={
            200: {"content": {"text/csv": {}}, "description": "the codes"},
            404: {"description": "no such offer"},
        },
    )
    async def export_codes(key: Key) -> Response:
        if await offers.get(key) is None:
            raise Problem("not-found", f"no offer {key}")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["code", "state", "issued_at", "expires_at", "redeemed_at"])
        for listed in await offers.codes(key):
            writer.writerow(
                [
                    listed.code,
                    listed.state,
                    *(
                        moment.isoformat() if moment is not None else ""
                        for moment in (listed.issued_at, listed.expires_at, listed.redeemed_at)
                    ),
                ]
            )
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{key}-codes.csv"'},
        )

    return api
