"""The editors' refusals answered as problems, in one place for the API and the pages.

:mod:`services.catalogue.editing` refuses a definition with its own errors; here each
becomes the RFC 9457 problem the API answers (and a page lets through):

- ``ReadOnly``: ``409 read-only``; ``NotFound``: ``404 not-found``; ``Exists``: ``412
  stale-version``; ``ChannelRequired``: ``422 invalid-request`` at ``/channel``.
- ``InvalidRule``: ``422 invalid-rule`` at the bad node, under ``/rule``.
- ``InvalidTemplate``: ``422 invalid-template`` at the part and line, or ``422
  template-too-costly`` naming the limit.
- ``InvalidCampaign``: ``422 invalid-campaign`` listing every bad field.
- ``InvalidProgramme``: ``422 invalid-programme`` at the bad field; ``NoWinner``:
  ``409 no-winner`` (a step promoted with no winner to promote).
- ``RendererUnavailable``: ``503 renderer-unavailable`` with ``Retry-After``.
- ``StaleVersion`` (a save that lost a race): ``412 stale-version`` with the current ``ETag``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from services.catalogue.editing import (
    ChannelRequired,
    EditingError,
    Exists,
    InvalidCampaign,
    InvalidRule,
    InvalidTemplate,
    NotFound,
    ReadOnly,
)
from services.catalogue.programmes import InvalidProgramme, NoWinner
from services.console.api.versions import stale_problem
from services.http.problems import Problem
from shared.errors import RendererUnavailable
from shared.logging import get_logger
from shared.ports.definitions import StaleVersion

__all__ = ["as_problems", "problem_of"]

log = get_logger(__name__)

_RULE_DETAIL = {
    "depth": "{pointer}: {message}",
    "parse": "the rule does not parse at {pointer}: {message}",
    "link": "the rule cannot be used at {pointer}: {message}",
}


_PLAIN: dict[type[EditingError], str] = {
    ReadOnly: "read-only",
    NotFound: "not-found",
    Exists: "stale-version",
    NoWinner: "no-winner",
}
"""Refusals answered with their message alone."""


def _template_problem(error: InvalidTemplate) -> Problem:
    entry: dict[str, Any] = {"pointer": error.pointer, "detail": error.message}
    if error.line:
        entry["line"] = error.line
    where = f" (line {error.line})" if error.line else ""
    detail = f"{error.pointer}{where}: {error.message}"
    if error.limit is not None:
        entry["limit"] = error.limit
        return Problem("template-too-costly", detail, [entry])
    return Problem("invalid-template", detail, [entry])


def problem_of(error: EditingError) -> Problem:
    """The problem an editor's refusal answers."""
    if isinstance(error, InvalidRule):
        pointer = "/rule" + error.pointer
        detail = _RULE_DETAIL[error.stage].format(pointer=pointer, message=error.message)
        return Problem("invalid-rule", detail, [{"pointer": pointer, "detail": error.message}])
    if isinstance(error, InvalidTemplate):
        return _template_problem(error)
    if isinstance(error, InvalidCampaign):
        return Problem(
            "invalid-campaign",
            error.detail,
            [{"pointer": pointer, "detail": message} for pointer, message in error.errors],
        )
    if isinstance(error, InvalidProgramme):
        return Problem(
            "invalid-programme", error.detail, [{"pointer": error.pointer, "detail": error.message}]
        )
    if isinstance(error, ChannelRequired):
        return Problem(
            "invalid-request",
            str(error),
            [{"pointer": "/channel", "detail": "email, sms or push"}],
        )
    for kind, problem in _PLAIN.items():
        if isinstance(error, kind):
            return Problem(problem, str(error))
    raise TypeError(f"no problem for {error!r}")  # pragma: no cover - every kind is above


@contextmanager
def as_problems() -> Iterator[None]:
    """Run an editor's call, its refusals raised as their problems."""
    try:
        yield
    except EditingError as error:
        raise problem_of(error) from None
    except StaleVersion as stale:
        raise stale_problem(stale) from None
    except RendererUnavailable as exc:
        log.warning("template not rendered: no render worker", error=str(exc))
        raise Problem(
            "renderer-unavailable",
            f"the template could not be rendered now ({exc}); nothing was saved",
            headers={"Retry-After": "5"},
        ) from None
