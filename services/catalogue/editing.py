"""Saving and previewing definitions: the one flow behind the console's API and its pages.

An editor takes plain values (a segment's rule, a template's parts, a campaign's
document), checks them against what is in force, and answers the saved definition or
the preview, or refuses with one of the errors below; the API answers them as
problems (``services/console/api/refusals.py``), the pages as their forms' messages::

    EditingError
    ├── ReadOnly          a built-in definition: define your own under another key
    ├── NotFound          no such definition, or no such buyer
    ├── Exists            a new definition's key is taken (a page's "new" form)
    ├── ChannelRequired   an unsaved template previewed without its channel
    ├── InvalidRule       a segment's rule does not parse, or cannot be linked
    ├── InvalidTemplate   a template does not render, or is over a render limit
    └── InvalidCampaign   a campaign does not validate

Besides them a render may raise :class:`~shared.errors.RendererUnavailable` (retry), and
a save that lost a race the store's :class:`~shared.ports.definitions.StaleVersion`.

Versions are the caller's rule (``If-Match`` in the API, the version a page was read
at in the pages): a save takes ``against``, which, given the current version, answers
the version the change is made against or refuses. It is asked after the definition
validated, so a bad definition is told before a stale version.

- :class:`SegmentEditor`: a rule parsed and linked to the segments in force, its size
  over the base now (:meth:`~SegmentEditor.preview`), saved or archived.
- :class:`TemplateEditor`: a template rendered in the renderer's worker processes, on
  the sample buyer before it is saved, or on a buyer for a preview. The ready-made
  campaigns' templates (:data:`READY_MADE_TEMPLATES`) are listed and read beside the
  stored ones; a marketer's change to one is stored under its key (its channel stays),
  and :meth:`~TemplateEditor.reset` archives that change, so the shipped text is in
  force again.
- :class:`CampaignEditor`: campaigns validated against what the shared
  :class:`~services.catalogue.Catalogue` says a campaign may name, the one answer the
  dispatcher and attribution use too; saved, activated and paused.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from services.catalogue.catalogue import Catalogue, Templates
from shared.domain.campaigns import Campaign, CampaignError, message_context, parse_campaign
from shared.domain.documents import child
from shared.domain.message_templates import TemplateContentError, content_of, sample_trigger
from shared.domain.profile import Profile
from shared.domain.rendering import RenderError, RenderTooCostly
from shared.domain.rules import Condition, RuleError, link_rules, parse_rule
from shared.domain.sample_buyer import SAMPLE_PROFILE
from shared.domain.segments import BUILTIN_SEGMENTS, Segment
from shared.domain.unsubscribe import sign
from shared.ports.definitions import (
    CHANNELS,
    CampaignDefinition,
    Channel,
    Definitions,
    SegmentDefinition,
    TemplateDefinition,
    Versioned,
)
from shared.ports.offers import Offers
from shared.ports.rendering import Renderer

__all__ = [
    "MAX_DEPTH",
    "PREVIEW_KEY",
    "PREVIEW_SCAN",
    "PREVIEW_UNSUBSCRIBE_URL",
    "READY_MADE_TEMPLATES",
    "Against",
    "CampaignEditor",
    "ChannelRequired",
    "EditingError",
    "Exists",
    "InvalidCampaign",
    "InvalidRule",
    "InvalidTemplate",
    "NotFound",
    "ReadOnly",
    "ReadyMade",
    "Saved",
    "SegmentEditor",
    "SegmentPreview",
    "TemplateEditor",
    "TemplateInForce",
    "TemplatePreview",
    "builtin_document",
    "stored_document",
    "version_fields",
]

Against = Callable[[int | None], int | None]
"""Given a definition's current version (``None``: there is none), the version a change
is made against (``None``: to create it); raises to refuse the change."""

D = TypeVar("D")


@dataclass(frozen=True)
class Saved(Generic[D]):
    """A definition as saved; ``created`` when the change was made against no version."""

    definition: D
    created: bool


# --- the errors --------------------------------------------------------------------------


class EditingError(Exception):
    """A definition refused: nothing was saved."""


class _KeyRefused(EditingError):
    """A refusal of the ``kind`` (segment, template) ``key``, said as ``_says``."""

    _says = ""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(self._says.format(kind=kind, key=key))
        self.kind = kind
        self.key = key


class ReadOnly(_KeyRefused):
    """``key`` is a built-in ``kind``: it cannot be changed."""

    _says = "{key} is a built-in {kind}"


class NotFound(EditingError):
    """No such definition (or buyer); the message says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Exists(_KeyRefused):
    """A new ``kind`` was to be made under ``key``, and one exists."""

    _says = "a {kind} {key} exists already"


