"""The renderer port: marketers' templates rendered off the event loop, bounded.

A render is bounded in output by the domain (:class:`~shared.domain.rendering.RenderLimits`)
and in time by the renderer: one that takes longer than its time limit is stopped and
raises :class:`~shared.domain.rendering.RenderTooCostly` with ``limit == "time"``. While a
render runs, the event loop is free: every other request and send goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from shared.domain.rendering import AnyTemplate, RenderedMessage, RenderLimits

__all__ = ["Renderer"]


class Renderer(Protocol):
    limits: RenderLimits
    """The output limits every render here obeys."""

    async def parts(
        self, channel: str, content: Mapping[str, Any], context: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``content`` checked as a template of ``channel`` and rendered with ``context``:
        what a save and a preview show (:func:`shared.domain.message_templates.render_parts`).
        Raise ``TemplateContentError``, ``RenderError`` or ``RenderTooCostly``."""
        ...

    async def message(
        self,
        template: AnyTemplate,
        context: Mapping[str, Any],
        *,
        max_segments: int | None = None,
    ) -> RenderedMessage:
        """``template`` rendered for a send (:func:`shared.domain.rendering.render_message`).
        Raise ``RenderError`` or ``RenderTooCostly``."""
        ...

    async def aclose(self) -> None:
        """Stop what the renderer started (its worker processes)."""
        ...
