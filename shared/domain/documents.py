"""What the JSON documents marketers write have in common: pointers, durations, numbers.

Segment rules and campaigns are both written as JSON and both refused with an
error naming the RFC 6901 pointer of the bad node (:class:`DocumentError`, of
which :class:`~shared.domain.rules.RuleError` and
:class:`~shared.domain.campaigns.CampaignError` are kinds). This module holds the
pointers (:func:`child`, :func:`escape`, :func:`unescape`), the durations
(``"30d"``: :func:`parse_duration`, :func:`format_duration`), and the small
checks both parsers make of a node, each raising the parser's own error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "DocumentError",
    "as_decimal",
    "child",
    "duration",
    "escape",
    "format_duration",
    "number",
    "only",
    "parse_duration",
    "text",
    "unescape",
]


class DocumentError(ValueError):
    """A document that does not validate: ``pointer`` names the bad node (RFC 6901)."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{pointer or '/'}: {message}")
        self.pointer = pointer or "/"
        self.message = message


# --- pointers (RFC 6901) ---------------------------------------------------------------


def escape(token: str) -> str:
    """A JSON pointer reference token (RFC 6901): ``~`` is ``~0``, ``/`` is ``~1``."""
    return token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    """The key a JSON pointer reference token names: :func:`escape` undone."""
    return token.replace("~1", "/").replace("~0", "~")


def child(pointer: str, key: object) -> str:
    """``pointer`` extended by ``key`` (an object's member or a list's index), escaped."""
    return f"{pointer}/{escape(str(key))}"


# --- durations -------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``"30d"`` → 30 days; units m (minutes), h, d, w."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"expected a duration such as '30d', '12h' or '2w', got {text!r}")
    amount, unit = match.groups()
    try:
        return timedelta(**{_UNITS[unit]: int(amount)})
    except OverflowError:
        raise ValueError(f"duration {text!r} is too long") from None


def format_duration(span: timedelta) -> str:
    """``14 days`` → ``"14d"``: the largest of d, h, m that writes ``span`` exactly."""
    minutes, rest = divmod(span, timedelta(minutes=1))
    if rest or minutes < 0:
        raise ValueError(f"{span} is not a whole, non-negative number of minutes")
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes and minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


# --- checks of a node, each raising the parser's own error -----------------------------


def duration(written: str, pointer: str, error: type[DocumentError]) -> timedelta:
    """:func:`parse_duration`, refused as ``error`` at ``pointer``."""
    try:
        return parse_duration(written)
    except ValueError as exc:
        raise error(pointer, str(exc)) from None


def as_decimal(value: Any) -> Decimal | None:
    """``value`` as a decimal if it is a number or a numeral (never a boolean), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def number(
    value: Any, pointer: str, error: type[DocumentError], *, not_a_number: str = "expected a number"
) -> Decimal:
    """``value`` as a finite decimal; refused as ``error`` at ``pointer`` with
    ``not_a_number`` when it is none, ``expected a finite number`` when it is infinite."""
    found = as_decimal(value)
    if found is None:
        raise error(pointer, not_a_number)
    if not found.is_finite():
        raise error(pointer, "expected a finite number")
    return found


def only(
    node: Mapping[str, Any],
    allowed: Iterable[str],
    pointer: str,
    error: type[DocumentError],
    *,
    noun: str = "key",
) -> None:
    """Refuse the first key of ``node`` (in sorted order) that is not ``allowed``."""
    extra = sorted(str(k) for k in set(node) - set(allowed))
    if extra:
        raise error(child(pointer, extra[0]), f"unexpected {noun}; allowed here: {sorted(allowed)}")


def text(
    node: Mapping[str, Any], key: str, pointer: str, error: type[DocumentError], what: str
) -> str:
    """``node[key]`` if it is a string with more than blanks, as written; else refused
    as ``error`` at ``key`` under ``pointer``: ``expected`` ``what``."""
    value = node.get(key)
    if not isinstance(value, str) or not value.strip():
        raise error(child(pointer, key), f"expected {what}")
    return value