class ChannelRequired(EditingError):
    """An unsaved template with no channel given, and none stored under its key."""

    def __init__(self) -> None:
        super().__init__("an unsaved template needs its channel")


class InvalidRule(EditingError):
    """The rule refused at ``pointer`` (into the rule, ``""`` for the whole of it):
    nested too deeply (``depth``), not a rule (``parse``), or naming a segment it
    cannot use, unknown or closing a cycle (``link``)."""

    def __init__(
        self, pointer: str, message: str, stage: Literal["depth", "parse", "link"]
    ) -> None:
        super().__init__(f"{pointer or '/'}: {message}")
        self.pointer = pointer
        self.message = message
        self.stage = stage


_WHOLE = ("push", "template")
"""Parts a render error may name that are the whole template, not one of its parts."""


class InvalidTemplate(EditingError):
    """The template does not render (``cause``), or is over a render limit (``limit``)."""

    def __init__(self, cause: TemplateContentError | RenderError) -> None:
        super().__init__(str(cause))
        self.cause = cause
        if isinstance(cause, TemplateContentError):
            self.pointer, self.line, self.message = cause.pointer, cause.line, cause.message
        else:
            part = cause.part.split(".")[0]
            self.pointer = "/content" if part in _WHOLE else f"/content/{part}"
            self.line, self.message = cause.line, cause.message
        self.limit = cause.limit if isinstance(cause, RenderTooCostly) else None


class InvalidCampaign(EditingError):
    """The campaign refused at ``pointer`` (of its document) with ``message``; ``detail``
    says it in one sentence; ``errors`` is every bad field, ``(pointer, message)``, this
    one first."""

    def __init__(
        self,
        pointer: str,
        message: str,
        detail: str | None = None,
        *,
        others: Sequence[tuple[str, str]] = (),
    ) -> None:
        if detail is None:
            detail = f"the campaign does not validate at {pointer}: {message}"
            if others:
                detail += f" (and {len(others)} more: {', '.join(p for p, _ in others)})"
        super().__init__(detail)
        self.pointer = pointer
        self.message = message
        self.detail = detail
        self.errors: tuple[tuple[str, str], ...] = ((pointer, message), *others)


# --- segments ----------------------------------------------------------------------------

MAX_DEPTH = 32
"""How deeply a rule's JSON may nest: far beyond any marketer's rule, far below recursion."""
PREVIEW_KEY = "\x00preview"
"""The key an unsaved rule is linked under: no stored segment can have it."""
PREVIEW_SCAN = 5000
"""Buyers a preview reads at most: exact up to this base, estimated beyond it."""
PREVIEW_BATCH = 1000


def _too_deep(node: Any, pointer: str, depth: int = 0) -> str | None:
    """The pointer of the first node nested deeper than :data:`MAX_DEPTH`, if any."""
    if depth > MAX_DEPTH:
        return pointer
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in children:
        found = _too_deep(value, child(pointer, key), depth + 1)
        if found is not None:
            return found
    return None


def _in_rule(error: RuleError) -> str:
    return "" if error.pointer == "/" else error.pointer


@dataclass(frozen=True)
class SegmentPreview:
    """How many buyers a rule holds for at ``as_of``, and a sample of them: exact over a
    ``base`` of buyers, or, with ``scanned`` set, estimated from that many with a 95%
    ``margin``."""

    size: int
    base: int
    sample: list[Profile]
    as_of: datetime
    scanned: int | None = None
    margin: int | None = None

    def fields(self, shape: Callable[[Profile], dict[str, Any]]) -> dict[str, Any]:
        """The preview as a document, each buyer of the sample by ``shape``."""
        found: dict[str, Any] = {
            "size": self.size,
            "base": self.base,
            "sample": [shape(p) for p in self.sample],
            "as_of": self.as_of,
        }
        if self.scanned is not None:
            found.update(estimated=True, scanned=self.scanned, margin=self.margin)
        return found


