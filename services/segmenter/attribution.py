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

from shared.domain.attribution import MessageResponse, Purchase, attribute
from shared.domain.campaigns import BUILTIN_CAMPAIGNS, Campaign, campaigns_over
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

__all__ = ["Attribution", "campaigns_in_force"]

log = get_logger(__name__)


async def campaigns_in_force(
    definitions: Definitions | None, builtins: Sequence[Campaign] = BUILTIN_CAMPAIGNS
) -> dict[str, Campaign]:
    """Campaign key to campaign: the built-ins, and the stored ones (archived too: their
    messages still convert) over them; a stored campaign that no longer parses is skipped."""
    if definitions is None:
        return {c.key: c for c in builtins}
    stored = await definitions.campaigns.list(archived=True)
    found, refused = campaigns_over(builtins, ((d.key, d.definition, d.status) for d in stored))
    for key, error in refused.items():
        log.error("stored campaign does not parse; ignored", campaign=key, error=str(error))
    return found


@dataclass
class Attribution:
    results: CampaignResultsStore
    definitions: Definitions | None = None
    builtins: Sequence[Campaign] = BUILTIN_CAMPAIGNS
    _stamp: int | None = field(default=None, init=False)
    _goals: Mapping[str, Campaign] = field(default_factory=dict, init=False)

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
        stamp = await self.definitions.campaigns.stamp() if self.definitions is not None else 0
        if stamp != self._stamp:
            campaigns = await campaigns_in_force(self.definitions, self.builtins)
            self._goals = {k: c for k, c in campaigns.items() if c.goal.event == "purchase"}
            self._stamp = stamp
        return self._goals
