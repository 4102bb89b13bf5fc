"""Offers: what a message gives the buyer, and the promo code that carries it.

:mod:`.model` holds the offer (kind, value, validity, minimum order, scope, code source)
and what a template sees; :mod:`.parsing` reads one written as JSON, with an
:class:`OfferError` at the bad field; :mod:`.codes` makes and checks the signed codes
nudge generates and reads a shop's uploaded pool; :mod:`.redemption` matches a
purchase's promo codes with the messages they were given to. Import from this package.
"""

from __future__ import annotations

from shared.domain.offers.codes import (
    MAX_POOL_CODES,
    BadCode,
    PoolError,
    VerifiedCode,
    generate_code,
    last_valid_day,
    nonce_for,
    normalise_code,
    parse_pool,
    verify_code,
)
from shared.domain.offers.model import (
    KINDS,
    CodeSource,
    DaysAfterSend,
    GeneratedCodes,
    IssuedCode,
    Kind,
    Offer,
    PoolCodes,
    Scope,
    Until,
    Validity,
    offer_context,
)
from shared.domain.offers.parsing import MAX_VALIDITY_DAYS, OfferError, parse_offer
from shared.domain.offers.redemption import Issued, Redemption, candidates, redemptions

__all__ = [
    "KINDS",
    "MAX_POOL_CODES",
    "MAX_VALIDITY_DAYS",
    "BadCode",
    "CodeSource",
    "DaysAfterSend",
    "GeneratedCodes",
    "Issued",
    "IssuedCode",
    "Kind",
    "Offer",
    "OfferError",
    "PoolCodes",
    "PoolError",
    "Redemption",
    "Scope",
    "Until",
    "Validity",
    "VerifiedCode",
    "candidates",
    "generate_code",
    "last_valid_day",
    "nonce_for",
    "normalise_code",
    "offer_context",
    "parse_offer",
    "parse_pool",
    "redemptions",
    "verify_code",
]
