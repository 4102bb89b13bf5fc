"""Message templates as marketers write them: the parts each channel needs, checked on save.

A template is a channel and its content: email ``subject``, ``html``, ``text``; sms
``text``; push ``title``, ``body`` and an optional ``deep_link``. :func:`checked_template`
turns stored content into the renderer's template and refuses, with the place of the
fault, a part that is missing, unknown, not text, or that reaches for Python's
internals (any name or attribute starting with ``_``, even in a branch the sample
would not render). A template is tried on save, and in a preview without a buyer,
on the sample buyer (:data:`shared.domain.sample_buyer.SAMPLE_PROFILE`) and a trigger
whose every property reads as ``[name]`` (:func:`sample_trigger`).

This module imports no more than rendering needs: the render workers import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from shared.domain.rendering import (
    DEFAULT_LIMITS,
    AnyTemplate,
    EmailTemplate,
    PushTemplate,
    RenderLimits,
    SmsTemplate,
    render_email,
    render_push,
    render_sms,
)

__all__ = [
    "PARTS",
    "AnyTemplate",
    "MessageChannel",
    "TemplateContentError",
    "checked_and_rendered",
    "checked_template",
    "content_of",
    "render_parts",
    "sample_trigger",
]

MessageChannel = Literal["email", "sms", "push"]


@dataclass(frozen=True)
class _Parts:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


PARTS: Final[dict[str, _Parts]] = {
    "email": _Parts(("subject", "html", "text")),
    "sms": _Parts(("text",)),
    "push": _Parts(("title", "body"), ("deep_link",)),
}
"""The parts of each channel's content."""

_MAX_PART = 100_000


class TemplateContentError(ValueError):
    """Content that is not a template of its channel: ``pointer`` names the part
    (``/content/html``), ``line`` the line in it where known."""

    def __init__(self, pointer: str, message: str, line: int | None = None) -> None:
        where = f" (line {line})" if line else ""
        super().__init__(f"{pointer}{where}: {message}")
        self.pointer = pointer
        self.message = message
        self.line = line

    def __reduce__(self) -> tuple[Any, ...]:  # pickled back from a render worker
        return (type(self), (self.pointer, self.message, self.line))


class _SampleTrigger(dict[str, Any]):
    """A trigger whose every property reads as ``[name]``: an event-triggered template
    is tried without a real event."""

    def __missing__(self, name: str) -> str:
        return f"[{name}]"


def sample_trigger() -> Mapping[str, Any]:
    return _SampleTrigger()


_PARSER = SandboxedEnvironment()


def _refuse_internals(part: str, source: str) -> None:
    """Names and attributes that start with ``_`` are Python's internals: refused. So is a
    template nested too deep to read (Python's recursion limit)."""
    try:
        tree = _PARSER.parse(source)
        found = list(tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)))
    except TemplateSyntaxError as exc:
        message = exc.message or "syntax error"
        raise TemplateContentError(f"/content/{part}", message, exc.lineno) from None
    except RecursionError:
        raise TemplateContentError(f"/content/{part}", "nested too deep to read") from None
    for node in found:
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Name):
            name = node.name
        else:
            assert isinstance(node, nodes.Getitem)
            key = node.arg
            name = key.value if isinstance(key, nodes.Const) and isinstance(key.value, str) else ""
        if name.startswith("_"):
            raise TemplateContentError(
                f"/content/{part}", f"{name!r}: names starting with _ are not allowed", node.lineno
            )


def checked_template(channel: str, content: Mapping[str, Any]) -> AnyTemplate:
    """The renderer's template for ``content`` on ``channel``; raise
    :class:`TemplateContentError` for missing, unknown or unsafe parts."""
    parts = PARTS.get(channel)
    if parts is None:
        raise TemplateContentError("/channel", f"expected one of {', '.join(PARTS)}")
    for name in content:
        if name not in parts.required + parts.optional:
            allowed = ", ".join(parts.required + parts.optional)
            raise TemplateContentError(f"/content/{name}", f"unknown part; {channel} has {allowed}")
    for name in parts.required:
        if name not in content:
            raise TemplateContentError(f"/content/{name}", f"a {channel} template needs {name}")
    for name, source in content.items():
        if not isinstance(source, str):
            raise TemplateContentError(f"/content/{name}", "expected text")
        if len(source) > _MAX_PART:
            raise TemplateContentError(f"/content/{name}", f"at most {_MAX_PART} characters")
        _refuse_internals(name, source)
    if channel == "email":
        return EmailTemplate(subject=content["subject"], html=content["html"], text=content["text"])
    if channel == "sms":
        return SmsTemplate(text=content["text"])
    return PushTemplate(
        title=content["title"], body=content["body"], deep_link=content.get("deep_link")
    )


def content_of(template: AnyTemplate) -> tuple[MessageChannel, dict[str, str]]:
    """The channel and the content of ``template``: what :func:`checked_template` reads
    back into it (a ready-made template shown in the editor as a marketer's would be)."""
    if isinstance(template, EmailTemplate):
        return "email", {"subject": template.subject, "html": template.html, "text": template.text}
    if isinstance(template, SmsTemplate):
        return "sms", {"text": template.text}
    content = {"title": template.title, "body": template.body}
    if template.deep_link is not None:
        content["deep_link"] = template.deep_link
    return "push", content


def render_parts(
    template: AnyTemplate, context: Mapping[str, Any], *, limits: RenderLimits = DEFAULT_LIMITS
) -> dict[str, Any]:
    """Every part of ``template`` rendered with ``context``; :class:`RenderError` (with
    the part and the line) for one that does not render, :class:`RenderTooCostly` for
    one over ``limits`` (see :mod:`shared.domain.rendering`)."""
    return _render_parts(template, context, limits)  # its errors name their line


def checked_and_rendered(
    channel: str,
    content: Mapping[str, Any],
    context: Mapping[str, Any],
    *,
    limits: RenderLimits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    """:func:`checked_template` then :func:`render_parts`, in one call: what a save or a
    preview runs off the event loop (reading a template is work too)."""
    return render_parts(checked_template(channel, content), context, limits=limits)


def _render_parts(
    template: AnyTemplate, context: Mapping[str, Any], limits: RenderLimits
) -> dict[str, Any]:
    if isinstance(template, EmailTemplate):
        email = render_email(template, context, limits=limits)
        return {"subject": email.subject, "html": email.html, "text": email.text}
    if isinstance(template, SmsTemplate):
        sms = render_sms(template, context, limits=limits)
        return {"text": sms.text, "segments": sms.length.segments}
    push = render_push(template, context, limits=limits)
    rendered: dict[str, Any] = {"title": push.title, "body": push.body}
    if push.deep_link is not None:
        rendered["deep_link"] = push.deep_link
    return rendered
