"""How segment changes travel on the bus: JSON, one change a record, keyed by buyer."""

from __future__ import annotations

from datetime import datetime

import orjson

from shared.domain.profile import ProfileMerged
from shared.domain.segments import MembershipChange

__all__ = ["decode_change", "encode_change", "encode_merge"]


def encode_change(change: MembershipChange) -> bytes:
    return orjson.dumps(
        {
            "kind": change.kind,
            "segment": change.segment,
            "profile_id": change.profile_id,
            "at": change.at.isoformat(),
            "occurrence_id": change.occurrence_id,
        }
    )


def encode_merge(merge: ProfileMerged) -> bytes:
    return orjson.dumps(
        {
            "kind": "profile_merged",
            "profile_id": merge.absorbed,
            "into": merge.survivor,
            "at": merge.at.isoformat(),
        }
    )


def decode_change(raw: bytes) -> MembershipChange | ProfileMerged:
    data = orjson.loads(raw)
    kind = data["kind"]
    if kind == "profile_merged":
        return ProfileMerged(
            absorbed=str(data["profile_id"]),
            survivor=str(data["into"]),
            at=datetime.fromisoformat(data["at"]),
        )
    if kind not in ("entered", "exited"):
        raise ValueError(f"unknown change kind {kind!r}")
    return MembershipChange(
        kind=kind,
        segment=str(data["segment"]),
        profile_id=str(data["profile_id"]),
        at=datetime.fromisoformat(data["at"]),
        occurrence_id=str(data["occurrence_id"]),
    )
