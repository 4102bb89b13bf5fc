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
from typing import Any

from services.catalogue.catalogue import Catalogue
from services.catalogue.editing import Against, EditingError, NotFound, Saved, version_fields
from shared.domain.programmes import (
    BUILTIN_PROGRAMMES,
    Programme,
    ProgrammeError,
    parse_programme,
)
from shared.ports.definitions import Definitions, ProgrammeDefinition
from shared.ports.offers import Offers

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

    async def save(
        self, key: str, document: Mapping[str, Any], against: Against
    ) -> Saved[ProgrammeDefinition]:
        """Create or change the programme ``key`` once it validates, as a new version.
        Without ``status`` a new programme is a draft and a changed one keeps its status."""
        written = {k: v for k, v in document.items() if k not in ("version", "builtin")}
        written = {k: v for k, v in written.items() if not k.endswith("_at")}
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
