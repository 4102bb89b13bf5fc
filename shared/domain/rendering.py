"""Rendering message templates: sandboxed Jinja2, strict about undefined names.

Templates are written by marketers, so they run in Jinja's
:class:`~jinja2.sandbox.SandboxedEnvironment` (no reach into Python internals),
HTML parts are autoescaped, and a name the template uses but the context lacks
is an error rather than an empty string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["EmailTemplate", "RenderError", "RenderedEmail", "render_email"]

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


def _render(env: SandboxedEnvironment, part: str, source: str, context: Mapping[str, Any]) -> str:
    try:
        return env.from_string(source).render(context)
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
