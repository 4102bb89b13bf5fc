"""Promo codes: the ones nudge generates (signed, checked offline), and a shop's uploaded pool.

**Generated codes.** A generated code names its offer's prefix, a nonce, the last day it
is valid and a MAC over all of it with the shop's offer-code key (``NUDGE_OFFER_CODE_KEY``,
shared with the checkout), in Crockford base32 (digits and capitals without I, L, O, U)::

    body  = nonce (12 characters, 60 bits) + last valid day (3 characters: days since
            2020-01-01, UTC)
    mac   = HMAC-SHA256(key, "nudge-offer-code/v1\\n" + offer key + "\\n" + body),
            its first 45 bits as 9 characters
    code  = prefix "-" the 24 characters of body + mac, in four groups of six, joined by "-"

The nonce is drawn from the message (:func:`nonce_for`: an HMAC of the offer and the
message key), so the code of a message is the same however often the dispatcher comes
back to it, and nobody without the key can tell another buyer's code. A checkout checks
a code offline with :func:`verify_code` (docs/offers.md shows the steps with a worked
example): the MAC proves nudge made it for that offer, the day says until when; that it
is used once is the checkout's to record (or nudge's, from the purchase's ``promo_codes``).

**Pools.** :func:`parse_pool` reads the CSV a shop uploads: one code a line (its first
column), an optional ``code`` header, each code 1 to 64 letters, digits, ``-`` or ``_``,
no code twice; a bad line is a :class:`PoolError` naming it, and nothing is taken.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

__all__ = [
    "ALPHABET",
    "MAX_POOL_CODES",
    "BadCode",
    "PoolError",
    "VerifiedCode",
    "generate_code",
    "last_valid_day",
    "nonce_for",
    "normalise_code",
    "parse_pool",
    "verify_code",
]

ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32: no I, L, O or U, which people misread."""
_MISREAD: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})
_PURPOSE: Final = b"nudge-offer-code/v1\n"
_NONCE_PURPOSE: Final = b"nudge-offer-nonce/v1\n"
_NONCE_CHARS: Final = 12
_DAY_CHARS: Final = 3
_MAC_CHARS: Final = 9
_BODY_CHARS: Final = _NONCE_CHARS + _DAY_CHARS
_EPOCH: Final = date(2020, 1, 1)
_LAST_DAY: Final = _EPOCH + timedelta(days=32**_DAY_CHARS - 1)
_PREFIX = re.compile(r"^[A-Z0-9]{1,12}$")

MAX_POOL_CODES: Final = 100_000
"""The most codes one upload holds; upload a larger pool in parts."""
_POOL_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class BadCode(ValueError):
    """A code nudge did not make for this offer with this key, or one past its day."""


@dataclass(frozen=True)
class VerifiedCode:
    """What a genuine code says: its nonce (what a checkout records as used) and the last
    day (UTC) it is valid."""

    nonce: str
    last_valid_day: date


def _encode(value: int, chars: int) -> str:
    return "".join(ALPHABET[(value >> (5 * (chars - 1 - i))) & 31] for i in range(chars))


def _decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + ALPHABET.index(char)
    return value