class SegmentEditor:
    """Segments on ``definitions``; the ``builtins`` are read-only and may be named."""

    def __init__(
        self, definitions: Definitions, builtins: Sequence[Segment] = BUILTIN_SEGMENTS
    ) -> None:
        self.definitions = definitions
        self.builtins = tuple(builtins)
        self.builtin = {s.key: s for s in self.builtins}

    @staticmethod
    def parsed(rule: Any) -> Condition:
        """``rule`` parsed, or :class:`InvalidRule` at the bad node."""
        deep = _too_deep(rule, "")
        if deep is not None:
            raise InvalidRule(deep, f"a rule nests at most {MAX_DEPTH} levels", "depth")
        try:
            return parse_rule(rule)
        except RuleError as exc:
            raise InvalidRule(_in_rule(exc), exc.message, "parse") from None

    async def linked(self, key: str, rule: Condition) -> Condition:
        """``rule`` (to be ``key``'s) with its ``{segment: ...}`` references linked to the
        segments in force, or :class:`InvalidRule` at the reference to an unknown segment
        or one closing a cycle."""
        in_force: dict[str, Condition] = {s.key: s.rule for s in self.builtins}
        for d in await self.definitions.segments.list():
            if d.key != key:
                with contextlib.suppress(RuleError, RecursionError):
                    in_force[d.key] = parse_rule(d.rule)
        errors: dict[str, RuleError] = {}
        linked = link_rules({**in_force, key: rule}, errors)
        if key in errors:
            raise InvalidRule(_in_rule(errors[key]), errors[key].message, "link")
        return linked[key]

    async def checked(self, key: str, rule: Any) -> Condition:
        """``rule`` parsed and linked, as :meth:`parsed` and :meth:`linked`."""
        return await self.linked(key, self.parsed(rule))

    async def preview(
        self, condition: Condition, now: datetime, *, sample_size: int
    ) -> SegmentPreview:
        """How many buyers ``condition`` holds for at ``now``, and a sample of them.

        Exact on a base of up to :data:`PREVIEW_SCAN` buyers; on a larger one, estimated
        from its first :data:`PREVIEW_SCAN` in id order (a random sample, since ids are
        random UUIDs) with a 95% margin, so a preview answers as fast as a marketer types
        and costs the same on any base.
        """
        size, scanned = 0, 0
        sample: list[Profile] = []
        after: str | None = None
        while scanned < PREVIEW_SCAN:
            batch = await self.definitions.buyers.page(after=after, limit=PREVIEW_BATCH)
            scanned += len(batch)
            for profile in batch:
                if condition.holds(profile, now):
                    size += 1
                    if len(sample) < sample_size:
                        sample.append(profile)
            if len(batch) < PREVIEW_BATCH:
                break
            after = batch[-1].id
        exact = SegmentPreview(size=size, base=scanned, sample=sample, as_of=now)
        if scanned < PREVIEW_SCAN:
            return exact
        base = await self.definitions.count_profiles()
        if base <= scanned:
            return exact
        share = size / scanned
        margin = 1.96 * math.sqrt(share * (1 - share) / scanned) * base
        return SegmentPreview(
            size=round(share * base),
            base=base,
            sample=sample,
            as_of=now,
            scanned=scanned,
            margin=max(1, round(margin)),
        )

    async def save(
        self, key: str, *, name: str, description: str, rule: Any, against: Against
    ) -> Saved[SegmentDefinition]:
        """Create or change the segment ``key`` once its rule parses and links."""
        if key in self.builtin:
            raise ReadOnly("segment", key)
        await self.checked(key, rule)
        current = await self.definitions.segments.get(key)
        expected = against(current.version if current else None)
        stored = await self.definitions.segments.put(
            key, name=name, description=description, rule=rule, expected_version=expected
        )
        return Saved(stored, created=expected is None)

    async def archive(self, key: str, against: Against) -> SegmentDefinition:
        """Archive the segment ``key``: its members exit."""
        if key in self.builtin:
            raise ReadOnly("segment", key)
        current = await self.definitions.segments.get(key)
        if current is None:
            raise NotFound(f"no segment {key}")
        expected = against(current.version)
        assert expected is not None, "a version rule names the version that exists"
        return await self.definitions.segments.archive(key, expected)


# --- templates ---------------------------------------------------------------------------

