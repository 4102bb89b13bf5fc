"""Spotting payment card numbers (PANs) so that none is ever accepted, stored or logged.

A card number is what a card number really looks like, and nothing else:

- 13 to 19 digits whose first ones are a card network's issuer prefix, at a length
  that network issues (:mod:`shared.domain.card_issuers`), and whose last digit is the
  Luhn check digit of the others;
- written as people and systems write them: contiguous (``4111111111111111``), in
  groups of four with one kind of separator between them (``4111 1111 1111 1111``,
  ``4111.1111.1111.1111``, the last group may be shorter: ``4111 1111 1111 1111 113``),
  or in the 4-6-5 and 4-6-4 shapes of American Express and Diners
  (``3782 822463 10005``). A separator is one to three of: any space or white space
  (Unicode ``Zs`` included), any dash (``Pd``) or minus, ``.``, ``/``, ``_``; spaces and
  dashes count as one kind, ``.``, ``/`` and ``_`` each as its own. Format characters
  (``Cf``: zero-width space, soft hyphen, word joiner...) are invisible and are taken
  out before anything is read; digits of any script count;
- a token of its own: a letter or digit right before or after it (``x4111...``,
  ``...1111ab``, a longer run of digits) makes it part of a longer token, which is
  not a card number. So no UUID is ever one: its 8-4-4-4-12 shape is none of the above;
- not an epoch timestamp (contiguous milliseconds, 13 digits, or nanoseconds, 18 or
  19, between 1990 and 2100) and, at 13 digits, not an EAN-13 barcode (its own check
  digit valid).

JSON numbers count too: an integer by its digits, a number with a fraction by its
integer part and by its digits without the point (``4424154152064361.5``,
``4424.154152064361``), unless its integer part is an epoch timestamp (seconds,
milliseconds, microseconds or nanoseconds between 1990 and 2100). A double at or above
10^16 no longer holds every digit of a number, so such numbers are not read.

Reading is linear in the text and bounded. The text's UTF-8 bytes are mapped byte for
byte to a skeleton (``bytes.translate``) in which nearly all of a body is cleared by
``bytes`` searches; only the runs of digits and separators that can hold a card
number are read, a run of ASCII digits alone directly, any other with one regular
expression of bounded repetitions (no nested unbounded quantifier, so no
backtracking blow-up) that finds every place where a card's shape starts; each
window found costs a fixed amount of work, and one read makes at most
:data:`MAX_CHECKS` such checks. :func:`scan_for_card_numbers` reads a whole request's
JSON text in that one pass (exactly: it clears a document only if none of its strings,
keys or numbers holds a card number) and walks the decoded document for pointers only
when it found one. Nothing here ever returns or repeats the digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from shared.domain.card_issuers import issuer_lengths
from shared.domain.documents import child

__all__ = [
    "MAX_CHECKS",
    "CardNumberField",
    "CardNumberScan",
    "card_number_fields",
    "contains_card_number",
    "luhn_valid",
    "may_hold_card_number",
    "scan_for_card_numbers",
]

MIN_DIGITS = 13
MAX_DIGITS = 19

# Unicode 14 (Python 3.11's unicodedata), checked against unicodedata by the unit tests.
FORMAT_CHARACTERS = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U00013438"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
DASHES = (
    "\\-\u058a\u05be\u1400\u1806\u2010-\u2015\u2e17\u2e1a\u2e3a\u2e3b\u2e40\u2e5d\u301c"
    "\u3030\u30a0\ufe31\ufe32\ufe58\ufe63\uff0d\U00010ead\u2212"
)
SPACES = "\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"

_FORMAT = re.compile(f"[{FORMAT_CHARACTERS}]+")
_S = f"[{SPACES}{DASHES}./_]"
_SEP = f"{_S}{{1,3}}"
_END = r"(?![^\W_])"  # no letter or digit right after: the token ends here

# Most of a text is cleared without a regular expression reading it, from its UTF-8
# bytes mapped byte for byte (bytes.translate): an ASCII digit to "0", an ASCII
# separator to "s" ("." to "p"), any other ASCII character to "x". A byte of a
# non-ASCII character maps to "0" (it may be a digit, a separator or a format
# character, and so may carry a card number on), except the first byte of a
# character from a block that holds no digit, separator or format character (Latin
# letters, Greek, Cyrillic, Armenian, CJK ideographs, Hangul, private use), which
# maps to "x". Every card number's bytes so map to a run of "0", "s" and "p" that
# starts with four "0" (its first group) and holds at least thirteen, or (a number
# with a fraction) that holds a "p" followed by ten "0": only the runs around such a
# place are read with the regular expression.
_SKELETON = bytearray(b"x" * 256)
_SKELETON[0x80:0xC0] = b"0" * 0x40  # continuation bytes
_SKELETON[0xC2:0xF5] = b"0" * (0xF5 - 0xC2)
for _lead in (*range(0xC3, 0xD6), *range(0xE4, 0xEA), *range(0xEB, 0xEF)):
    _SKELETON[_lead] = ord("x")
_SKELETON[ord("0") : ord("9") + 1] = b"0" * 10
for _byte in b"\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f -/_":
    _SKELETON[_byte] = ord("s")
_SKELETON[ord(".")] = ord("p")
_SKELETON_TABLE = bytes(_SKELETON)
_RUN_STARTS = (re.compile(rb"0000[0sp]{9}"), re.compile(rb"p0{10}"))

# Epoch timestamps between 1990-01-01 and 2100-01-01, in seconds.
_EPOCH_FIRST = 631_152_000
_EPOCH_LAST = 4_102_444_800

# The most numbers shaped like card numbers read for one request (a Luhn check each);
# past that, the request is refused as holding card numbers rather than read further.
MAX_CHECKS = 50_000


_POINT = r"(?![\w.])"
_DECIMAL_SHAPE = (
    rf"(?=[\d.]{{{MIN_DIGITS},{MAX_DIGITS}}}{_POINT})"
    rf"\d{{0,{MAX_DIGITS - 2}}}\.\d{{1,{MAX_DIGITS - 1}}}{_POINT}"
)
_DECIMAL = re.compile(_DECIMAL_SHAPE)
"""A decimal number of 13-19 digits (its whole part and its fraction read as one)."""


def _window_pattern(with_fractions: bool) -> re.Pattern[str]:
    """Where a card number may start: a digit with no letter or digit right before it,
    then (looking ahead, capturing the rest of each shape that fits from there):
    ``c`` contiguous, ``a`` 4-6-4/4-6-5, ``f`` four groups (4-4-4-1..4), ``l`` five
    (4-4-4-4-1..3), and with ``with_fractions`` ``d``, a decimal number of 13-19 digits."""
    shapes = [
        rf"(?=(?P<c>\d{{{MIN_DIGITS - 1},{MAX_DIGITS - 1}}}{_END}))",
        rf"(?=(?P<a>\d{{3}}{_SEP}\d{{6}}{_SEP}\d{{4,5}}{_END}))",
        rf"(?=(?P<f>\d{{3}}{_SEP}\d{{4}}{_SEP}\d{{4}}{_SEP}\d{{1,4}}{_END}))"
        rf"(?:(?=(?P<l>\d{{3}}(?:{_SEP}\d{{4}}){{3}}{_SEP}\d{{1,3}}{_END})))?",
    ]
    start = r"(?=\d{3})"
    if with_fractions:
        shapes.append(rf"(?=(?P<d>{_DECIMAL_SHAPE}))")
        start = r"(?=\d{3}|\d{0,2}\.\d{10})"
    return re.compile(rf"\d(?<![^\W_]\d){start}(?:{'|'.join(shapes)})")


_WINDOWS = _window_pattern(with_fractions=False)
_JSON_WINDOWS = _window_pattern(with_fractions=True)
_SEPARATOR_RUN = re.compile(f"{_S}+")
_NOT_DIGITS = re.compile(r"\D+")
_ASCII_SEPARATORS = dict.fromkeys(b"\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f -./_", None)
_KINDS = {".": ".", "/": "/", "_": "_"}  # every other separator is a space or a dash
_LENGTHS = issuer_lengths()
# The lengths issued under each four-digit start by the prefixes of up to four digits,
# and the four-digit starts under which a longer prefix is issued too.
_BY_START = {
    f"{start:04d}": frozenset().union(
        *(_LENGTHS.get(f"{start:04d}"[:size], frozenset()) for size in range(1, 5))
    )
    for start in range(10_000)
}
_LONGER_PREFIXES = sorted({len(prefix) for prefix in _LENGTHS if len(prefix) > 4})
_DEEPER_STARTS = frozenset(prefix[:4] for prefix in _LENGTHS if len(prefix) > 4)
# Any length issued under a four-digit start, its longer prefixes included: a first look.
_MAY_BE_ISSUED = {
    start.encode(): lengths.union(
        *(_LENGTHS[prefix] for prefix in _LENGTHS if prefix.startswith(start) and len(prefix) > 4)
    )
    for start, lengths in _BY_START.items()
}
_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")


class _TooMany(Exception):
    """More numbers shaped like card numbers than one request may make us check."""


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_CHECKS

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise _TooMany


def luhn_valid(digits: str) -> bool:
    """Whether the last of ``digits`` (ASCII) is the Luhn check digit of the others."""
    data = digits.encode("ascii")
    total = sum(data[-1::-2]) + sum(data[-2::-2].translate(_DOUBLED)) - 48 * len(data)
    return total % 10 == 0


def _ean13_valid(digits: str) -> bool:
    """Whether 13 ``digits`` are an EAN-13 (GTIN-13) barcode: its own check digit."""
    data = digits.encode("ascii")
    weighted = sum(data[0:12:2]) + 3 * sum(data[1:12:2]) - 48 * 24
    return (-weighted) % 10 == data[12] - 48


def _ascii(digits: str) -> str:
    return digits if digits.isascii() else str(int(digits)).zfill(len(digits))


def _is_card_number(digits: str) -> bool:
    """Whether ``digits`` (ASCII, 13 to 19) are a known issuer's card number, Luhn-valid,
    and not, at 13 digits, an EAN-13 barcode."""
    length = len(digits)
    start = digits[:4]
    issued = length in _BY_START[start] or (
        start in _DEEPER_STARTS
        and any(length in _LENGTHS.get(digits[:size], ()) for size in _LONGER_PREFIXES)
    )
    return issued and luhn_valid(digits) and not (length == 13 and _ean13_valid(digits))


def _in_epoch(value: int, per_second: int) -> bool:
    return _EPOCH_FIRST * per_second <= value <= _EPOCH_LAST * per_second


def _is_timestamp(digits: str) -> bool:
    """Epoch milliseconds (13 digits) or nanoseconds (18 or 19) between 1990 and 2100."""
    value = int(digits)
    return _in_epoch(value, 1000) or _in_epoch(value, 10**9)


def _window_is_card(kind: str, window: str) -> bool:
    if kind == "c":
        digits = _ascii(window)
        return _is_card_number(digits) and not _is_timestamp(digits)
    if window.isascii():
        digits = window.translate(_ASCII_SEPARATORS)
    else:
        digits = _ascii(_NOT_DIGITS.sub("", window))
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS or not _is_card_number(digits):
        return False
    if kind == "d":
        return True
    separators = _SEPARATOR_RUN.findall(window)
    return len({frozenset(_KINDS.get(char, " ") for char in sep) for sep in separators}) == 1


def _read(pattern: re.Pattern[str], text: str, budget: _Budget) -> bool:
    """Whether ``text`` (a short stretch) holds a card number, read with ``pattern``."""
    if not text.isascii():
        text = _FORMAT.sub("", text)
    kinds = sorted(pattern.groupindex, key=pattern.groupindex.__getitem__)
    for found in pattern.finditer(text):
        start = found.start()
        for kind, (_, end) in zip(kinds, found.regs[1:], strict=True):
            if end > 0:
                budget.spend()
                if _window_is_card(kind, text[start:end]):
                    return True
        # A decimal's whole part matched as digits: its digits with the fraction too.
        if (
            "d" in kinds
            and found["d"] is None
            and found["c"] is not None
            and (decimal := _DECIMAL.match(text, start))
        ):
            budget.spend()
            if _window_is_card("d", decimal[0]):
                return True
    return False


def _holds(pattern: re.Pattern[str], data: bytes, budget: _Budget) -> bool:
    """Whether the UTF-8 text ``data`` holds a card number: its skeleton (see above)
    finds the runs that may, and only those are read with ``pattern``."""
    skeleton = data.translate(_SKELETON_TABLE)
    openers = [
        opener
        for opener, needle in zip(_RUN_STARTS, (b"0000", b"p0000000000"), strict=True)
        if needle in skeleton
    ]
    for opener in openers:
        position = 0
        while found := opener.search(skeleton, position):
            start = skeleton.rfind(b"x", 0, found.start()) + 1
            end = skeleton.find(b"x", found.end())
            end = len(data) if end < 0 else end
            if skeleton.count(b"0", start, end) == end - start and data[start:end].isascii():
                # a run of ASCII digits alone, between two characters that are not digits
                if end - start in _MAY_BE_ISSUED[data[start : start + 4]]:
                    budget.spend()
                    if _digit_run_is_card(data, start, end):
                        return True
            elif _read(pattern, _with_neighbours(data, start, end), budget):
                return True
            position = end
    return False


def _with_neighbours(data: bytes, start: int, end: int) -> str:
    """The text of ``data[start:end]`` with the character before it and the one after."""
    first = max(0, start - 1)
    while first > 0 and 0x80 <= data[first] < 0xC0:
        first -= 1
    last = min(len(data), end + 1)
    while last < len(data) and 0x80 <= data[last] < 0xC0:
        last += 1
    return data[first:last].decode("utf-8")


def _digit_run_is_card(data: bytes, start: int, end: int) -> bool:
    """Whether the ASCII digits ``data[start:end]``, a whole run, are a card number: not
    glued to a letter after them (the byte before is ASCII and not a letter: the
    skeleton's runs start after one)."""
    if not _window_is_card("c", data[start:end].decode("ascii")):
        return False
    before = data[start - 1 : start].decode("ascii") if start else ""
    after = data[end : end + 4].decode("utf-8", "ignore")[:1]
    return not before.isalnum() and not after.isalnum()


def contains_card_number(text: str) -> bool:
    """Whether ``text`` holds a card number, as the module's docstring says (or more than
    :data:`MAX_CHECKS` numbers shaped like one, which are not all read)."""
    try:
        return _text_holds(text, _Budget())
    except _TooMany:
        return True


def _text_holds(text: str, budget: _Budget) -> bool:
    return len(text) >= MIN_DIGITS and _holds(_WINDOWS, text.encode("utf-8"), budget)


def _number_holds_card_number(value: int | float) -> bool:
    if isinstance(value, int):
        digits = str(abs(value))
        return MIN_DIGITS <= len(digits) <= MAX_DIGITS and _window_is_card("c", digits)
    written = repr(abs(value))
    if "e" in written or "n" in written:  # past 10**16, tiny, inf or nan: no card's digits
        return False
    whole, _, fraction = written.partition(".")
    if MIN_DIGITS <= len(whole) <= MAX_DIGITS and _window_is_card("c", whole):
        return True
    if _is_epoch_seconds_or_finer(whole):
        return False
    digits = whole + fraction
    return MIN_DIGITS <= len(digits) <= MAX_DIGITS and _is_card_number(digits)


def _is_epoch_seconds_or_finer(whole: str) -> bool:
    per_second = {10: 1, 13: 10**3, 16: 10**6, 19: 10**9}.get(len(whole))
    return per_second is not None and _in_epoch(int(whole), per_second)


def _unescaped(json_text: bytes) -> bytes:
    """``json_text`` as written by orjson with its escapes read: a quote, a backslash or a
    control character, each as itself or (for a control character that is not white
    space) as another character that is neither a separator nor a digit nor a letter."""
    text = json_text.replace(b"\\\\", b"\x00").replace(b'\\"', b'"')
    for escape, char in ((b"\\t", b"\t"), (b"\\n", b"\n"), (b"\\r", b"\r"), (b"\\f", b"\f")):
        text = text.replace(escape, char)
    for code in (0x0B, 0x1C, 0x1D, 0x1E, 0x1F):
        text = text.replace(b"\\u%04x" % code, b" ")
    return re.sub(rb"\\(?:b|u00[01][0-9a-f])", b"\x00", text)


def may_hold_card_number(document: Any) -> bool:
    """Whether a string, key or number of the decoded JSON ``document`` may hold a card
    number; ``False`` only when none does, so its fields need not be walked.

    The document is read as orjson writes it: strings as their characters (escaping
    only quotes, backslashes and control characters, read back here), numbers in their
    shortest form; one pass over that text. A document with more numbers shaped like
    card numbers than :data:`MAX_CHECKS` may hold one (it is not read further).
    """
    try:
        return _may_hold(document, _Budget())
    except _TooMany:
        return True


def _may_hold(document: Any, budget: _Budget) -> bool:
    try:
        text = orjson.dumps(document)
    except (TypeError, orjson.JSONEncodeError):  # not decoded JSON: walk it
        return True
    if b"\\" in text:
        text = _unescaped(text)
    return _holds(_JSON_WINDOWS, text, budget)


@dataclass(frozen=True, slots=True)
class CardNumberField:
    """Where a card number was found: a JSON pointer, and whether it is in a key there."""

    pointer: str
    in_key: bool = False


@dataclass(frozen=True, slots=True)
class CardNumberScan:
    """What :func:`scan_for_card_numbers` found: every field holding a card number, in
    document order, and whether it stopped after :data:`MAX_CHECKS` checks (``unread``:
    what was not read may hold more; a scan that stopped never clears a document)."""

    fields: tuple[CardNumberField, ...]
    unread: bool = False

    @property
    def clear(self) -> bool:
        return not self.fields and not self.unread


def scan_for_card_numbers(document: Any) -> CardNumberScan:
    """The card numbers of decoded JSON ``document``: one pass over its text, then, only
    if that found one, a walk of its fields for their pointers; at most
    :data:`MAX_CHECKS` checks in all."""
    budget = _Budget()
    found: list[CardNumberField] = []
    try:
        if _may_hold(document, budget):
            _walk(document, budget, found)
    except _TooMany:
        return CardNumberScan(tuple(found), unread=True)
    return CardNumberScan(tuple(found))


def card_number_fields(document: Any) -> list[CardNumberField]:
    """Every place in decoded JSON that holds a card number, in document order.

    Strings, object keys and numbers are read. A key holding a card number is reported
    at the pointer of its object, with ``in_key`` set, and its value is not looked
    into: a pointer through that key would repeat the number. The walk keeps its
    own stack, so however deep the document, it does not recurse. Past
    :data:`MAX_CHECKS` checks, the rest of the document is reported as one field at
    the root (``""``).
    """
    found: list[CardNumberField] = []
    try:
        _walk(document, _Budget(), found)
    except _TooMany:
        found.append(CardNumberField(""))
    return found


def _walk(document: Any, budget: _Budget, found: list[CardNumberField]) -> None:
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, pointer = stack.pop()
        if isinstance(value, CardNumberField):
            found.append(value)
        elif isinstance(value, dict):
            children: list[tuple[Any, str]] = [
                (CardNumberField(pointer, in_key=True), pointer)
                if _text_holds(str(key), budget)
                else (member, child(pointer, key))
                for key, member in value.items()
            ]
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend((child, f"{pointer}/{i}") for i, child in reversed(list(enumerate(value))))
        elif _scalar_holds(value, budget):
            found.append(CardNumberField(pointer))


def _scalar_holds(value: Any, budget: _Budget) -> bool:
    if isinstance(value, str):
        return _text_holds(value, budget)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number_holds_card_number(value)
    return False
