"""Writing a campaign's message for a buyer on a channel: the template in force rendered
with the buyer's values and an unsubscribe link, addressed where the buyer receives it.

A channel the message cannot be written for (no address or provider there, no template
in force, a template that does not render or is over a render limit) is passed over for
the next one the decision allows (:func:`shared.domain.channels.receiving_address`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from services.catalogue import Catalogue
from services.dispatcher.outgoing import Draft, Outbound, Providers
from shared.domain.campaigns import Campaign, message_context
from shared.domain.channels import receiving_address
from shared.domain.decisions import Reason
from shared.domain.events import Channel
from shared.domain.profile import Profile
from shared.domain.push import PushContent
from shared.domain.rendering import RenderedEmail, RenderedSms, RenderError
from shared.domain.unsubscribe import sign
from shared.ports.providers import EmailMessage, PushMessage, SmsMessage
from shared.ports.rendering import Renderer
from shared.ports.store import UnitOfWork

__all__ = ["Composer"]


@dataclass
class Composer:
    catalogue: Catalogue
    """Where the templates in force come from."""
    providers: Providers
    renderer: Renderer
    """Where messages are rendered: off the event loop and bounded in time in a service
    (worker processes); a render over a limit is a failed render, recorded on the row."""
    unsubscribe_key: bytes
    """Signs each message's unsubscribe link; ingest checks it with the same key."""
    public_url: str
    """Where buyers reach ingest: the base of unsubscribe links."""
    sms_max_segments: int | None = None

    async def push_address(self, uow: UnitOfWork, profile: Profile) -> str | None:
        """The buyer's app install for push (the latest by id when they have several), if
        there is a push provider."""
        return (await self.push_addresses(uow, [profile.id])).get(profile.id)

    async def push_addresses(
        self, uow: UnitOfWork, profile_ids: Collection[str]
    ) -> dict[str, str | None]:
        """:meth:`push_address` for each of ``profile_ids``, in one query (none without a
        push provider)."""
        if self.providers.push is None or not profile_ids:
            return {}
        installs = await uow.profiles.identifiers(profile_ids, "app_install_id")
        return {buyer: found[-1] if found else None for buyer, found in installs.items()}

    def unsubscribe_url(self, buyer: str, campaign: Campaign, channel: Channel) -> str:
        """The link that unsubscribes ``buyer`` from ``campaign``'s channel in one click."""
        token = sign(buyer, channel, campaign.key, self.unsubscribe_key)
        return f"{self.public_url.rstrip('/')}/v1/unsubscribe/{token}"

    async def compose(
        self, draft: Draft, channels: Sequence[Channel]
    ) -> tuple[Channel, Outbound] | Reason:
        """The message on the first of ``channels`` it can be written for, or why none
        (``render_failed``, with each channel's reason). Raise
        :class:`~shared.errors.RendererUnavailable` if no render worker can be had: the
        caller tries the send again later."""
        why: list[str] = []
        for channel in channels:
            try:
                outbound = await self._message(draft, channel)
            except RenderError as exc:
                why.append(f"{channel}: {exc}")
                continue
            if outbound is None:
                why.append(f"{channel}: no address, template or provider")
                continue
            return channel, outbound
        return Reason("render", "render_failed", "; ".join(why) or "no channel")

    async def _message(self, draft: Draft, channel: Channel) -> Outbound | None:
        """The message on ``channel``; ``None`` if the buyer cannot receive it there or the
        campaign has no template in force for it."""
        campaign, profile, key = draft.campaign, draft.profile, draft.send.key
        template_key = campaign.templates.get(channel)
        if template_key is None:
            return None
        template = self.catalogue.templates.on(channel).get(template_key)
        address = receiving_address(
            channel, profile, push_address=draft.push_address, providers=self.providers.channels
        )
        if template is None or address is None:
            return None
        link = self.unsubscribe_url(profile.id, campaign, channel)
        values = message_context(
            profile, unsubscribe_url=link, trigger=draft.context.get("trigger")
        )
        if draft.offer is not None:  # the promo code it carries, beside the recommended SKU
            values = {**values, "offer": {**values["offer"], **draft.offer}}
        if channel == "sms":
            text = await self.renderer.message(template, values, max_segments=self.sms_max_segments)
            assert isinstance(text, RenderedSms)
            return SmsMessage(address, text.text, key)
        content = await self.renderer.message(template, values)
        if channel == "email":
            assert isinstance(content, RenderedEmail)
            return EmailMessage(address, content, key, unsubscribe_url=link)
        assert isinstance(content, PushContent)
        return PushMessage(address, content, key)
