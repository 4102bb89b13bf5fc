"""The templates pages: every message template, and an editor with a live preview.

- ``GET /templates``: the templates, by key, with their channel and version: the
  ready-made campaigns' ones too, marked "ready-made", and "changed" once a marketer
  changed one.
- ``GET /templates/_new?channel=email`` and ``GET /templates/{key}``: the editor, one
  field per part of the channel (email: subject, HTML, text; SMS: text; push: title,
  body, deep link). As the marketer types, htmx posts the draft to
  ``POST /templates/_preview``, which renders it for the buyer they pick (a profile
  id, an email or a phone; the sample buyer when empty) and answers: the email in a
  sandboxed ``iframe`` (``sandbox=""``, ``srcdoc``: no script runs, no form posts, no
  link navigates the console), the SMS with its encoding, length and segment count,
  the push's title, body and deep link; or the errors, each with its part and line.
- ``POST /templates/_new`` and ``POST /templates/{key}``: save (marketers), the version
  the page was read at sent as the save's ``If-Match``. A template that does not render
  on the sample buyer, or is over a render limit (time, output size), is not saved.
- ``POST /templates/{key}/_reset`` (marketers): a changed ready-made template back to its
  shipped text, against the version the page was read at.

Drafts render in the renderer's worker processes, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from services.catalogue.editing import Exists, InvalidTemplate, TemplateEditor
from services.console.api.refusals import as_problems
from services.console.api.segments import KEY_PATTERN
from services.console.api.versions import read_at
from services.console.pages import render
from services.console.security import Analyst, Marketer
from services.http.problems import Problem
from shared.domain.identifiers import normalise_email, normalise_phone, normalise_profile_id
from shared.domain.message_templates import PARTS, TemplateContentError
from shared.domain.profile import Profile
from shared.domain.rendering import RenderError, RenderTooCostly
from shared.domain.sample_buyer import SAMPLE_PROFILE
from shared.domain.sms import SmsTooLong, sms_length
from shared.errors import RendererUnavailable
from shared.ports.console import ConsoleQueries
from shared.ports.definitions import CHANNELS, Channel, Definitions
from shared.ports.rendering import Renderer

__all__ = ["STARTERS", "router"]

STARTERS: Mapping[str, Mapping[str, str]] = {
    "email": {
        "subject": "Thank you for your {{ customer.orders_count }} orders",
        "html": (
            "<h1>Hello!</h1>\n"
            "<p>You have ordered {{ customer.orders_count }} times with us.</p>\n"
            '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
        ),
        "text": (
            "Hello! You have ordered {{ customer.orders_count }} times with us.\n"
            "Unsubscribe: {{ unsubscribe_url }}"
        ),
    },
    "sms": {"text": "Your usual basket is waiting: 10% off today. Stop: {{ unsubscribe_url }}"},
    "push": {
        "title": "Your basket is waiting",
        "body": "Order again in one tap",
        "deep_link": "shop://basket",
    },
}
"""What a new template's editor starts with, per channel."""

Key = Annotated[str, Path(pattern=KEY_PATTERN)]
Part = Annotated[str | None, Form(max_length=100_000)]
ChannelField = Annotated[Channel, Form()]


def _draft_parts(
    *,
    subject: Part = None,
    html: Part = None,
    text: Part = None,
    title: Part = None,
    body: Part = None,
    deep_link: Part = None,
) -> dict[str, str | None]:
    """Every channel's parts as the editor's form sends them (those of other channels: None)."""
    return {
        "subject": subject,
        "html": html,
        "text": text,
        "title": title,
        "body": body,
        "deep_link": deep_link,
    }


Parts = Annotated[dict[str, str | None], Depends(_draft_parts)]


def _content(channel: str, parts: Mapping[str, str | None]) -> dict[str, str]:
    """The channel's parts from the form; an optional part left empty is left out."""
    wanted = PARTS[channel]
    content = {name: parts.get(name) or "" for name in wanted.required}
    content.update({name: value for name in wanted.optional if (value := parts.get(name))})
    return content


def _errors(exc: TemplateContentError | RenderError) -> list[dict[str, Any]]:
    if isinstance(exc, TemplateContentError):
        part = exc.pointer.rsplit("/", 1)[-1]
        return [{"part": part, "line": exc.line, "message": exc.message}]
    message = exc.message
    if isinstance(exc, RenderTooCostly):
        message = f"over the render {exc.limit} limit: {message}"
    return [{"part": exc.part.split(".")[0], "line": exc.line, "message": message}]


