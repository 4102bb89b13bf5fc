"""Saving programmes: the one flow behind the console's programmes API (and, later, its
builder). Like :class:`~services.catalogue.editing.CampaignEditor`: a programme is
validated against the segments and templates in force (the shared
:class:`~services.catalogue.Catalogue`), stored over the ready-made ones, and refused
with :class:`InvalidProgramme` at the JSON pointer of the bad field.

Every save is a new version (the store keeps each one): buyers inside a programme stay
on the version they entered (docs/programmes.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from services.catalogue.catalogue import Catalogue
from services.catalogue.editing import Against, EditingError, NotFound, Saved, version_fields
from shared.domain.campaigns import SegmentTrigger
from shared.domain.programmes import (
    BUILTIN_PROGRAMMES,
    EveryoneIn,
    Programme,
    ProgrammeError,
    Send,
    parse_programme,
    programme_report,
)
from shared.ports.definitions import Definitions, ProgrammeDefinition
from shared.ports.offers import Offers
from shared.ports.reports import CampaignResultsStore

__all__ = ["InvalidProgramme", "NoWinner", "ProgrammeEditor", "programme_document"]


class InvalidProgramme(EditingError):
    """The programme refused at ``pointer`` (of its document) with ``message``."""

    def __init__(self, pointer: str, message: str) -> None:
        self.pointer = pointer
        self.message = message
        self.detail = f"the programme does not validate at {pointer}: {message}"
        super().__init__(self.detail)


class NoWinner(EditingError):
    """A step promoted that has no winner to promote: not an adaptive split, or no variant
    has won yet."""


def programme_document(d: ProgrammeDefinition) -> dict[str, Any]:
    """A stored programme as the API answers it: its definition with key, status, version."""
    return {**d.definition, "key": d.key, "status": d.status, **version_fields(d)}


def _builtin_document(p: Programme) -> dict[str, Any]:
    return {**p.document, "key": p.key, "status": p.status, "version": None, "builtin": True}


def _as_written(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` without what the API adds to a programme read back (its version,
    ``builtin``, the ``*_at`` stamps)."""
    return {
        k: v
        for k, v in document.items()
        if k not in ("version", "builtin") and not k.endswith("_at")
    }


