"""Spotting payment card numbers (PANs) so that none is ever accepted, stored or logged.

A card number is 13 to 19 digits whose last digit is the Luhn check digit of the
others. Tills and shop backends leak them in free text and in the wrong field,
written ``4111111111111111``, ``4111 1111 1111 1111`` or ``4111-1111-1111-1111``.

What counts as found, in any string: a Luhn-valid stretch of 13 to 19 digits made
of whole *groups*, where a group is a maximal run of digits and groups are
separated by spaces or dashes (any whitespace, ``-`` and the Unicode dashes). So a
card number is found on its own, with any grouping, and next to other numbers it
is only separated from (``4111 1111 1111 1111 123``, card then CVV). A run of
digits written without separators is read as one number: a 13-19 digit run passes
when it fails the Luhn check (most order ids, EAN-13 barcodes), and a run longer
than 19 digits is not a card number.

:func:`card_number_fields` walks decoded JSON and names, by JSON pointer, every
string (keys included) and every integer that holds one. Nothing here ever
returns or repeats the digits.

Walking every field of every event is the dearest part of taking a request in, so
:func:`may_hold_card_number` first looks at the request's JSON text as a whole: a
card number in any field needs 13 digits in a row there (with separators at
most), unless the text hides digits or separators behind an escape (``\\u0034``,
``\\t``) or writes a number with an exponent (``4.1e15``). Only a text with such a
stretch, an escape or an exponent is walked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CardNumberField",
    "card_number_fields",
    "contains_card_number",
    "luhn_valid",
    "may_hold_card_number",
]

MIN_DIGITS = 13
MAX_DIGITS = 19

_SEPARATOR = r"[\s\-\u2010-\u2015\u2212]"  # whitespace, hyphen-minus, Unicode hyphens and dashes
_RUN = re.compile(rf"\d+(?:{_SEPARATOR}+\d+)*")
_GROUP = re.compile(r"\d+")
# A stretch that may hold 13 digits with separators, or a number with an exponent; the
# ASCII form runs over the raw bytes, which is most bodies and about twice as fast.
_SUSPECT = re.compile(rf"\d(?:[eE]|(?:\d|{_SEPARATOR}){{{MIN_DIGITS - 2},}}\d)")
_ASCII_SUSPECT = re.compile(rb"[0-9](?:[eE]|[0-9\s\-]{%d,}[0-9])" % (MIN_DIGITS - 2))


def luhn_valid(digits: str) -> bool:
    """Whether the last of ``digits`` is the Luhn check digit of the others."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def contains_card_number(text: str) -> bool:
    """Whether ``text`` holds a Luhn-valid 13-19 digit number, grouped or not (see above)."""
    for run in _RUN.finditer(text):
        groups = _GROUP.findall(run.group())
        for start in range(len(groups)):
            length = 0
            for end in range(start, len(groups)):
                length += len(groups[end])
                if length > MAX_DIGITS:
                    break
                if length >= MIN_DIGITS and luhn_valid("".join(groups[start : end + 1])):
                    return True
    return False


def may_hold_card_number(json_body: bytes) -> bool:
    """Whether some string, key or number of the JSON document ``json_body`` may hold a
    card number; ``False`` only when none can, so its fields need not be walked."""
    if b"\\" in json_body:
        return True
    if json_body.isascii():
        return _ASCII_SUSPECT.search(json_body) is not None
    return _SUSPECT.search(json_body.decode("utf-8", errors="replace")) is not None


@dataclass(frozen=True, slots=True)
class CardNumberField:
    """Where a card number was found: a JSON pointer, and whether it is in a key there."""

    pointer: str
    in_key: bool = False


def card_number_fields(document: Any) -> list[CardNumberField]:
    """Every place in decoded JSON that holds a card number, in document order.

    Strings, object keys and integers (as their decimal digits; floats with an
    integral value too) are scanned. A key holding a card number is reported at
    the pointer of its object, with ``in_key`` set, and its value is not looked
    into: a pointer through that key would repeat the number. The walk keeps its
    own stack, so however deep the document, it does not recurse.
    """
    found: list[CardNumberField] = []
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, pointer = stack.pop()
        if isinstance(value, CardNumberField):
            found.append(value)
        elif isinstance(value, dict):
            children: list[tuple[Any, str]] = [
                (CardNumberField(pointer, in_key=True), pointer)
                if contains_card_number(str(key))
                else (child, f"{pointer}/{_escape(str(key))}")
                for key, child in value.items()
            ]
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend((child, f"{pointer}/{i}") for i, child in reversed(list(enumerate(value))))
        elif _scalar_holds_card_number(value):
            found.append(CardNumberField(pointer))
    return found


def _scalar_holds_card_number(value: Any) -> bool:
    if isinstance(value, str):
        return contains_card_number(value)
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return contains_card_number(str(value))
    if isinstance(value, float) and value.is_integer():
        return contains_card_number(str(int(value)))
    return False


def _escape(token: str) -> str:
    """A JSON pointer reference token (RFC 6901): ``~`` is ``~0``, ``/`` is ``~1``."""
    return token.replace("~", "~0").replace("/", "~1")