async def rendered_draft(
    edits: TemplateEditor, channel: str, content: Mapping[str, str], profile: Profile
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The draft rendered for ``profile`` by ``edits``, or why it does not render or is
    over a render limit (part, line, error)."""
    try:
        rendered = await edits.render(channel, content, profile)
    except InvalidTemplate as refused:
        return None, _errors(refused.cause)
    except RendererUnavailable as exc:  # no fault of the template's: try again
        why = f"cannot be rendered right now ({exc}); try again in a moment"
        return None, [{"part": "template", "line": None, "message": why, "unavailable": True}]
    if channel == "sms":
        try:
            length = sms_length(rendered["text"])
        except SmsTooLong as exc:
            return None, [{"part": "text", "line": None, "message": str(exc)}]
        rendered["encoding"], rendered["units"] = length.encoding, length.units
        rendered["segments"] = length.segments
    return rendered, []


async def _pick_buyer(
    queries: ConsoleQueries, picked: str, default_region: str | None
) -> Profile | None:
    """The buyer a marketer names by profile id, email, phone or the shop's own id."""
    picked = picked.strip()
    attempts: list[tuple[str, str]] = []
    for kind, normalise in (
        ("profile_id", normalise_profile_id),
        ("email", normalise_email),
        ("phone", lambda raw: normalise_phone(raw, default_region=default_region)),
    ):
        try:
            attempts.append((kind, normalise(picked)))
        except ValueError:
            continue
    attempts.append(("id", picked))
    for kind, value in attempts:
        found = await queries.find_buyer_by(kind, value)
        if found is not None:
            return found
    return None


def router(
    definitions: Definitions,
    queries: ConsoleQueries,
    *,
    renderer: Renderer,
    default_region: str | None = None,
) -> APIRouter:
    """The templates pages on ``definitions``; buyers to preview for are read in ``queries``;
    drafts render in ``renderer`` (the composition root's worker processes)."""
    edits = TemplateEditor(definitions, renderer)
    pages = APIRouter(include_in_schema=False)

    def editor(request: Request, user: Any, *, status_code: int = 200, **form: Any) -> Response:
        channel = form["channel"]
        return render(
            request,
            "template_edit.html",
            status_code=status_code,
            user=user,
            parts=PARTS[channel].required + PARTS[channel].optional,
            optional=PARTS[channel].optional,
            **form,
        )

    @pages.get("/templates", response_class=HTMLResponse)
    async def templates_page(request: Request, user: Analyst) -> Response:
        found = await edits.listed()
        return render(request, "templates.html", user=user, templates=found, channels=CHANNELS)

    @pages.get("/templates/_new", response_class=HTMLResponse)
    async def new_template(
        request: Request, user: Analyst, channel: Annotated[Channel, Query()] = "email"
    ) -> Response:
        return editor(
            request, user, key=None, channel=channel, content=STARTERS[channel], version=None
        )

    @pages.get("/templates/{key}", response_class=HTMLResponse)
    async def edit_template(request: Request, user: Analyst, key: Key) -> Response:
        found = await edits.find(key)
        if found is None:
            raise Problem("not-found", f"no template {key}")
        return editor(
            request,
            user,
            key=key,
            channel=found.channel,
            content=found.content,
            version=found.version,
            ready_made=found.ready_made is not None,
            customised=found.customised,
        )

    @pages.post("/templates/{key}/_reset")
    async def reset_template(
        request: Request,
        user: Marketer,
        key: Key,
        *,
        version: Annotated[int | None, Form()] = None,
    ) -> Response:
        with as_problems():
            found = await edits.reset(key, read_at("template", key, version))
        return RedirectResponse(f"/templates/{found.key}?reset=1", status_code=303)

    @pages.post("/templates/_preview", response_class=HTMLResponse)
    async def preview(
        request: Request,
        user: Analyst,
        *,
        channel: ChannelField,
        buyer: Annotated[str, Form(max_length=320)] = "",
        parts: Parts,
    ) -> Response:
        profile: Profile | None = SAMPLE_PROFILE
        if buyer.strip():
            profile = await _pick_buyer(queries, buyer, default_region)
        if profile is None:
            return render(
                request,
                "_template_preview.html",
                user=user,
                channel=channel,
                rendered=None,
                errors=[{"part": "buyer", "line": None, "message": f"no buyer {buyer.strip()}"}],
            )
        rendered, errors = await rendered_draft(edits, channel, _content(channel, parts), profile)
        return render(
            request,
            "_template_preview.html",
            user=user,
            channel=channel,
            rendered=rendered,
            errors=errors,
            for_sample=profile is SAMPLE_PROFILE,
            profile_id=profile.id,
        )

    async def save(
        request: Request,
        user: Any,
        key: str,
        channel: Channel,
        parts: Mapping[str, str | None],
        *,
        new: bool,
        version: int | None,
    ) -> Response:
        content = _content(channel, parts)
        form: dict[str, Any] = {"channel": channel, "content": content, "version": version}
        form["key"] = None if new else key
        form["ready_made"] = key in edits.ready_made
        if new:
            form["new_key"] = key
        _rendered, errors = await rendered_draft(edits, channel, content, SAMPLE_PROFILE)
        if errors:
            unavailable = any(e.get("unavailable") for e in errors)
            return editor(
                request, user, status_code=503 if unavailable else 422, errors=errors, **form
            )
        try:
            with as_problems():
                try:
                    saved = await edits.store(
                        key,
                        channel=channel,
                        content=content,
                        against=read_at("template", key, version, new=new),
                    )
                except Exists:
                    why = f"a template {key} exists already: open it to change it"
                    return editor(request, user, status_code=409, problem=why, **form)
        except Problem as problem:
            return editor(request, user, status_code=problem.status, problem=problem.detail, **form)
        stored = saved.definition
        return RedirectResponse(f"/templates/{stored.key}?saved={stored.version}", status_code=303)

    @pages.post("/templates/_new")
    async def create_template(
        request: Request,
        user: Marketer,
        *,
        key: Annotated[str, Form(pattern=KEY_PATTERN)],
        channel: ChannelField,
        parts: Parts,
    ) -> Response:
        return await save(request, user, key, channel, parts, new=True, version=None)

    @pages.post("/templates/{key}")
    async def save_template(
        request: Request,
        user: Marketer,
        key: Key,
        *,
        channel: ChannelField,
        version: Annotated[int | None, Form()] = None,
        parts: Parts,
    ) -> Response:
        return await save(request, user, key, channel, parts, new=False, version=version)

    return pages
