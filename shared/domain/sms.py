"""How long an SMS is: its encoding, and how many segments (billed parts) it takes.

A text written only in the GSM 03.38 alphabet travels as GSM-7: 160 septets in
one SMS, or 153 per segment once it is split (a concatenated SMS spends 7 on
the header that joins the parts). The extension table (``^ { } \\ [ ~ ] | €``
and form feed) costs two septets, an escape and the character, and the pair is
never split between two segments. One character outside the alphabet (a
Cyrillic letter, ``’``, an emoji) makes the whole text UCS-2: 70 UTF-16 code
units in one SMS, 67 per segment; a character beyond the BMP (most emoji) is a
surrogate pair, two units, also never split. Every segment costs money, so a
campaign sets a maximum and a longer text is refused before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "SmsLength",
    "SmsTooLong",
    "sms_length",
]

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 default alphabet: one septet each."""

GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
"""The GSM 03.38 extension table: an escape septet plus the character, two each."""

_LIMITS: dict[Encoding, tuple[int, int]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}
"""Per encoding: units in a single SMS, units per segment of a multipart one."""


class SmsTooLong(ValueError):
    """A text over the maximum number of segments, or an empty one."""


@dataclass(frozen=True)
class SmsLength:
    encoding: Encoding
    units: int
    """Septets for GSM-7, UTF-16 code units for UCS-2."""
    segments: int


def _char_units(text: str) -> tuple[Encoding, list[int]]:
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        return "GSM-7", [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return "UCS-2", [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def sms_length(text: str, *, max_segments: int | None = None) -> SmsLength:
    """Encoding, units and segments of ``text``.

    Raises :class:`SmsTooLong` for an empty text, or one that needs more than
    ``max_segments`` segments, saying how long it is and how much would fit.
    """
    if not text:
        raise SmsTooLong("an SMS needs some text")
    encoding, sizes = _char_units(text)
    units = sum(sizes)
    single, per_segment = _LIMITS[encoding]
    segments = 1 if units <= single else _pack(sizes, per_segment)
    length = SmsLength(encoding=encoding, units=units, segments=segments)
    if max_segments is not None and segments > max_segments:
        fits = single if max_segments == 1 else per_segment * max_segments
        unit_name = "septets" if encoding == "GSM-7" else "UTF-16 code units"
        why = " (one character outside GSM-7 makes the whole text UCS-2)"
        raise SmsTooLong(
            f"the SMS needs {segments} segments ({units} {encoding} {unit_name}), "
            f"over the maximum of {max_segments}: at most {fits} {unit_name} fit"
            + (why if encoding == "UCS-2" else "")
        )
    return length


def _pack(sizes: list[int], per_segment: int) -> int:
    """Segments needed when no character (escape pair, surrogate pair) is split."""
    segments, used = 1, 0
    for size in sizes:
        if used + size > per_segment:
            segments, used = segments + 1, 0
        used += size
    return segments
