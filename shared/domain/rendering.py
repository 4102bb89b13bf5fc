"""Rendering message templates: sandboxed Jinja2, strict about undefined names.

Templates are written by marketers, so they run in Jinja's
:class:`~jinja2.sandbox.SandboxedEnvironment` (no reach into Python internals),
HTML parts are autoescaped, and a name the template uses but the context lacks
is an error rather than an empty string.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from shared.domain.push import PushContent, PushContentError
from shared.domain.sms import SmsLength, SmsTooLong, sms_length

__all__ = [
    "EmailTemplate",
    "PushTemplate",
    "RenderError",
    "RenderedEmail",
    "RenderedSms",
    "SmsTemplate",
    "render_email",
    "render_push",
    "render_sms",
]

_HTML = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
_TEXT = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)


class RenderError(ValueError):
    """A template that does not render: ``part`` names which one, ``line`` where."""

    def __init__(self, part: str, message: str, line: int | None = None) -> None:
        where = f" (line {line})" if line else ""
        super().__init__(f"{part}{where}: {message}")
        self.part = part
        self.line = line
        self.message = message


@dataclass(frozen=True)
class EmailTemplate:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


@functools.lru_cache(maxsize=512)
def _compiled(env: SandboxedEnvironment, source: str) -> Template:
    """``source`` compiled once: compiling takes far longer than rendering."""
    return env.from_string(source)


def _render(env: SandboxedEnvironment, part: str, source: str, context: Mapping[str, Any]) -> str:
    try:
        return _compiled(env, source).render(context)
    except TemplateError as exc:
        raise RenderError(
            part, exc.message or type(exc).__name__, getattr(exc, "lineno", None)
        ) from None
    except Exception as exc:  # any failure of a marketer's template is theirs to fix
        raise RenderError(part, f"{type(exc).__name__}: {exc}") from None


def render_email(template: EmailTemplate, context: Mapping[str, Any]) -> RenderedEmail:
    """Render every part of ``template`` with ``context``; raise :class:`RenderError`."""
    subject = _render(_TEXT, "subject", template.subject, context)
    return RenderedEmail(
        subject=" ".join(subject.split()),
        html=_render(_HTML, "html", template.html, context),
        text=_render(_TEXT, "text", template.text, context),
    )


@dataclass(frozen=True)
class SmsTemplate:
    text: str


@dataclass(frozen=True)
class RenderedSms:
    text: str
    length: SmsLength


def render_sms(
    template: SmsTemplate, context: Mapping[str, Any], *, max_segments: int | None = None
) -> RenderedSms:
    """Render ``template``'s text, trimmed; :class:`RenderError` for a template that does not
    render or a text over ``max_segments`` segments (the part is ``text``)."""
    text = _render(_TEXT, "text", template.text, context).strip()
    try:
        length = sms_length(text, max_segments=max_segments)
    except SmsTooLong as exc:
        raise RenderError("text", str(exc)) from None
    return RenderedSms(text=text, length=length)


@dataclass(frozen=True)
class PushTemplate:
    title: str
    body: str
    deep_link: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    """Each value is a template too (``{{ product.sku }}``)."""


def render_push(template: PushTemplate, context: Mapping[str, Any]) -> PushContent:
    """Render every part of ``template``; :class:`RenderError` for a template that does not
    render or content over a push notification's limits (the part is ``push``)."""
    title = " ".join(_render(_TEXT, "title", template.title, context).split())
    body = _render(_TEXT, "body", template.body, context).strip()
    link = None
    if template.deep_link is not None:
        link = _render(_TEXT, "deep_link", template.deep_link, context).strip()
    data = {
        key: _render(_TEXT, f"data.{key}", value, context) for key, value in template.data.items()
    }
    try:
        return PushContent(title=title, body=body, deep_link=link, data=data)
    except PushContentError as exc:
        raise RenderError("push", str(exc)) from None
