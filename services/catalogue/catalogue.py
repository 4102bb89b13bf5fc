"""The definitions in force: the ready-made ones, overlaid by what marketers stored.

One loader for the segmenter, the dispatcher and attribution, so they cannot drift
apart: each asks :class:`Catalogue` for what it needs and refreshes it when the stored
definitions' version stamps move (one cheap query when none did). Every stored
definition is validated here the same way for all of them; one that no longer
validates is left out and logged, and the others stay in force.

- **Segments** (:meth:`Catalogue.refresh_segments`): the built-ins and the stored ones
  that parse and link; a stored segment may not shadow a built-in; an archived one is
  kept by key, as a rule no buyer meets any longer, so its members are taken out.
- **Templates and campaigns** (:meth:`Catalogue.refresh_campaigns`): a stored template
  replaces the built-in of its key and channel if it passes the template checks; a
  stored campaign replaces the ready-made one of its key, its stored status the one
  that counts, if it parses and names templates that exist (``campaigns``, what may
  send). The console checks a campaign against what it may name (``nameable``): the
  segments and templates in force. Attribution asks for ``attributable``: every
  campaign that parses, archived ones and those whose template has gone too, since
  the messages they sent still convert.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.domain.campaigns import (
    BUILTIN_CAMPAIGNS,
    BUILTIN_PUSH_TEMPLATES,
    BUILTIN_SMS_TEMPLATES,
    BUILTIN_TEMPLATES,
    Campaign,
    campaigns_over,
)
from shared.domain.events import Channel
from shared.domain.message_templates import TemplateContentError, checked_template
from shared.domain.programmes import (
    Programme,
    ProgrammeError,
    Send,
    parse_programme,
    split_step_campaign_key,
    step_campaign,
)
from shared.domain.rendering import AnyTemplate, EmailTemplate, PushTemplate, SmsTemplate
from shared.domain.rules import RuleError
from shared.domain.segments import BUILTIN_SEGMENTS, Segment, link_segments
from shared.logging import get_logger
from shared.ports.definitions import Definitions

__all__ = ["Catalogue", "Templates"]

log = get_logger(__name__)


@dataclass(frozen=True)
class Templates:
    """The templates in force, by channel and key."""

    email: Mapping[str, EmailTemplate] = field(default_factory=lambda: dict(BUILTIN_TEMPLATES))
    sms: Mapping[str, SmsTemplate] = field(default_factory=lambda: dict(BUILTIN_SMS_TEMPLATES))
    push: Mapping[str, PushTemplate] = field(default_factory=lambda: dict(BUILTIN_PUSH_TEMPLATES))

    def keys(self) -> dict[str, set[str]]:
        """Channel to the template keys there are: what a campaign may name."""
        return {"email": set(self.email), "sms": set(self.sms), "push": set(self.push)}

    def on(self, channel: Channel) -> Mapping[str, AnyTemplate]:
        """The templates on ``channel``, by key."""
        by_channel: dict[Channel, Mapping[str, AnyTemplate]] = {
            "email": self.email,
            "sms": self.sms,
            "push": self.push,
        }
        return by_channel[channel]


class Catalogue:
    """What is in force, over ``definitions`` (``None``: the ready-made ones only).

    Built with the built-ins it starts from; the properties answer what was loaded
    last, the ``refresh_*`` methods load again when the stored ones changed. One
    loader at a time: callers that ask at once share one load.
    """

    def __init__(
        self,
        definitions: Definitions | None,
        *,
        segments: Sequence[Segment] = BUILTIN_SEGMENTS,
        campaigns: Sequence[Campaign] = BUILTIN_CAMPAIGNS,
        templates: Templates | None = None,
    ) -> None:
        self.definitions = definitions
        self._builtin_segments = tuple(segments)
        self._builtin_campaigns = tuple(campaigns)
        self._builtin_templates = templates or Templates()
        self._segments: tuple[Segment, ...] = self._builtin_segments
        self._archived: tuple[str, ...] = ()
        self._campaigns = self._builtin_campaigns
        self._attributable = {c.key: c for c in self._builtin_campaigns}
        self._templates = self._builtin_templates
        self._segments_stamp: int | None = None
        self._campaigns_stamp: tuple[int, int] | None = None
        self._attributable_stamp: int | None = None
        self._lock = asyncio.Lock()
        self._programmes: dict[str, Programme] = {}
        self._programme_versions: dict[tuple[str, int], Programme] = {}
        self._programmes_stamp: tuple[int, int, int] | None = None

    # --- what is in force --------------------------------------------------------------

    @property
    def segments(self) -> tuple[Segment, ...]:
        """The built-in segments, and once loaded the stored ones with them, linked
        (``{segment: key}`` resolved)."""
        return self._segments

    @property
    def archived_segments(self) -> tuple[str, ...]:
        """Stored segments archived: their members are to be taken out."""
        return self._archived

    @property
    def segments_loaded(self) -> bool:
        """Whether the stored segments were read at least once (or there are none to read)."""
        return self.definitions is None or self._segments_stamp is not None

    @property
    def campaigns(self) -> tuple[Campaign, ...]:
        """The campaigns that may send (each with its status: draft, active, paused)."""
        return self._campaigns

    def campaign(self, key: str) -> Campaign | None:
        """The campaign of ``key`` that may send, if there is one: a campaign, or a
        programme's send step in one variant (``programme.step.variant``, on the
        programme's current version)."""
        step_key = split_step_campaign_key(key)
        if step_key is None:
            return next((c for c in self._campaigns if c.key == key), None)
        programme = self._programmes.get(step_key[0])
        step = programme.steps.get(step_key[1]) if programme is not None else None
        if programme is None or not isinstance(step, Send):
            return None
        variant = next((v for v in step.variants if v.name == step_key[2]), None)
        return None if variant is None else step_campaign(programme, step, variant)

    @property
    def programmes(self) -> tuple[Programme, ...]:
        """The stored programmes that parse, at their current version (with their status)."""
        return tuple(self._programmes.values())

    async def programme_at(self, key: str, version: int) -> Programme | None:
        """Programme ``key`` as it was at ``version``: buyers inside stay on theirs."""
        current = self._programmes.get(key)
        if current is not None and current.version == version:
            return current
        found = self._programme_versions.get((key, version))
        if found is None and self.definitions is not None:
            stored = await self.definitions.programmes.version(key, version)
            if stored is not None:
                try:
                    found = parse_programme(
                        {**stored.definition, "status": stored.status, "version": version},
                        key=key,
                    )
                except ProgrammeError as exc:
                    log.error(
                        "stored programme version does not parse", programme=key, error=str(exc)
                    )
                    return None
                self._programme_versions[(key, version)] = found
        return found

    async def refresh_programmes(self) -> bool:
        """Load the stored templates, campaigns and programmes where any changed since the
        last look (one read of the stamps); return whether anything changed. A programme
        that does not parse against the templates and segments in force is left out and
        logged."""
        if self.definitions is None:
            return False
        stamps = await self.definitions.stamps()
        changed = await self._refresh_campaigns((stamps.campaigns, stamps.templates))
        stamp = (stamps.programmes, stamps.templates, stamps.segments)
        if stamp == self._programmes_stamp:
            return changed
        if stamps.segments != self._segments_stamp:
            await self.refresh_segments()
        async with self._lock:
            await self._load_programmes(self.definitions)
            self._programmes_stamp = stamp
        return True

    async def _load_programmes(self, definitions: Definitions) -> None:
        segments = {s.key for s in self._segments}
        found: dict[str, Programme] = {}
        for stored in await definitions.programmes.list():
            document = {**stored.definition, "status": stored.status, "version": stored.version}
            try:
                found[stored.key] = parse_programme(
                    document, key=stored.key, segments=segments, templates=self._templates.keys()
                )
            except ProgrammeError as exc:
                log.error(
                    "stored programme does not parse; ignored",
                    programme=stored.key,
                    error=str(exc),
                )
        self._programmes = found
        log.info(
            "programmes loaded",
            programmes=len(found),
            active=sum(1 for p in found.values() if p.status == "active"),
        )

    @property
    def templates(self) -> Templates:
        return self._templates

    @property
    def ready_made(self) -> Mapping[str, Campaign]:
        """The ready-made campaigns it starts from, by key (stored ones replace them)."""
        return {c.key: c for c in self._builtin_campaigns}

    async def nameable(self) -> tuple[set[str], dict[str, set[str]]]:
        """The segment keys, and the template keys per channel, a campaign may name now:
        those in force, loaded again first if the stored ones changed. The console checks
        a campaign against them as the dispatcher does before it sends."""
        await self.refresh()
        return {s.key for s in self._segments}, self._templates.keys()

    # --- loading -----------------------------------------------------------------------

    async def refresh(self) -> bool:
        """Load whatever stored definitions changed since the last look (segments,
        templates and campaigns); return whether anything in force changed."""
        segments = await self.refresh_segments()
        campaigns = await self.refresh_campaigns()
        return segments or campaigns

    async def refresh_segments(self) -> bool:
        """Load the stored segments if they changed since the last look; return whether
        the segments in force changed."""
        if self.definitions is None:
            return False
        async with self._lock:
            stamp = await self.definitions.segments.stamp()
            if stamp == self._segments_stamp:
                return False
            await self._load_segments(self.definitions)
            self._segments_stamp = stamp
            return True

    async def refresh_campaigns(self) -> bool:
        """Load the stored templates and campaigns if either changed since the last look;
        return whether anything changed."""
        if self.definitions is None:
            return False
        stamps = await self.definitions.stamps()
        return await self._refresh_campaigns((stamps.campaigns, stamps.templates))

    async def _refresh_campaigns(self, stamp: tuple[int, int]) -> bool:
        assert self.definitions is not None
        async with self._lock:
            if stamp == self._campaigns_stamp:
                return False
            await self._load_campaigns(self.definitions)
            self._campaigns_stamp = stamp
            return True

    async def attributable(self) -> Mapping[str, Campaign]:
        """Campaign key to campaign, for every campaign whose messages may convert: the
        ready-made ones and every stored one that parses, archived ones included."""
        if self.definitions is None:
            return self._attributable
        async with self._lock:
            stamp = await self.definitions.campaigns.stamp()
            if stamp != self._attributable_stamp:
                stored = await self.definitions.campaigns.list(archived=True)
                self._attributable = self._refused_logged(
                    *campaigns_over(
                        self._builtin_campaigns,
                        ((d.key, d.definition, d.status) for d in stored),
                    )
                )
                self._attributable_stamp = stamp
            return self._attributable

    async def _load_segments(self, definitions: Definitions) -> None:
        builtin = {s.key for s in self._builtin_segments}
        stored: list[Segment] = []
        archived: list[str] = []
        for definition in await definitions.segments.list(archived=True):
            if definition.key in builtin:
                log.warning("stored segment shadows a built-in; ignored", segment=definition.key)
            elif definition.archived_at is not None:
                archived.append(definition.key)
            else:
                try:
                    stored.append(
                        Segment.from_definition(definition.key, definition.name, definition.rule)
                    )
                except (RuleError, RecursionError) as exc:
                    log.error(
                        "stored segment does not parse; ignored",
                        segment=definition.key,
                        error=str(exc),
                    )
        unlinked: dict[str, RuleError] = {}
        self._segments = link_segments([*self._builtin_segments, *stored], unlinked)
        for key, error in unlinked.items():
            log.error(
                "stored segment refers to a segment it cannot use; ignored",
                segment=key,
                error=str(error),
            )
        self._archived = tuple(archived)
        log.info(
            "segments loaded",
            builtin=len(self._builtin_segments),
            stored=len(stored),
            archived=len(archived),
        )

    async def _load_campaigns(self, definitions: Definitions) -> None:
        builtin = self._builtin_templates
        email, sms, push = dict(builtin.email), dict(builtin.sms), dict(builtin.push)
        by_channel: dict[Channel, dict[str, Any]] = {"email": email, "sms": sms, "push": push}
        for template in await definitions.templates.list():
            try:
                by_channel[template.channel][template.key] = checked_template(
                    template.channel, template.content
                )
            except TemplateContentError as exc:
                log.error(
                    "stored template does not render; ignored",
                    template=template.key,
                    error=str(exc),
                )
        templates = Templates(email=email, sms=sms, push=push)
        campaigns = self._refused_logged(
            *campaigns_over(
                self._builtin_campaigns,
                ((d.key, d.definition, d.status) for d in await definitions.campaigns.list()),
                templates=templates.keys(),
            )
        )
        self._templates = templates
        self._campaigns = tuple(campaigns.values())
        log.info(
            "campaigns loaded",
            campaigns=len(self._campaigns),
            active=sum(1 for c in self._campaigns if c.status == "active"),
        )

    @staticmethod
    def _refused_logged(
        found: dict[str, Campaign], refused: Mapping[str, Exception]
    ) -> dict[str, Campaign]:
        for key, error in refused.items():
            log.error("stored campaign does not parse; ignored", campaign=key, error=str(error))
        return found
