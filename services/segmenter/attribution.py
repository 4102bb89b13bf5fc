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
from shared.logging import get_logger
from shared.ports.definitions import Definitions
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
        return await self.results.record_responses(responses) + await self.purchases(events)

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
