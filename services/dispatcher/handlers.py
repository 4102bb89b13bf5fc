"""The dispatcher's handler: a segment change becomes, at most once, a campaign message.

The message row (keyed by campaign, buyer and trigger occurrence) is committed
*before* the provider is called and its outcome after. A change delivered again,
after a restart or a rebalance, finds the row and sends nothing. A crash between
the provider call and the outcome leaves the row ``sending``: for SMTP, which has
no idempotency key, nudge does not send again (at most once), and the row says
the outcome is unknown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from shared.codec import decode_change
from shared.domain.campaigns import (
    Campaign,
    campaigns_triggered_by,
    message_context,
    message_key,
)
from shared.domain.profile import Profile, ProfileMerged
from shared.domain.rendering import EmailTemplate, RenderError, render_email
from shared.domain.segments import MembershipChange, occurrence_id
from shared.domain.unsubscribe import sign
from shared.errors import PoisonRecord, ProviderRejected, ProviderUnavailable
from shared.logging import get_logger
from shared.ports.bus import Record
from shared.ports.clock import Clock
from shared.ports.providers import EmailMessage, EmailProvider
from shared.ports.store import MessageRecord, Store, UnitOfWork

__all__ = ["Dispatcher"]

log = get_logger(__name__)


@dataclass
class Dispatcher:
    store: Store
    clock: Clock
    email: EmailProvider
    campaigns: Sequence[Campaign]
    templates: Mapping[str, EmailTemplate]
    unsubscribe_key: bytes
    """Signs each message's unsubscribe link; ingest checks it with the same key."""
    public_url: str
    """Where buyers reach ingest: the base of unsubscribe links."""
    send_attempts: int = 3

    async def handle_changes(self, records: Sequence[Record]) -> None:
        for record in records:
            try:
                change = decode_change(record.value)
            except (ValueError, KeyError, TypeError) as exc:
                raise PoisonRecord(f"not a segment change: {exc}") from exc
            if isinstance(change, ProfileMerged):
                # The segmenter already moved the message history to the survivor.
                log.info("profiles merged", absorbed=change.absorbed, survivor=change.survivor)
                continue
            for campaign in campaigns_triggered_by(self.campaigns, change):
                await self.send(campaign, change)

    async def send(self, campaign: Campaign, change: MembershipChange) -> str:
        """Send ``campaign``'s message for ``change`` unless it exists; return its status.

        The message belongs to the buyer as they are now (following merges) and, for an
        entry, to the buyer's current stay in the segment: two profiles merged into one
        buyer share one stay, so a change announced for each sends one message. A buyer
        who left the segment before the send gets nothing, and the row says why.
        """
        async with self.store.unit_of_work() as uow:
            planned = await self._plan(uow, campaign, change)
            existing = await uow.messages.get(planned.record.key)
            if existing is not None:
                return existing.status
            if not await uow.messages.begin(planned.record):
                return "duplicate"
            if planned.record.error is not None:
                record = planned.record
                await uow.messages.finish(
                    record.key, record.status, record.created_at, error=record.error
                )
            await uow.commit()
        if planned.email is None:
            return planned.record.status
        return await self._deliver(campaign, planned.email)

    async def _plan(self, uow: UnitOfWork, campaign: Campaign, change: MembershipChange) -> _Plan:
        """Decide who the message is for, its key, and render it (or say why not)."""
        profile = await uow.profiles.current(change.profile_id)
        buyer = profile.id if profile is not None else change.profile_id
        occurrence = change.occurrence_id
        refusal: tuple[str, str] | None = None
        if profile is not None and change.kind == "entered":
            entered_at = (await uow.memberships.of([buyer]))[buyer].get(change.segment)
            if entered_at is None:
                refusal = ("left_segment", "the buyer left the segment before the send")
            else:
                occurrence = occurrence_id(change.segment, buyer, entered_at)
        key = message_key(campaign.key, buyer, occurrence)
        refusal = refusal or _unreachable(profile, campaign)
        email: EmailMessage | None = None
        if refusal is None and profile is not None and profile.email is not None:
            link = self.unsubscribe_url(buyer, campaign)
            try:
                content = render_email(
                    self.templates[campaign.template],
                    message_context(profile, unsubscribe_url=link),
                )
                email = EmailMessage(
                    to=profile.email, content=content, idempotency_key=key, unsubscribe_url=link
                )
            except RenderError as exc:
                refusal = ("render_failed", str(exc))
        status, error = refusal or ("sending", None)
        record = MessageRecord(
            key=key,
            campaign=campaign.key,
            profile_id=buyer,
            channel=campaign.channel,
            occurrence_id=occurrence,
            status=status,
            created_at=self.clock.now(),
            error=error,
        )
        return _Plan(record, email)

    def unsubscribe_url(self, buyer: str, campaign: Campaign) -> str:
        """The link that unsubscribes ``buyer`` from ``campaign``'s channel in one click."""
        token = sign(buyer, campaign.channel, campaign.key, self.unsubscribe_key)
        return f"{self.public_url.rstrip('/')}/v1/unsubscribe/{token}"

    async def _deliver(self, campaign: Campaign, message: EmailMessage) -> str:
        """Call the provider (retrying what is worth retrying) and record the outcome."""
        outcome, provider_id, error = "sent", None, None
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(ProviderUnavailable),
                stop=stop_after_attempt(self.send_attempts),
                wait=wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2),
                reraise=True,
            ):
                with attempt:
                    receipt = await self.email.send(message)
            provider_id = receipt.provider_message_id
        except ProviderRejected as exc:
            outcome, error = "rejected", str(exc)
        except ProviderUnavailable as exc:
            outcome, error = "failed", str(exc)
        key = message.idempotency_key
        async with self.store.unit_of_work() as uow:
            await uow.messages.finish(key, outcome, self.clock.now(), provider_id, error)
            await uow.commit()
        log.info("message", campaign=campaign.key, key=key, status=outcome, email=message.to)
        return outcome


def _unreachable(profile: Profile | None, campaign: Campaign) -> tuple[str, str] | None:
    """Why the buyer cannot be sent ``campaign``'s message at all, if they cannot."""
    if profile is None or profile.email is None:
        return ("no_address", "the buyer has no email address")
    barred = profile.barred_from(campaign.channel)
    if barred is not None:
        return (barred, f"the buyer's {campaign.channel} is {barred}")
    return None


@dataclass(frozen=True)
class _Plan:
    record: MessageRecord
    email: EmailMessage | None
