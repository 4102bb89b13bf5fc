"""Masking identifiers for logs and for readers without the right to see them.

``+79161234567`` becomes ``+7*******67`` and ``anna@shop.ru`` becomes
``a***@shop.ru``; anything else that identifies a buyer keeps only its first and
last characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

__all__ = ["mask_email", "mask_identifier", "mask_phone", "mask_text", "mask_traits"]

V = TypeVar("V")

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_PHONE_LIKE = re.compile(r"\+?\d[\d ()-]{6,22}\d")
_DIGITS = re.compile(r"\d(?:[ -]?\d){12,18}")


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else mask_identifier(email)


def mask_phone(phone: str) -> str:
    """The first digit and the last two, the rest hidden: ``+7*******67``."""
    digits = "".join(c for c in phone if c.isdigit())
    if len(digits) < 5:
        return "*" * len(phone)
    prefix = "+" if phone.strip().startswith("+") else ""
    return f"{prefix}{digits[0]}{'*' * (len(digits) - 4)}{digits[-2:]}"


def mask_identifier(value: str) -> str:
    if len(value) <= 4:
        return "*" * len(value)
    return f"{value[0]}{'*' * (len(value) - 2)}{value[-1]}"


def mask_text(text: str) -> str:
    """Mask every email address, phone number and long digit run inside free text."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _DIGITS.sub(lambda m: "#" * len(m.group(0)), text)
    return _PHONE_LIKE.sub(_mask_if_phone, text)


def _mask_if_phone(match: re.Match[str]) -> str:
    """A phone: 10-15 digits, written with a leading ``+`` or with separators."""
    found = match.group(0)
    digits = sum(c.isdigit() for c in found)
    written = found.startswith("+") or not found.isdigit()
    return mask_phone(found) if 10 <= digits <= 15 and written else found


def mask_traits(traits: Mapping[str, V]) -> dict[str, V | str]:
    """``traits`` with every contact inside a text trait masked (:func:`mask_text`); other
    values as they are."""
    return {k: mask_text(v) if isinstance(v, str) else v for k, v in traits.items()}
