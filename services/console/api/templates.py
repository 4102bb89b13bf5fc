"""The templates API: marketers write message templates and preview them on a buyer.

- ``PUT /v1/templates/{key}``: create (no ``If-Match``, 201) or change (``If-Match``,
  200) a template: ``{channel, content}`` (email ``subject``, ``html``, ``text``; sms
  ``text``; push ``title``, ``body``, optional ``deep_link``). The template is rendered
  on a sample buyer before it is saved: one that does not render, or that reaches for
  Python's internals, is ``422 invalid-template`` naming the part, the line and the error;
  one over a render limit (time, output size) is ``422 template-too-costly`` naming it;
  with no render worker to be had, ``503 renderer-unavailable`` (retry).
- ``GET /v1/templates/{key}`` with its ``ETag``; ``GET /v1/templates``: every template,
  the ready-made campaigns' ones too (``ready_made: true``), as they are in force: as
  shipped, or as a marketer changed them (``customised: true``). A ready-made template
  is changed by ``PUT`` under its key (its channel stays).
- ``POST /v1/templates/{key}/reset`` (``If-Match``): a ready-made template back to its
  shipped text, the change archived; ``404`` for a key that is not ready-made.
- ``POST /v1/templates/{key}/preview``: the stored template (or ``content`` sent in the
  body, unsaved) rendered for a buyer (``profile_id``) or the sample buyer, with the
  trigger properties given (``trigger``) or sample ones.

Every render runs in the renderer's worker processes (``shared.ports.rendering``), never
on the event loop, bounded in time and in output.

Reads and previews need the ``console:read`` scope, changes ``console:write``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.catalogue.editing import TemplateEditor, TemplateInForce, version_fields
from services.console.api import versions
from services.console.api.refusals import as_problems
from services.console.api.segments import KEY_PATTERN
from services.console.api.versions import etag
from services.http.auth import require as require_key
from services.http.problems import Problem
from shared.domain.events import Scalar
from shared.ports.api_keys import Scope
from shared.ports.definitions import Channel, Definitions, TemplateDefinition
from shared.ports.rendering import Renderer

__all__ = ["router"]

Key = Annotated[str, Path(pattern=KEY_PATTERN, description="The template's key.")]
IfMatch = Annotated[
    str | None, Header(description='The version the change is made against: "<version>"')
]
Requirement = Callable[[Scope], Callable[..., Any]]


class TemplateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Channel
    content: dict[str, Any] = Field(description="The channel's parts, each a Jinja template.")


class PreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profile_id: str | None = Field(
        default=None, max_length=64, description="A buyer to render for; default: a sample buyer"
    )
    trigger: dict[str, Scalar] | None = Field(
        default=None, description="The triggering event's properties; default: sample ones"
    )
    channel: Channel | None = Field(default=None, description="With content: an unsaved draft")
    content: dict[str, Any] | None = None


def _definition(d: TemplateDefinition, *, ready_made: bool = False) -> dict[str, Any]:
    return {
        "key": d.key,
        "channel": d.channel,
        "content": d.content,
        "ready_made": ready_made,
        "customised": True,
        **version_fields(d, builtin=None),
    }


def _in_force(t: TemplateInForce) -> dict[str, Any]:
    """A template as in force; its ``version`` is what a change is made against."""
    if t.stored is not None and (t.customised or t.ready_made is None):
        return _definition(t.stored, ready_made=t.ready_made is not None)
    fields: dict[str, Any] = {"version": None, "created_at": None, "updated_at": None}
    fields["archived_at"] = None
    if t.stored is not None:
        fields = version_fields(t.stored, builtin=None)
    return {
        "key": t.key,
        "channel": t.channel,
        "content": t.content,
        "ready_made": True,
        "customised": False,
        **fields,
    }


def _answer(t: TemplateInForce, status_code: int = 200) -> JSONResponse:
    headers = {"ETag": etag(t.version)} if t.version is not None else {}
    return JSONResponse(_in_force(t), status_code=status_code, headers=headers)


def router(
    definitions: Definitions,
    *,
    renderer: Renderer,
    require: Requirement = require_key,
) -> APIRouter:
    """The templates routes on ``definitions``; ``require(scope)`` is the dependency that
    admits a caller for a scope (API keys by default); templates render in ``renderer``
    (the composition root's: worker processes with the settings' limits)."""
    editor = TemplateEditor(definitions, renderer)
    api = APIRouter(prefix="/v1/templates", tags=["templates"])
    readers = [Depends(require("console:read"))]
    writers = [Depends(require("console:write"))]

    @api.get("", summary="Every template", dependencies=readers)
    async def list_templates() -> dict[str, Any]:
        return {"templates": [_in_force(t) for t in await editor.listed()]}

    @api.get(
        "/{key}",
        summary="One template; its version is the ETag",
        dependencies=readers,
        responses={404: {"description": "no such template"}},
    )
    async def get_template(key: Key) -> JSONResponse:
        found = await editor.find(key)
        if found is None:
            raise Problem("not-found", f"no template {key}")
        return _answer(found)

    @api.put(
        "/{key}",
        summary="Create a template, or change it with If-Match; it must render",
        dependencies=writers,
        responses={
            201: {"description": "created"},
            412: {"description": "If-Match is not the current version"},
            428: {"description": "the template exists and If-Match is missing"},
            422: {"description": "the template does not render, or is over a render limit"},
        },
    )
    async def put_template(key: Key, body: TemplateBody, if_match: IfMatch = None) -> JSONResponse:
        with as_problems():
            saved = await editor.save(
                key,
                channel=body.channel,
                content=body.content,
                against=versions.if_match(key, if_match),
            )
        stored = saved.definition
        return JSONResponse(
            _definition(stored, ready_made=key in editor.ready_made),
            status_code=201 if saved.created else 200,
            headers={"ETag": etag(stored.version)},
        )

    @api.post(
        "/{key}/reset",
        summary="A ready-made template back to its shipped text (If-Match)",
        dependencies=writers,
        responses={
            404: {"description": "not a ready-made template"},
            412: {"description": "If-Match is not the current version"},
            428: {"description": "the template was changed and If-Match is missing"},
        },
    )
    async def reset_template(key: Key, if_match: IfMatch = None) -> JSONResponse:
        with as_problems():
            found = await editor.reset(key, versions.if_match(key, if_match))
        return _answer(found)

    @api.post(
        "/{key}/preview",
        summary="The template rendered for a buyer or the sample buyer",
        dependencies=readers,
        responses={
            404: {"description": "no such template, or no such buyer"},
            422: {"description": "the template does not render, or is over a render limit"},
        },
    )
    async def preview(key: Key, body: PreviewBody) -> dict[str, Any]:
        with as_problems():
            found = await editor.preview(key, **body.model_dump())
        return asdict(found)

    return api
