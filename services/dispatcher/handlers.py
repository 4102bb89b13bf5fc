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
from shared.domain.rendering import EmailTemplate, RenderError, render_email
from shared.domain.segments import MembershipChange
from shared.errors import PoisonRecord, ProviderRejected, ProviderUnavailable
from shared.logging import get_logger
from shared.ports.bus import Record
from shared.ports.clock import Clock
from shared.ports.providers import EmailMessage, EmailProvider
from shared.ports.store import MessageRecord, Store

__all__ = ["Dispatcher"]

log = get_logger(__name__)


@dataclass
class Dispatcher:
    store: Store
    clock: Clock
    email: EmailProvider
    campaigns: Sequence[Campaign]
    templates: Mapping[str, EmailTemplate]
    send_attempts: int = 3

    async def handle_changes(self, records: Sequence[Record]) -> None:
        for record in records:
            try:
                change = decode_change(record.value)
            except (ValueError, KeyError, TypeError) as exc:
                raise PoisonRecord(f"not a segment change: {exc}") from exc
            for campaign in campaigns_triggered_by(self.campaigns, change):
                await self.send(campaign, change)

    async def send(self, campaign: Campaign, change: MembershipChange) -> str:
        """Send ``campaign``'s message for ``change`` unless it exists; return its status."""
        key = message_key(campaign.key, change.profile_id, change.occurrence_id)
        async with self.store.unit_of_work() as uow:
            existing = await uow.messages.get(key)
            if existing is not None:
                return existing.status
            profile = await uow.profiles.get(change.profile_id)
            status = "sending"
            error: str | None = None
            content = None
            if profile is None or profile.email is None:
                status, error = "no_address", "the buyer has no email address"
            else:
                try:
                    content = render_email(
                        self.templates[campaign.template], message_context(profile)
                    )
                except RenderError as exc:
                    status, error = "render_failed", str(exc)
            record = MessageRecord(
                key=key,
                campaign=campaign.key,
                profile_id=change.profile_id,
                channel=campaign.channel,
                occurrence_id=change.occurrence_id,
                status=status,
                created_at=self.clock.now(),
                error=error,
            )
            if not await uow.messages.begin(record):
                return "duplicate"
            if error is not None:
                await uow.messages.finish(key, status, self.clock.now(), error=error)
            await uow.commit()
        if content is None or profile is None or profile.email is None:
            return status

        message = EmailMessage(to=profile.email, content=content, idempotency_key=key)
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
        async with self.store.unit_of_work() as uow:
            await uow.messages.finish(key, outcome, self.clock.now(), provider_id, error)
            await uow.commit()
        log.info("message", campaign=campaign.key, key=key, status=outcome, email=profile.email)
        return outcome