PREVIEW_UNSUBSCRIBE_URL = "https://shop.example/v1/unsubscribe/" + sign(
    SAMPLE_PROFILE.id, "email", "pre-churn-rescue", b"preview: no buyer's link"
)
"""What ``unsubscribe_url`` reads as in a preview: a link of the shape and length a real
one has (a buyer's id and a campaign's key signed), so an SMS previews with the
segments it is sent in; no real buyer's link is made for it."""


@dataclass(frozen=True)
class TemplatePreview:
    """A template (``version`` ``None``: an unsaved draft) rendered for a buyer
    (``profile_id`` ``None``: the sample buyer)."""

    key: str
    version: int | None
    channel: Channel
    profile_id: str | None
    rendered: dict[str, Any]


@dataclass(frozen=True)
class ReadyMade:
    """A ready-made campaign's template as shipped: its channel and content."""

    channel: Channel
    content: Mapping[str, str]


def _ready_made(templates: Templates) -> dict[str, ReadyMade]:
    found: dict[str, ReadyMade] = {}
    for on in CHANNELS:
        for key, template in templates.on(on).items():
            channel, content = content_of(template)
            found[key] = ReadyMade(channel, content)
    return found


READY_MADE_TEMPLATES: Mapping[str, ReadyMade] = _ready_made(Templates())
"""The ready-made campaigns' templates by key, as shipped."""


@dataclass(frozen=True)
class TemplateInForce:
    """The template ``key`` as the dispatcher sends it: the stored one (``stored``, when
    not archived), else the ready-made one (``ready_made``) as shipped. ``stored`` is
    whatever the store holds, archived too: its version is what a change is made against."""

    key: str
    stored: TemplateDefinition | None
    ready_made: ReadyMade | None

    @property
    def customised(self) -> bool:
        """Whether a stored template is in force (for a ready-made one: changed from the
        shipped text)."""
        return self.stored is not None and self.stored.archived_at is None

    @property
    def channel(self) -> Channel:
        if self.customised or self.ready_made is None:
            assert self.stored is not None
            return self.stored.channel
        return self.ready_made.channel

    @property
    def content(self) -> Mapping[str, str]:
        if self.customised or self.ready_made is None:
            assert self.stored is not None
            return self.stored.content
        return self.ready_made.content

    @property
    def version(self) -> int | None:
        """The version a change is made against (``None``: to create it)."""
        return self.stored.version if self.stored is not None else None


