"""Reading an offer written as JSON: :func:`parse_offer` validates it with a precise error,
an :class:`OfferError` naming the JSON pointer of the bad field (as campaigns do)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from shared.domain.documents import DocumentError, child, number, only, text
from shared.domain.offers.model import (
    KINDS,
    CodeSource,
    DaysAfterSend,
    GeneratedCodes,
    Kind,
    Offer,
    PoolCodes,
    Scope,
    Until,
    Validity,
)

__all__ = ["MAX_VALIDITY_DAYS", "OfferError", "parse_offer"]

_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_PREFIX = re.compile(r"^[A-Z0-9]{1,12}$")
_NAME_MAX = 200
_SCOPE_MAX = 1000
MAX_VALIDITY_DAYS = 366
_MAX_MONEY = Decimal("999999999999.99")
_MAX_POINTS = 10_000_000
_FIELDS = ("key", "name", "kind", "value", "valid", "codes", "min_order", "scope")


class OfferError(DocumentError):
    """An offer that does not validate: ``pointer`` names the bad field (RFC 6901)."""


def parse_offer(document: Any, *, key: str | None = None) -> Offer:
    """Validate an offer written as JSON; raise :class:`OfferError` at the first bad field.

    ``key``: the key from the URL (``PUT /v1/offers/{key}``); the document may repeat it
    but not contradict it.
    """
    if not isinstance(document, Mapping):
        raise OfferError("", "expected an object")
    only(document, _FIELDS, "", OfferError, noun="field")
    key = _key(document, key)
    name = text(document, "name", "", OfferError, "a non-empty text")
    if len(name) > _NAME_MAX:
        raise OfferError("/name", f"expected at most {_NAME_MAX} characters")
    kind = _kind(document.get("kind"))
    value = _value(kind, document.get("value"))
    validity = _validity(document.get("valid"))
    codes = _codes(document.get("codes", {"source": "pool"}), key)
    min_order = None
    if document.get("min_order") is not None:
        min_order = _money(document["min_order"], "/min_order")
    scope = _scope(document.get("scope", {}))
    return Offer(key, name.strip(), kind, value, validity, codes, min_order, scope)


def _key(document: Mapping[str, Any], key: str | None) -> str:
    written = document.get("key")
    if key is not None and written is not None and written != key:
        raise OfferError("/key", f"the document says {written!r}, the address {key!r}")
    key = key if key is not None else written
    if not isinstance(key, str) or not _KEY.match(key):
        raise OfferError(
            "/key", "expected lower-case letters, digits and dashes (up to 63), e.g. 'win-back-10'"
        )
    return key


def _kind(value: Any) -> Kind:
    for kind in KINDS:
        if value == kind:
            return kind
    raise OfferError("/kind", f"expected one of {list(KINDS)}")


def _value(kind: Kind, value: Any) -> Decimal | None:
    if kind == "free_delivery":
        if value is not None:
            raise OfferError("/value", "free delivery takes no value")
        return None
    if value is None:
        raise OfferError("/value", "required")
    if kind == "percent":
        found = number(value, "/value", OfferError)
        if not 0 < found <= 100 or _decimals(found) > 2:
            raise OfferError("/value", "expected a percentage above 0, at most 100")
        return found
    if kind == "fixed":
        return _money(value, "/value")
    found = number(value, "/value", OfferError)
    if found != found.to_integral_value() or not 0 < found <= _MAX_POINTS:
        raise OfferError("/value", f"expected a whole number of points from 1 to {_MAX_POINTS}")
    return Decimal(int(found))


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _money(value: Any, pointer: str) -> Decimal:
    found = number(value, pointer, OfferError, not_a_number="expected an amount such as 500.00")
    if _decimals(found) > 2:
        raise OfferError(pointer, "expected an amount with at most two decimals")
    if not 0 < found <= _MAX_MONEY:
        raise OfferError(pointer, f"expected an amount above 0, at most {_MAX_MONEY}")
    return found.quantize(Decimal("0.01"))


def _validity(node: Any) -> Validity:
    if node is None:
        raise OfferError("/valid", "required: {days_after_send} or {until}")
    if not isinstance(node, Mapping) or len(node) != 1:
        raise OfferError("/valid", "expected one of {days_after_send: 14}, {until: '2026-12-31'}")
    only(node, ("days_after_send", "until"), "/valid", OfferError)
    if "days_after_send" in node:
        days = node["days_after_send"]
        if (
            isinstance(days, bool)
            or not isinstance(days, int)
            or not 1 <= days <= MAX_VALIDITY_DAYS
        ):
            raise OfferError(
                "/valid/days_after_send",
                f"expected a whole number of days, 1 to {MAX_VALIDITY_DAYS}",
            )
        return DaysAfterSend(days)
    written = node["until"]
    if isinstance(written, str):
        try:
            return Until.of_date(date.fromisoformat(written))
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(written)
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return Until(moment, written)
    raise OfferError(
        "/valid/until", "expected a date (2026-12-31) or an ISO 8601 moment with its offset"
    )


def _codes(node: Any, key: str) -> CodeSource:
    if not isinstance(node, Mapping):
        raise OfferError("/codes", "expected {source: pool} or {source: generated, prefix}")
    source = node.get("source")
    if source == "pool":
        only(node, ("source", "low_at"), "/codes", OfferError)
        low_at = node.get("low_at", 100)
        if isinstance(low_at, bool) or not isinstance(low_at, int) or low_at < 0:
            raise OfferError("/codes/low_at", "expected a whole number of codes, 0 or more")
        return PoolCodes(low_at)
    if source == "generated":
        only(node, ("source", "prefix"), "/codes", OfferError)
        prefix = node.get("prefix", _default_prefix(key))
        if not isinstance(prefix, str) or not _PREFIX.match(prefix):
            raise OfferError("/codes/prefix", "expected 1 to 12 capital letters and digits")
        return GeneratedCodes(prefix)
    raise OfferError("/codes/source", "expected one of ['pool', 'generated']")


def _default_prefix(key: str) -> str:
    return key.replace("-", "").upper()[:12]


def _scope(node: Any) -> Scope:
    if not isinstance(node, Mapping):
        raise OfferError("/scope", "expected {categories, skus}")
    only(node, ("categories", "skus"), "/scope", OfferError)
    return Scope(_names(node, "categories"), _names(node, "skus"))


def _names(node: Mapping[str, Any], name: str) -> tuple[str, ...]:
    pointer = child("/scope", name)
    values = node.get(name, [])
    if not isinstance(values, list) or len(values) > _SCOPE_MAX:
        raise OfferError(pointer, f"expected a list of up to {_SCOPE_MAX} names")
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            raise OfferError(child(pointer, i), "expected a non-empty name of up to 200 characters")
        if value in values[:i]:
            raise OfferError(child(pointer, i), f"{value!r} is listed twice")
    return tuple(values)
