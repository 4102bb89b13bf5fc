"""The segments API: marketers define segments, see their sizes, and preview a rule.

- ``PUT /v1/segments/{key}``: create (no ``If-Match``, 201) or change (``If-Match``, 200)
  a segment: ``{name, description?, rule}``; the rule is parsed first, and a rule that
  does not parse is ``422 invalid-rule`` with the pointer of the bad node under ``/rule``.
- ``GET /v1/segments/{key}`` with its ``ETag``; ``GET /v1/segments``: every segment, the
  built-ins too, with how many buyers are in each now.
- ``DELETE /v1/segments/{key}`` (``If-Match``): archive it; its members exit.
- ``POST /v1/segments/preview``: an unsaved rule's size over the base now and a sample
  of up to 20 of its buyers, identifiers masked.

Reads and previews need the ``console:read`` scope, changes ``console:write``.
See :mod:`services.console.api.versions` for ``ETag`` and ``If-Match``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.catalogue.editing import PREVIEW_KEY, SegmentEditor, version_fields
from services.console.api import versions
from services.console.api.refusals import as_problems
from services.console.api.versions import etag
from services.http.auth import require as require_key
from services.http.problems import Problem
from shared.domain.masking import mask_email, mask_phone
from shared.domain.profile import Profile
from shared.domain.segments import BUILTIN_SEGMENTS, Segment
from shared.ports.api_keys import Scope
from shared.ports.clock import Clock
from shared.ports.definitions import Definitions, SegmentDefinition

__all__ = ["KEY_PATTERN", "router"]

KEY_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
"""A definition's key: lower-case letters, digits, ``.``, ``_`` and ``-``, up to 100."""
SAMPLE_SIZE = 20

Key = Annotated[str, Path(pattern=KEY_PATTERN, description="The segment's key.")]
IfMatch = Annotated[
    str | None, Header(description='The version the change is made against: "<version>"')
]
Requirement = Callable[[Scope], Callable[..., Any]]


class SegmentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    rule: Any = Field(description="The rule tree (see docs/segments.md).")


class PreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: Any = Field(description="The rule tree to try on the base; nothing is saved.")


def _definition(d: SegmentDefinition) -> dict[str, Any]:
    return {
        "key": d.key,
        "name": d.name,
        "description": d.description,
        "rule": d.rule,
        **version_fields(d),
    }


def _buyer(profile: Profile) -> dict[str, Any]:
    """A buyer in a preview's sample: identifiers masked (``+7*******67``, ``a***@shop.ru``)."""
    return {
        "id": profile.id,
        "email": mask_email(profile.email) if profile.email else None,
        "phone": mask_phone(profile.phone) if profile.phone else None,
        "orders_count": profile.orders_count,
        "revenue_total": str(profile.revenue_total),
        "last_order_at": profile.last_order_at.isoformat() if profile.last_order_at else None,
    }


def router(
    definitions: Definitions,
    *,
    clock: Clock,
    require: Requirement = require_key,
    builtins: Sequence[Segment] = BUILTIN_SEGMENTS,
) -> APIRouter:
    """The segments routes on ``definitions``; ``require(scope)`` is the dependency that
    admits a caller for a scope (API keys by default)."""
    api = APIRouter(prefix="/v1/segments", tags=["segments"])
    readers = [Depends(require("console:read"))]
    writers = [Depends(require("console:write"))]
    editor = SegmentEditor(definitions, builtins)

    @api.get("", summary="Every segment, with how many buyers are in it now", dependencies=readers)
    async def list_segments() -> dict[str, Any]:
        sizes = await definitions.segment_sizes()
        listed: list[dict[str, Any]] = [
            {"key": s.key, "name": s.name, "builtin": True, "size": sizes.get(s.key, 0)}
            for s in builtins
        ]
        for d in await definitions.segments.list():
            listed.append({**_definition(d), "size": sizes.get(d.key, 0)})
        return {"segments": listed}

    @api.post(
        "/preview",
        summary="An unsaved rule's size over the base now, and a sample of its buyers",
        dependencies=readers,
    )
    async def preview(body: PreviewBody) -> dict[str, Any]:
        with as_problems():
            rule = await editor.checked(PREVIEW_KEY, body.rule)
        found = await editor.preview(rule, clock.now(), sample_size=SAMPLE_SIZE)
        return {**found.fields(_buyer), "as_of": found.as_of.isoformat()}

    @api.get(
        "/{key}",
        summary="One segment; its version is the ETag",
        dependencies=readers,
        responses={404: {"description": "no such segment"}},
    )
    async def get_segment(key: Key) -> JSONResponse:
        found = await definitions.segments.get(key)
        if found is None:
            raise Problem("not-found", f"no segment {key}")
        return JSONResponse(_definition(found), headers={"ETag": etag(found.version)})

    @api.put(
        "/{key}",
        summary="Create a segment, or change it with If-Match",
        dependencies=writers,
        responses={
            201: {"description": "created"},
            409: {"description": "a built-in segment"},
            412: {"description": "If-Match is not the current version"},
            428: {"description": "the segment exists and If-Match is missing"},
            422: {"description": "the rule does not parse"},
        },
    )
    async def put_segment(key: Key, body: SegmentBody, if_match: IfMatch = None) -> JSONResponse:
        with as_problems():
            saved = await editor.save(
                key,
                name=body.name,
                description=body.description,
                rule=body.rule,
                against=versions.if_match(key, if_match),
            )
        stored = saved.definition
        return JSONResponse(
            _definition(stored),
            status_code=201 if saved.created else 200,
            headers={"ETag": etag(stored.version)},
        )

    @api.delete(
        "/{key}",
        summary="Archive a segment (If-Match); its members exit",
        dependencies=writers,
        responses={404: {"description": "no such segment"}},
    )
    async def archive_segment(key: Key, if_match: IfMatch = None) -> JSONResponse:
        with as_problems():
            archived = await editor.archive(key, versions.if_match(key, if_match))
        return JSONResponse(_definition(archived), headers={"ETag": etag(archived.version)})

    return api