class TemplateEditor:
    """Templates on ``definitions``, rendered in ``renderer`` (off the event loop, bounded
    in time and in output), over the ``ready_made`` ones (default: the ready-made
    campaigns')."""

    def __init__(
        self,
        definitions: Definitions,
        renderer: Renderer,
        ready_made: Mapping[str, ReadyMade] = READY_MADE_TEMPLATES,
    ) -> None:
        self.definitions = definitions
        self.renderer = renderer
        self.ready_made = ready_made

    async def find(self, key: str) -> TemplateInForce | None:
        """The template ``key`` in force, stored or ready-made; ``None`` for neither (an
        archived template that is not ready-made is found as its stored definition)."""
        stored = await self.definitions.templates.get(key)
        ready_made = self.ready_made.get(key)
        if stored is None and ready_made is None:
            return None
        return TemplateInForce(key, stored, ready_made)

    async def listed(self) -> list[TemplateInForce]:
        """Every template in force, by key: the stored ones and the ready-made ones."""
        stored = {d.key: d for d in await self.definitions.templates.list(archived=True)}
        keys = {k for k, d in stored.items() if d.archived_at is None} | set(self.ready_made)
        return [TemplateInForce(k, stored.get(k), self.ready_made.get(k)) for k in sorted(keys)]

    async def render(
        self,
        channel: str,
        content: Mapping[str, Any],
        profile: Profile = SAMPLE_PROFILE,
        trigger: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``content`` checked and rendered for ``profile``, with the trigger properties
        ``trigger`` (default: sample ones), or :class:`InvalidTemplate`."""
        context = dict(message_context(profile, unsubscribe_url=PREVIEW_UNSUBSCRIBE_URL))
        context["trigger"] = trigger if trigger is not None else sample_trigger()
        try:
            return await self.renderer.parts(channel, content, context)
        except (TemplateContentError, RenderError) as exc:
            raise InvalidTemplate(exc) from None

    async def save(
        self, key: str, *, channel: Channel, content: Mapping[str, str], against: Against
    ) -> Saved[TemplateDefinition]:
        """Create or change the template ``key`` once it renders on the sample buyer."""
        self._keeps_channel(key, channel)
        await self.render(channel, content)
        return await self.store(key, channel=channel, content=content, against=against)

    def _keeps_channel(self, key: str, channel: Channel) -> None:
        ready_made = self.ready_made.get(key)
        if ready_made is not None and ready_made.channel != channel:
            raise InvalidTemplate(
                TemplateContentError(
                    "/channel",
                    f"{key} is a ready-made {ready_made.channel} template: its channel stays "
                    f"{ready_made.channel}",
                )
            )

    async def store(
        self, key: str, *, channel: Channel, content: Mapping[str, str], against: Against
    ) -> Saved[TemplateDefinition]:
        """:meth:`save` for a template the caller has rendered on the sample buyer (and
        checked further: the pages hold an SMS to its length too)."""
        self._keeps_channel(key, channel)
        current = await self.definitions.templates.get(key)
        expected = against(current.version if current else None)
        stored = await self.definitions.templates.put(
            key, channel=channel, content=content, expected_version=expected
        )
        return Saved(stored, created=expected is None)

    async def reset(self, key: str, against: Against) -> TemplateInForce:
        """Put the ready-made template ``key`` back to its shipped text: the marketer's
        change is archived (it stays readable, and a later save is a new version).
        Nothing to do for one that was never changed; :class:`NotFound` for a key that
        is not ready-made."""
        ready_made = self.ready_made.get(key)
        if ready_made is None:
            raise NotFound(f"{key} is not a ready-made template: there is no shipped text")
        stored = await self.definitions.templates.get(key)
        if stored is not None and stored.archived_at is None:
            expected = against(stored.version)
            assert expected is not None, "a version rule names the version that exists"
            stored = await self.definitions.templates.archive(key, expected)
        return TemplateInForce(key, stored, ready_made)

    async def preview(
        self,
        key: str,
        *,
        channel: Channel | None = None,
        content: Mapping[str, Any] | None = None,
        profile_id: str | None = None,
        trigger: Mapping[str, Any] | None = None,
    ) -> TemplatePreview:
        """The stored template ``key``, or ``content`` unsaved (of ``channel``, else of the
        stored one's), rendered for the buyer ``profile_id`` or the sample buyer."""
        version: int | None
        if content is not None:
            stored = await self.find(key)
            channel = channel or (stored.channel if stored else None)
            if channel is None:
                raise ChannelRequired
            version = None
        else:
            found = await self.find(key)
            if found is None:
                raise NotFound(f"no template {key}")
            channel, content = found.channel, found.content
            version = found.version if found.customised else None
        profile = SAMPLE_PROFILE
        if profile_id is not None:
            buyer = await self.definitions.find_profile(profile_id)
            if buyer is None:
                raise NotFound(f"no buyer {profile_id}")
            profile = buyer
        rendered = await self.render(channel, content, profile, trigger)
        return TemplatePreview(
            key=key,
            version=version,
            channel=channel,
            profile_id=None if profile is SAMPLE_PROFILE else profile.id,
            rendered=rendered,
        )


# --- campaigns ---------------------------------------------------------------------------


def _refused(exc: CampaignError) -> InvalidCampaign:
    return InvalidCampaign(
        exc.pointer, exc.message, others=[(e.pointer, e.message) for e in exc.errors[1:]]
    )


class CampaignEditor:
    """Campaigns on ``definitions``: stored ones over the ready-made ones, checked against
    what ``catalogue`` says a campaign may name (default: a catalogue of its own over
    ``definitions``)."""

    def __init__(
        self,
        definitions: Definitions,
        catalogue: Catalogue | None = None,
        offers: Offers | None = None,
    ) -> None:
        self.definitions = definitions
        self.catalogue = catalogue or Catalogue(definitions)
        self.offers = offers
        """With it, a campaign may name only an offer that exists."""

    @property
    def ready_made(self) -> Mapping[str, Campaign]:
        """The ready-made campaigns by key, as starting points."""
        return self.catalogue.ready_made

    async def nameable(self) -> tuple[set[str], dict[str, set[str]]]:
        """The segment keys, and the template keys per channel, a campaign may name now."""
        return await self.catalogue.nameable()

    async def checked(self, document: Mapping[str, Any], key: str) -> Campaign:
        """``document`` validated against what may be named now, or :class:`InvalidCampaign`."""
        segments, templates = await self.nameable()
        offers = None if self.offers is None else {o.key for o in await self.offers.list()}
        try:
            return parse_campaign(
                document, key=key, segments=segments, templates=templates, offers=offers
            )
        except CampaignError as exc:
            raise _refused(exc) from None
        except RecursionError:
            raise InvalidCampaign("/audience", "the rule nests too deeply") from None

    async def find(self, key: str) -> tuple[Campaign | None, CampaignDefinition | None]:
        """The campaign ``key`` (stored, else ready-made) and its stored definition, if any;
        a stored one that no longer parses is found as its definition alone."""
        stored = await self.definitions.campaigns.get(key)
        if stored is not None:
            try:
                return parse_campaign(stored.definition, key=key), stored
            except CampaignError:
                return None, stored
        return self.ready_made.get(key), None

    @staticmethod
    def document(
        key: str, campaign: Campaign | None, stored: CampaignDefinition | None
    ) -> Mapping[str, Any]:
        """What :meth:`find` found, as a document: the stored definition, else the
        ready-made one; :class:`NotFound` for neither."""
        if stored is not None:
            return stored.definition
        if campaign is not None:
            return campaign.to_dict()
        raise NotFound(f"no campaign {key}")

    async def listed(self) -> list[dict[str, Any]]:
        """Every campaign: stored ones (not archived), and ready-made ones not stored; by
        priority, highest first, then key."""
        stored = {d.key: d for d in await self.definitions.campaigns.list()}
        found = [stored_document(d) for d in stored.values()]
        found += [builtin_document(c) for k, c in self.ready_made.items() if k not in stored]
        return sorted(found, key=lambda c: (-int(c.get("priority") or 0), c["key"]))

    async def save(
        self, key: str, document: Mapping[str, Any], against: Against
    ) -> Saved[CampaignDefinition]:
        """Create or change the campaign ``key`` once it validates. Without ``status`` a
        new campaign is a draft and a changed one keeps its status: saving never starts
        sending."""
        campaign = await self.checked(document, key)
        current = await self.definitions.campaigns.get(key)
        expected = against(current.version if current else None)
        status = campaign.status if "status" in document or current is None else current.status
        return Saved(await self._put(key, campaign, status, expected), created=expected is None)

    async def set_status(self, key: str, status: str, against: Against) -> CampaignDefinition:
        """Activate or pause ``key``. Activation validates again, against what may be named
        now; a ready-made campaign not stored yet is stored."""
        campaign, current = await self.find(key)
        document = self.document(key, campaign, current)
        expected = against(current.version if current else None)
        if status == "active" or campaign is None:
            campaign = await self.checked(document, key)
        return await self._put(key, campaign, status, expected)

    async def _put(
        self, key: str, campaign: Campaign, status: str, expected: int | None
    ) -> CampaignDefinition:
        document = {**campaign.to_dict(), "status": status}
        try:
            return await self.definitions.campaigns.put(
                key, definition=document, status=status, expected_version=expected
            )
        except CampaignError as exc:
            raise _refused(exc) from None
        except ValueError as exc:
            raise InvalidCampaign("/", str(exc), str(exc)) from None


def stored_document(d: CampaignDefinition) -> dict[str, Any]:
    """A stored campaign as listed: its definition with its key, status and version."""
    return {**d.definition, "key": d.key, "status": d.status, **version_fields(d)}


def version_fields(d: Versioned, *, builtin: bool | None = False) -> dict[str, Any]:
    """A stored definition's version and times, as listed (``builtin`` ``None``: left out)."""
    fields: dict[str, Any] = {"version": d.version}
    if builtin is not None:
        fields["builtin"] = builtin
    fields.update(
        created_at=d.created_at.isoformat(),
        updated_at=d.updated_at.isoformat(),
        archived_at=d.archived_at.isoformat() if d.archived_at else None,
    )
    return fields


def builtin_document(c: Campaign) -> dict[str, Any]:
    """A ready-made campaign not stored, as listed."""
    return {**c.to_dict(), "version": None, "builtin": True}
