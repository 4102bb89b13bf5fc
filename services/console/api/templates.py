"""The templates API: marketers write message templates and preview them on a buyer.

- ``PUT /v1/templates/{key}``: create (no ``If-Match``, 201) or change (``If-Match``,
  200) a template: ``{channel, content}`` (email ``subject``, ``html``, ``text``; sms
  ``text``; push ``title``, ``body``, optional ``deep_link``). The template is rendered
  on a sample buyer before it is saved: one that does not render, or that reaches for
  Python's internals, is ``422 invalid-template`` naming the part, the line and the error;
  one over a render limit (time, output size) is ``422 template-too-costly`` naming it;
  with no render worker to be had, ``503 renderer-unavailable`` (retry).
- ``GET /v1/templates/{key}`` with its ``ETag``; ``GET /v1/templates``: every template.
- ``POST /v1/templates/{key}/preview``: the stored template (or ``content`` sent in the
  body, unsaved) rendered for a buyer (``profile_id``) or the sample buyer, with the
  trigger properties given (``trigger``) or sample ones.

Every render runs in the renderer's worker processes (``shared.ports.rendering``), never
on the event loop, bounded in time and in output.

Reads and previews need the ``console:read`` scope, changes ``console:write``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.console.api.segments import KEY_PATTERN
from services.console.api.versions import etag, expected_version, saved
from services.http.auth import require as require_key
from services.http.problems import Problem
from shared.adapters.rendering import ProcessRenderer
from shared.domain.campaigns import message_context
from shared.domain.events import Scalar
from shared.domain.message_templates import TemplateContentError, sample_trigger
from shared.domain.profile import Profile
from shared.domain.rendering import RenderError, RenderTooCostly
from shared.domain.sample_buyer import SAMPLE_PROFILE
from shared.errors import RendererUnavailable
from shared.logging import get_logger
from shared.ports.api_keys import Scope
from shared.ports.definitions import Channel, Definitions, TemplateDefinition
from shared.ports.rendering import Renderer

__all__ = ["router"]

log = get_logger(__name__)

Key = Annotated[str, Path(pattern=KEY_PATTERN, description="The template's key.")]
IfMatch = Annotated[
    str | None, Header(description='The version the change is made against: "<version>"')
]
Requirement = Callable[[Scope], Callable[..., Any]]
PREVIEW_UNSUBSCRIBE_URL = "https://unsubscribe.example/preview"
"""What ``unsubscribe_url`` reads as in a preview: no real buyer's link is made for it."""


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


_WHOLE = ("push", "template")
"""Parts a render error may name that are the whole template, not one of its parts."""


def _refused(exc: TemplateContentError | RenderError) -> Problem:
    """The problem a template that does not render, or is over a render limit, answers."""
    if isinstance(exc, TemplateContentError):
        pointer, line, message = exc.pointer, exc.line, exc.message
    else:
        part = exc.part.split(".")[0]
        pointer = "/content" if part in _WHOLE else f"/content/{part}"
        line, message = exc.line, exc.message
    entry: dict[str, Any] = {"pointer": pointer, "detail": message}
    if line:
        entry["line"] = line
    where = f" (line {line})" if line else ""
    if isinstance(exc, RenderTooCostly):
        entry["limit"] = exc.limit
        return Problem("template-too-costly", f"{pointer}{where}: {message}", [entry])
    return Problem("invalid-template", f"{pointer}{where}: {message}", [entry])


async def _rendered(
    renderer: Renderer, channel: str, content: Mapping[str, Any], context: Mapping[str, Any]
) -> dict[str, Any]:
    """``content`` checked and rendered off the event loop, or the problem it answers."""
    try:
        return await renderer.parts(channel, content, context)
    except (TemplateContentError, RenderError) as exc:
        raise _refused(exc) from None
    except RendererUnavailable as exc:
        log.warning("template not rendered: no render worker", error=str(exc))
        raise Problem(
            "renderer-unavailable",
            f"the template could not be rendered now ({exc}); nothing was saved",
            headers={"Retry-After": "5"},
        ) from None


def _context(profile: Profile, trigger: Mapping[str, Any] | None) -> Mapping[str, Any]:
    context = dict(message_context(profile, unsubscribe_url=PREVIEW_UNSUBSCRIBE_URL))
    context["trigger"] = trigger if trigger is not None else sample_trigger()
    return context


def _definition(d: TemplateDefinition) -> dict[str, Any]:
    return {
        "key": d.key,
        "channel": d.channel,
        "content": d.content,
        "version": d.version,
        "created_at": d.created_at.isoformat(),
        "updated_at": d.updated_at.isoformat(),
        "archived_at": d.archived_at.isoformat() if d.archived_at else None,
    }


def router(
    definitions: Definitions,
    *,
    require: Requirement = require_key,
    renderer: Renderer | None = None,
) -> APIRouter:
    """The templates routes on ``definitions``; ``require(scope)`` is the dependency that
    admits a caller for a scope (API keys by default); templates render in ``renderer``
    (default: a pool of worker processes with the default limits)."""
    renderer = renderer if renderer is not None else ProcessRenderer()
    api = APIRouter(prefix="/v1/templates", tags=["templates"])
    readers = [Depends(require("console:read"))]
    writers = [Depends(require("console:write"))]

    @api.get("", summary="Every template", dependencies=readers)
    async def list_templates() -> dict[str, Any]:
        return {"templates": [_definition(d) for d in await definitions.templates.list()]}

    @api.get(
        "/{key}",
        summary="One template; its version is the ETag",
        dependencies=readers,
        responses={404: {"description": "no such template"}},
    )
    async def get_template(key: Key) -> JSONResponse:
        found = await definitions.templates.get(key)
        if found is None:
            raise Problem("not-found", f"no template {key}")
        return JSONResponse(_definition(found), headers={"ETag": etag(found.version)})

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
        await _rendered(renderer, body.channel, body.content, _context(SAMPLE_PROFILE, None))
        current = await definitions.templates.get(key)
        expected = expected_version(key, if_match, current.version if current else None)
        stored = await saved(
            key,
            lambda: definitions.templates.put(
                key, channel=body.channel, content=body.content, expected_version=expected
            ),
        )
        return JSONResponse(
            _definition(stored),
            status_code=201 if expected is None else 200,
            headers={"ETag": etag(stored.version)},
        )

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
        content: Mapping[str, Any]
        if body.content is not None:
            stored = await definitions.templates.get(key)
            channel = body.channel or (stored.channel if stored else None)
            if channel is None:
                raise Problem(
                    "invalid-request",
                    "an unsaved template needs its channel",
                    [{"pointer": "/channel", "detail": "email, sms or push"}],
                )
            content, version = body.content, None
        else:
            found = await definitions.templates.get(key)
            if found is None:
                raise Problem("not-found", f"no template {key}")
            channel, content, version = found.channel, found.content, found.version
        profile = SAMPLE_PROFILE
        if body.profile_id is not None:
            buyer = await definitions.find_profile(body.profile_id)
            if buyer is None:
                raise Problem("not-found", f"no buyer {body.profile_id}")
            profile = buyer
        rendered = await _rendered(renderer, channel, content, _context(profile, body.trigger))
        return {
            "key": key,
            "version": version,
            "channel": channel,
            "profile_id": None if profile is SAMPLE_PROFILE else profile.id,
            "rendered": rendered,
        }

    return api
