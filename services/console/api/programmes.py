"""The programmes API: marketers write sequential, multi-variant programmes
(docs/programmes.md) and read them back.

- ``PUT /v1/programmes/{key}``: create (no ``If-Match``, 201) or change (``If-Match``,
  200) a programme. It is validated against the segments and templates in force; one
  that does not validate is ``422 invalid-programme`` with the JSON pointer of the bad
  field. Every change is a new version, and every version is kept. Without ``status`` a
  new programme is a draft and a changed one keeps its status.
- ``GET /v1/programmes/{key}`` with its ``ETag``; ``GET /v1/programmes``:
  ``{"programmes": [...]}``, each with its steps and status; the ready-made ones not
  stored are listed as ``builtin``.

Reads need the ``console:read`` scope, changes ``console:write``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path
from fastapi.responses import JSONResponse

from services.catalogue import Catalogue
from services.catalogue.programmes import ProgrammeEditor, programme_document
from services.console.api import versions
from services.console.api.refusals import as_problems
from services.console.api.segments import KEY_PATTERN
from services.console.api.versions import etag
from services.http.auth import require as require_key
from shared.ports.api_keys import Scope
from shared.ports.definitions import Definitions
from shared.ports.offers import Offers

__all__ = ["router"]

Key = Annotated[str, Path(pattern=KEY_PATTERN, description="The programme's key.")]
IfMatch = Annotated[
    str | None, Header(description='The version the change is made against: "<version>"')
]
Requirement = Callable[[Scope], Callable[..., Any]]
ProgrammeBody = Annotated[
    dict[str, Any], Body(description="The programme, as docs/programmes.md shows it.")
]


def router(
    definitions: Definitions,
    *,
    require: Requirement = require_key,
    catalogue: Catalogue | None = None,
    offers: Offers | None = None,
) -> APIRouter:
    """The programmes routes on ``definitions``; ``require(scope)`` admits a caller for a
    scope; programmes are checked against what ``catalogue`` says they may name (and
    ``offers``: the offers that exist)."""
    api = APIRouter(prefix="/v1/programmes", tags=["programmes"])
    readers = [Depends(require("console:read"))]
    writers = [Depends(require("console:write"))]
    editor = ProgrammeEditor(definitions, catalogue, offers)

    @api.get("", summary="Every programme, with its steps and status", dependencies=readers)
    async def list_programmes() -> dict[str, Any]:
        return {"programmes": await editor.listed()}

    @api.get(
        "/{key}",
        summary="One programme; its version is the ETag",
        dependencies=readers,
        responses={404: {"description": "no such programme"}},
    )
    async def get_programme(key: Key) -> JSONResponse:
        with as_problems():
            document, version = await editor.document(key)
        headers = {"ETag": etag(version)} if version is not None else None
        return JSONResponse(document, headers=headers)

    @api.put(
        "/{key}",
        summary="Create a programme, or change it with If-Match (a new version)",
        dependencies=writers,
        responses={
            201: {"description": "created"},
            412: {"description": "If-Match is not the current version"},
            428: {"description": "the programme exists and If-Match is missing"},
            422: {"description": "the programme does not validate"},
        },
    )
    async def put_programme(
        key: Key, body: ProgrammeBody, if_match: IfMatch = None
    ) -> JSONResponse:
        with as_problems():
            saved = await editor.save(key, body, versions.if_match(key, if_match))
        stored = saved.definition
        return JSONResponse(
            programme_document(stored),
            status_code=201 if saved.created else 200,
            headers={"ETag": etag(stored.version)},
        )

    return api
