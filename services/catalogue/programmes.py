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
    parse_programme,
)
from shared.ports.definitions import Definitions, ProgrammeDefinition

__all__ = ["InvalidProgramme", "ProgrammeEditor", "programme_document"]


class InvalidProgramme(EditingError):
    """The programme refused at ``pointer`` (of its document) with ``message``."""

    def __init__(self, pointer: str, message: str) -> None:
        self.pointer = pointer
        self.message = message
        self.detail = f"the programme does not validate at {pointer}: {message}"
        super().__init__(self.detail)


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

    def __init__(self, definitions: Definitions, catalogue: Catalogue | None = None) -> None:
        self.definitions = definitions
        self.catalogue = catalogue or Catalogue(definitions)
        self.ready_made: Mapping[str, Programme] = {p.key: p for p in BUILTIN_PROGRAMMES}

    async def checked(self, document: Mapping[str, Any], key: str) -> Programme:
        """``document`` validated against what may be named now, or :class:`InvalidProgramme`."""
        segments, templates = await self.catalogue.nameable()
        try:
            return parse_programme(document, key=key, segments=segments, templates=templates)
        except ProgrammeError as exc:
            raise InvalidProgramme(exc.pointer, exc.message) from None
        except RecursionError:
            raise InvalidProgramme("/", "a rule nests too deeply") from None

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