class ProgrammeEditor:
    """Programmes on ``definitions``, stored over the ready-made ones, checked against what
    ``catalogue`` says may be named (default: a catalogue of its own)."""

    def __init__(
        self,
        definitions: Definitions,
        catalogue: Catalogue | None = None,
        offers: Offers | None = None,
    ) -> None:
        self.definitions = definitions
        self.catalogue = catalogue or Catalogue(definitions)
        self.ready_made: Mapping[str, Programme] = {p.key: p for p in BUILTIN_PROGRAMMES}
        self.offers = offers
        """With it, a send step or variant may name only an offer that exists."""

    async def checked(self, document: Mapping[str, Any], key: str) -> Programme:
        """``document`` validated against what may be named now, or :class:`InvalidProgramme`."""
        segments, templates = await self.catalogue.nameable()
        try:
            programme = parse_programme(document, key=key, segments=segments, templates=templates)
        except ProgrammeError as exc:
            raise InvalidProgramme(exc.pointer, exc.message) from None
        except RecursionError:
            raise InvalidProgramme("/", "a rule nests too deeply") from None
        if self.offers is not None:
            known = {o.key for o in await self.offers.list()}
            for pointer, offer in _offers_named(document):
                if offer not in known:
                    raise InvalidProgramme(pointer, f"no offer {offer!r}")
        return programme

    async def document(self, key: str) -> tuple[dict[str, Any], int | None]:
        """The programme ``key`` as the API answers it, and its stored version (``None``
        for a ready-made one not stored); :class:`NotFound` for neither."""
        stored = await self.definitions.programmes.get(key)
        if stored is not None and stored.archived_at is None:
            return programme_document(stored), stored.version
        if key in self.ready_made:
            return _builtin_document(self.ready_made[key]), None
        raise NotFound(f"no programme {key}")

    async def listed(self) -> list[dict[str, Any]]:
        """Every programme: the stored ones (not archived), and the ready-made ones not
        stored; by priority, highest first, then key."""
        stored = {d.key: d for d in await self.definitions.programmes.list()}
        found = [programme_document(d) for d in stored.values()]
        found += [_builtin_document(p) for k, p in self.ready_made.items() if k not in stored]
        return sorted(found, key=lambda p: (-int(p.get("priority") or 0), p["key"]))

    async def programme(self, key: str) -> Programme:
        """The programme ``key`` as it is now (stored, else ready-made), parsed;
        :class:`NotFound` for neither."""
        document, version = await self.document(key)
        programme = await self.checked(_as_written(document), key)
        return programme if version is None else replace(programme, version=version)

    async def dry_run(self, key: str, document: Mapping[str, Any]) -> dict[str, Any]:
        """What saving ``document`` as ``key`` would do now, changing nothing: it is
        validated as a save is (:class:`InvalidProgramme`), and answers how many buyers
        it would enter now. An ``everyone_in`` programme enters the segment's members at
        activation (its holdout's share of them held out); a segment trigger enters no
        one now (a buyer enters when they enter or leave the segment: its size now is
        given), nor an event or moment trigger."""
        programme = await self.checked(_as_written(document), key)
        trigger = programme.trigger
        sizes = await self.definitions.segment_sizes()
        answer: dict[str, Any] = {"key": key, "dry_run": True, "valid": True}
        if isinstance(trigger, EveryoneIn):
            members = sizes.get(trigger.segment, 0)
            held = round(members * programme.holdout)
            answer |= {"would_enter": members, "treatment": members - held, "holdout": held}
            answer["segment"] = trigger.segment
        else:
            answer |= {"would_enter": 0, "treatment": 0, "holdout": 0}
            if isinstance(trigger, SegmentTrigger):
                answer |= {"segment": trigger.segment, "in_segment": sizes.get(trigger.segment, 0)}
        return answer

    async def save(
        self, key: str, document: Mapping[str, Any], against: Against
    ) -> Saved[ProgrammeDefinition]:
        """Create or change the programme ``key`` once it validates, as a new version.
        Without ``status`` a new programme is a draft and a changed one keeps its status."""
        written = _as_written(document)
        programme = await self.checked(written, key)
        current = await self.definitions.programmes.get(key)
        expected = against(current.version if current else None)
        status = programme.status if "status" in written or current is None else current.status
        definition = {**written, "key": key, "status": status}
        try:
            saved = await self.definitions.programmes.put(
                key, definition=definition, status=status, expected_version=expected
            )
        except ProgrammeError as exc:
            raise InvalidProgramme(exc.pointer, exc.message) from None
        return Saved(saved, created=expected is None)

    async def set_status(
        self, key: str, status: str, against: Against
    ) -> Saved[ProgrammeDefinition]:
        """Switch ``key`` on (``active``) or off (``paused``), validated again, as a new
        version; a ready-made programme not stored yet is stored (a shop switching it on)."""
        document, _version = await self.document(key)
        return await self.save(key, {**_as_written(document), "status": status}, against)

    async def promote(
        self, key: str, step_id: str, results: CampaignResultsStore, against: Against
    ) -> tuple[Saved[ProgrammeDefinition], str, float]:
        """Make the variant that won the adaptive split of step ``step_id`` its only one, as
        a new version of the programme; return it, the winner and its probability of being
        best. :class:`NotFound` for no such programme or step, :class:`NoWinner` for a step
        that is not an adaptive split or has no winner yet."""
        programme = await self.programme(key)
        step = programme.steps.get(step_id)
        if step is None:
            raise NotFound(f"no step {step_id} in programme {key}")
        if not isinstance(step, Send) or step.adaptive is None:
            raise NoWinner(f"step {step_id} of {key} is not an adaptive split")
        report = programme_report(programme, await results.programme_facts(key))
        learning = next(s.learning for s in report.steps if s.step == step_id)
        winner = None if learning is None else learning.winner
        probability = None if learning is None else learning.winner_probability
        if winner is None or probability is None:
            raise NoWinner(f"no variant of step {step_id} of {key} has won yet")
        document, _version = await self.document(key)
        written = _as_written(document)
        steps = [dict(s) for s in written["steps"]]
        for i, s in enumerate(steps):
            if s.get("id") == step_id:
                send = {k: v for k, v in s["send"].items() if k not in ("split", "adaptive")}
                kept = [v for v in send["variants"] if v.get("name") == winner]
                send["variants"] = [{**kept[0], "share": 1}]
                steps[i] = {**s, "send": send}
        saved = await self.save(key, {**written, "steps": steps}, against)
        return saved, winner, probability


def _offers_named(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The offers a programme's send steps and variants name, each with its pointer; the
    document has parsed, so its steps are as the parser read them."""
    named: list[tuple[str, str]] = []
    for i, step in enumerate(document.get("steps") or ()):
        send = step.get("send") if isinstance(step, Mapping) else None
        if not isinstance(send, Mapping):
            continue
        if isinstance(send.get("offer"), str):
            named.append((f"/steps/{i}/send/offer", send["offer"]))
        for j, variant in enumerate(send.get("variants") or ()):
            if isinstance(variant, Mapping) and isinstance(variant.get("offer"), str):
                named.append((f"/steps/{i}/send/variants/{j}/offer", variant["offer"]))
    return named
