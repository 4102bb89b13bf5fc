"""The promo code a message carries: exactly one, taken in the unit of work that writes the
message's row, so a code is never given twice and never lost in a crash.

A campaign that names an offer (``Campaign.offer``) gives each message it sends one code
of it, when the message is about to be composed (a held-out, skipped or waiting message
takes none):

- the message's code if it has one already (a send woken again, a resend after a crash);
- else, for a pool, a free code taken under ``FOR UPDATE SKIP LOCKED``
  (:class:`~shared.ports.offers.OfferCodes`); an empty pool is the message's recorded
  outcome ``no_code``, and fewer codes left than the offer's ``low_at`` a warning;
- else, for generated codes, the message's own (:func:`~shared.domain.offers.nonce_for`
  of its key): the same however often it is made.

The code goes back to its pool when the message is never sent (its render failed, every
provider refused it, or it waited with its code and was dropped when it woke):
:meth:`OfferCodes.release`, in the unit of work that records that (the deciding,
delivery and scheduled-sends modules call it).
An offer that is gone or no longer parses is the outcome ``offer_unavailable``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.dispatcher.outgoing import Draft
from shared.domain.decisions import Reason
from shared.domain.offers import (
    GeneratedCodes,
    IssuedCode,
    Offer,
    OfferError,
    generate_code,
    last_valid_day,
    nonce_for,
    offer_context,
    parse_offer,
)
from shared.logging import get_logger
from shared.ports.offers import IssuedOfferCode
from shared.ports.store import UnitOfWork

__all__ = ["Offering"]

log = get_logger(__name__)


@dataclass
class Offering:
    code_key: bytes
    """Signs generated codes (``NUDGE_OFFER_CODE_KEY``); the shop's checkout has it too."""

    async def attach(self, uow: UnitOfWork, draft: Draft, now: datetime) -> Draft | Reason:
        """``draft`` with its offer's code in ``draft.offer`` (what the template sees as
        ``offer``), or why it cannot carry one; ``draft`` as it is when its campaign names
        no offer."""
        key = draft.campaign.offer
        if key is None:
            return draft
        offer = await self._offer(uow, key)
        if offer is None:
            return Reason("offer", "offer_unavailable", f"the offer {key!r} is gone or invalid")
        message_key = draft.send.key
        carried = (await uow.offer_codes.of_messages([message_key])).get(message_key)
        if carried is not None:
            expires_at = carried.expires_at or offer.expires_at(carried.issued_at)
            return self._with(draft, offer, IssuedCode(key, carried.code, expires_at))
        expires_at = offer.expires_at(now)
        if isinstance(offer.codes, GeneratedCodes):
            code = generate_code(
                self.code_key,
                offer=key,
                prefix=offer.codes.prefix,
                nonce=nonce_for(self.code_key, key, message_key),
                last_day=last_valid_day(expires_at),
            )
            issued = IssuedOfferCode(key, code, message_key, draft.profile.id, now, expires_at)
            await uow.offer_codes.record(issued)
            return self._with(draft, offer, IssuedCode(key, code, expires_at))
        taken = await uow.offer_codes.take(key, message_key, draft.profile.id, now, expires_at)
        if taken is None:
            log.warning("offer pool empty: a message went without", offer=key)
            return Reason("offer", "no_code", f"the pool of offer {key!r} has no code left")
        left = await uow.offer_codes.free_count(key)
        if left < offer.codes.low_at:
            log.warning("offer pool running low", offer=key, left=left)
        return self._with(draft, offer, IssuedCode(key, taken, expires_at))

    async def _offer(self, uow: UnitOfWork, key: str) -> Offer | None:
        definition = await uow.offer_codes.definition(key)
        if definition is None:
            return None
        try:
            return parse_offer(definition, key=key)
        except OfferError as exc:
            log.warning("stored offer does not parse", offer=key, error=str(exc))
            return None

    @staticmethod
    def _with(draft: Draft, offer: Offer, issued: IssuedCode) -> Draft:
        seen: Mapping[str, Any] = offer_context(offer, issued)
        return replace(draft, offer=seen)