def _bits(digest: bytes, chars: int) -> int:
    """The first ``5 * chars`` bits of ``digest``."""
    bits = 5 * chars
    return int.from_bytes(digest[: (bits + 7) // 8], "big") >> (-bits % 8)


def _mac(key: bytes, offer: str, body: str) -> str:
    digest = hmac.new(key, _PURPOSE + f"{offer}\n{body}".encode(), hashlib.sha256).digest()
    return _encode(_bits(digest, _MAC_CHARS), _MAC_CHARS)


def last_valid_day(expires_at: datetime) -> date:
    """The last UTC day a code that stops being valid at ``expires_at`` is valid on."""
    return (expires_at.astimezone(UTC) - timedelta(microseconds=1)).date()


def nonce_for(key: bytes, offer: str, message_key: str, attempt: int = 0) -> str:
    """The nonce of the code ``message_key`` carries: the same for the same message,
    unguessable without ``key``; ``attempt`` draws another (after a clash, once in ~10^18)."""
    text = f"{offer}\n{message_key}\n{attempt}".encode()
    digest = hmac.new(key, _NONCE_PURPOSE + text, hashlib.sha256).digest()
    return _encode(_bits(digest, _NONCE_CHARS), _NONCE_CHARS)


def generate_code(key: bytes, *, offer: str, prefix: str, nonce: str, last_day: date) -> str:
    """The code of ``offer`` with ``nonce`` (:func:`nonce_for`), valid through ``last_day``."""
    if not _PREFIX.match(prefix):
        raise ValueError("a prefix is 1 to 12 capital letters and digits")
    if len(nonce) != _NONCE_CHARS or any(c not in ALPHABET for c in nonce):
        raise ValueError(f"a nonce is {_NONCE_CHARS} characters of {ALPHABET}")
    if not _EPOCH <= last_day <= _LAST_DAY:
        raise ValueError(f"a code's last day is from {_EPOCH} to {_LAST_DAY}")
    body = nonce + _encode((last_day - _EPOCH).days, _DAY_CHARS)
    whole = body + _mac(key, offer, body)
    return "-".join([prefix, *(whole[i : i + 6] for i in range(0, len(whole), 6))])


def normalise_code(code: str) -> str:
    """``code`` as nudge writes it: capitals, no spaces, O read as 0, I and L as 1
    (in the part after the prefix)."""
    written = code.strip().upper().replace(" ", "")
    prefix, dash, rest = written.partition("-")
    return prefix + dash + rest.translate(_MISREAD)


def verify_code(key: bytes, code: str, *, offer: str, prefix: str, today: date) -> VerifiedCode:
    """Check ``code`` offline: made by nudge with ``key`` for ``offer`` (whose prefix is
    ``prefix``), and valid on ``today`` (UTC). :class:`BadCode` says why not."""
    written = normalise_code(code)
    head, _, rest = written.partition("-")
    if head != prefix:
        raise BadCode(f"not a code of this offer (its codes start {prefix}-)")
    whole = rest.replace("-", "")
    if len(whole) != _BODY_CHARS + _MAC_CHARS or any(c not in ALPHABET for c in whole):
        raise BadCode("not a code nudge makes")
    body, mac = whole[:_BODY_CHARS], whole[_BODY_CHARS:]
    if not hmac.compare_digest(mac, _mac(key, offer, body)):
        raise BadCode("the code's check characters do not match: mistyped, or not ours")
    last_day = _EPOCH + timedelta(days=_decode(body[_NONCE_CHARS:]))
    if today > last_day:
        raise BadCode(f"the code expired: it was valid through {last_day.isoformat()}")
    return VerifiedCode(body[:_NONCE_CHARS], last_day)


class PoolError(ValueError):
    """An upload that is not a pool of codes: ``line`` (1-based; 0 for the whole file)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.message = message


def parse_pool(text: str) -> tuple[str, ...]:
    """The codes of an uploaded CSV, in order; :class:`PoolError` at the first bad line."""
    codes: list[str] = []
    seen: dict[str, int] = {}
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise PoolError(0, f"not a CSV file: {exc}") from None
    for number, row in enumerate(rows, start=1):
        code = row[0].strip() if row else ""
        if not code or (number == 1 and code.lower() == "code"):
            continue
        if not _POOL_CODE.match(code):
            raise PoolError(
                number, "expected a code of 1 to 64 letters, digits, '-' or '_' in the first column"
            )
        if code in seen:
            raise PoolError(number, f"the same code as line {seen[code]}")
        seen[code] = number
        codes.append(code)
        if len(codes) > MAX_POOL_CODES:
            raise PoolError(number, f"more than {MAX_POOL_CODES} codes: upload the pool in parts")
    if not codes:
        raise PoolError(0, "no codes: expected one code a line (a 'code' header is optional)")
    return tuple(codes)
