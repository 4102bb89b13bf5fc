"""The export port: the whole base of buyers, read in id order a batch at a time.

``nudge export profiles`` streams every buyer out without holding the base in
memory: it asks for the next page after the last id it wrote
(:class:`~shared.ports.buyers.BuyerPages`), so its cost per page does not grow with
how far it has come. Read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared.domain.profile import Profile
from shared.ports.buyers import BuyerPages

__all__ = ["ExportedProfile", "ProfileExport"]


@dataclass(frozen=True)
class ExportedProfile:
    """One buyer as an export sees it: the profile, every identifier, every segment."""

    profile: Profile
    identifiers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Identifier kind to the buyer's values of it, in full (masking is the reader's job);
    the profile's own ``profile_id`` is left out, it is ``profile.id``."""
    segments: Mapping[str, datetime] = field(default_factory=dict)
    """Segment key to when the buyer entered it."""


class ProfileExport(BuyerPages[ExportedProfile], Protocol):
    """Every buyer as an export sees them (:meth:`~BuyerPages.page`)."""

    async def close(self) -> None: ...
