"""The campaign results port: the messages a purchase may convert, the conversions kept,
what delivery webhooks said of each message, and a campaign's rows for its report.

Conversions are keyed by message and order: recording one again changes nothing,
so attribution may run again for an event delivered twice.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from shared.domain.attribution import CampaignMessage, Conversion, MessageResponse
from shared.domain.programmes import ProgrammeFacts

__all__ = ["CampaignResultsStore"]


class CampaignResultsStore(Protocol):
    async def buyers_messages(
        self, buyers: Sequence[Mapping[str, str]], campaigns: Collection[str]
    ) -> list[list[CampaignMessage]]:
        """For each buyer, named by identifiers (kind to value), the messages of ``campaigns``
        to them: to the profiles the identifiers name, the profiles those were merged into,
        and the profiles merged into those. Empty for a buyer not known."""
        ...

    async def record(self, conversions: Sequence[Conversion]) -> int:
        """Keep the conversions not kept yet (by message and order); return how many were new."""
        ...

    async def record_responses(self, responses: Sequence[MessageResponse]) -> int:
        """Keep the delivery reports not kept yet (by message and response; the first
        moment stays); return how many were new."""
        ...

    async def campaign_messages(self, campaign: str) -> list[CampaignMessage]: ...

    async def campaign_responses(self, campaign: str) -> list[MessageResponse]:
        """The delivery reports on the campaign's messages."""
        ...

    async def campaign_conversions(self, campaign: str) -> list[Conversion]: ...

    async def programme_facts(self, programme: str) -> ProgrammeFacts:
        """The rows ``programme``'s report is counted from (its positions, step messages,
        their delivery reports, its buyers' orders), read in one transaction."""
        ...

    async def close(self) -> None: ...
