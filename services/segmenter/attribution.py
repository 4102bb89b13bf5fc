"""Purchases attributed to the campaign messages they convert, and delivery reports kept per
message, as the segmenter applies the events: what a campaign's report counts.

After a batch of events is committed, each purchase in it is matched with its buyer's
messages of campaigns whose goal is a purchase (:func:`shared.domain.attribution.attribute`)
and the conversions are kept; each ``message_delivered``, ``_opened`` or ``_clicked``
is kept against its message key. It runs for every event of the batch, new or seen
before: a batch delivered again after a crash between the commit and this step fills
the gap, and a row kept already is not kept twice (one per message and order, one per
message and response).

The campaigns are the built-in ones and the stored ones (a stored campaign replaces
the built-in of its key), read again when the stored ones change.

A purchase that names promo codes (``data.promo_codes``) redeems each one nudge issued to
a message (:func:`shared.domain.offers.redemptions`): kept once per code, with the
discount the offer gave.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.catalogue import Catalogue
from shared.domain.attribution import MessageResponse, Purchase, attribute
from shared.domain.campaigns import BUILTIN_CAMPAIGNS, Campaign
from shared.domain.events import (
    AnyEvent,
    MessageClickedEvent,
    MessageDeliveredEvent,
    MessageOpenedEvent,
    PurchaseEvent,
)
from shared.domain.offers import Offer, OfferError, candidates, parse_offer, redemptions
from shared.logging import get_logger
from shared.ports.definitions import Definitions
from shared.ports.offers import Offers
from shared.ports.reports import CampaignResultsStore

__all__ = ["Attribution"]

log = get_logger(__name__)


@dataclass
class Attribution:
    results: CampaignResultsStore
    definitions: Definitions | None = None
    builtins: Sequence[Campaign] = BUILTIN_CAMPAIGNS
    catalogue: Catalogue | None = None
    """Where the campaigns whose messages may convert come from (shared with the
    segmenter in a service); by default one over ``builtins`` and ``definitions``."""
    offers: Offers | None = None
    """Where the issued promo codes are; a purchase naming one redeems it."""
    _campaigns: Mapping[str, Campaign] | None = field(default=None, init=False)
    _goals: Mapping[str, Campaign] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._in_force = self.catalogue or Catalogue(self.definitions, campaigns=self.builtins)

    async def record(self, events: Sequence[AnyEvent]) -> int:
        """Attribute the purchases and keep the delivery reports among ``events``; return
        how many rows were new."""
        responses = [
            MessageResponse(e.data.message_key, e.type.removeprefix("message_"), e.occurred_at)
            for e in events
            if isinstance(e, MessageDeliveredEvent | MessageOpenedEvent | MessageClickedEvent)
        ]
        kept = await self.results.record_responses(responses) + await self.purchases(events)
        return kept + await self.redemptions(events)

    async def redemptions(self, events: Sequence[AnyEvent]) -> int:
        """Redeem the issued promo codes the purchases among ``events`` name (each code once:
        the first purchase naming it); return how many redemptions were new."""
        if self.offers is None:
            return 0
        bought = [e for e in events if isinstance(e, PurchaseEvent) and e.data.promo_codes]
        if not bought:
            return 0
        issued = await self.offers.issued(
            candidates(code for e in bought for code in e.data.promo_codes)
        )
        offers: dict[str, Offer] = {}
        for key in sorted({i.offer for i in issued}):
            stored = await self.offers.get(key)
            if stored is None:
                continue
            try:
                offers[key] = parse_offer(stored.definition, key=key)
            except OfferError as exc:
                log.warning("stored offer does not parse", offer=key, error=str(exc))
        found = [
            redemption
            for e in bought
            for redemption in redemptions(
                order_id=e.data.order_id,
                total=e.data.total,
                items=e.data.items,
                codes=e.data.promo_codes,
                at=e.occurred_at,
                issued=issued,
                offers=offers,
            )
        ]
        return await self.offers.redeem(found)

    async def purchases(self, events: Sequence[AnyEvent]) -> int:
        """Attribute the purchases among ``events``; return how many conversions were new."""
        bought = [e for e in events if isinstance(e, PurchaseEvent)]
        if not bought:
            return 0
        goals = await self._purchase_goals()
        if not goals:
            return 0
        messages = await self.results.buyers_messages(
            [e.customer.identifiers() for e in bought], goals.keys()
        )
        conversions = [
            conversion
            for event, theirs in zip(bought, messages, strict=True)
            for conversion in attribute(
                Purchase(event.data.order_id, event.data.total, event.occurred_at), theirs, goals
            )
        ]
        return await self.results.record(conversions)

    async def _purchase_goals(self) -> Mapping[str, Campaign]:
        campaigns = await self._in_force.attributable()
        if campaigns is not self._campaigns:
            self._goals = {k: c for k, c in campaigns.items() if c.goal.event == "purchase"}
            self._campaigns = campaigns
        return self._goals
