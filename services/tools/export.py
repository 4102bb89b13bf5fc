"""``nudge export profiles``: every buyer as one JSON line, streamed in id order.

A line holds the buyer's id, identifiers (masked, as in logs: ``+7*******67``,
``a***@shop.ru``), order stats, RFM scores, lifecycle stage, segments, probability
of being alive and CLV. The scores are the scoring job's latest (``null`` before
its first run over the buyer); the lifecycle stage is the segmenter's, from the
buyer's ``lifecycle-<stage>`` segment. Money is written as a string with two decimals (exact, as
in the events), moments as ISO 8601 in UTC. The base is read a batch at a time
(:class:`~shared.ports.exports.ProfileExport`), never whole.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from shared.domain.lifecycle import STAGES
from shared.domain.masking import mask_email, mask_identifier, mask_phone
from shared.ports.exports import ExportedProfile, ProfileExport

__all__ = ["BATCH", "export_profiles", "profile_line"]

BATCH = 1000
"""Buyers per read: one short transaction each."""

LIFECYCLE_PREFIX = "lifecycle-"
"""Lifecycle stages are segments like any other: ``lifecycle-new``, ``lifecycle-loyal``..."""

_MASKS: dict[str, Callable[[str], str]] = {"email": mask_email, "phone": mask_phone}


def _money(amount: Decimal | None) -> str | None:
    return None if amount is None else f"{amount:.2f}"


def _moment(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def profile_line(exported: ExportedProfile) -> dict[str, Any]:
    """One buyer as the export writes it."""
    p = exported.profile
    return {
        "id": p.id,
        "identifiers": {
            kind: [_MASKS.get(kind, mask_identifier)(value) for value in values]
            for kind, values in exported.identifiers.items()
        },
        "stats": {
            "orders_count": p.orders_count,
            "revenue_total": _money(p.revenue_total),
            "first_order_at": _moment(p.first_order_at),
            "last_order_at": _moment(p.last_order_at),
            "avg_check": _money(p.avg_check),
        },
        "rfm": None
        if p.rfm_r is None or p.rfm_f is None or p.rfm_m is None
        else {"r": p.rfm_r, "f": p.rfm_f, "m": p.rfm_m, "segment": p.rfm_segment},
        "lifecycle": _lifecycle(exported),
        "segments": sorted(exported.segments),
        "p_alive": p.p_alive,
        "clv": _money(p.clv),
    }


def _lifecycle(exported: ExportedProfile) -> str | None:
    """The stage the segmenter last put the buyer in (its ``lifecycle-<stage>`` segment,
    under the deployment's thresholds); ``None`` for a buyer not evaluated yet."""
    stages = [key.removeprefix(LIFECYCLE_PREFIX) for key in exported.segments]
    return next((s for s in STAGES if s in stages), None)


async def export_profiles(
    source: ProfileExport,
    write: Callable[[bytes], object],
    *,
    batch: int = BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Write every buyer of ``source`` as a JSON line through ``write``; return how many."""
    written = 0
    after: str | None = None
    while True:
        profiles = await source.page(after=after, limit=batch)
        if not profiles:
            return written
        write(b"".join(orjson.dumps(profile_line(p)) + b"\n" for p in profiles))
        written += len(profiles)
        after = profiles[-1].profile.id
        if on_batch is not None:
            on_batch(len(profiles))
