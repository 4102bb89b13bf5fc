"""The segmenter's handlers: apply events, fire due timers, relay the outbox.

Each handler is one unit of work: the event's dedupe row, the profile, the
memberships, the next timer and the outbox rows commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from shared.codec import encode_change, encode_merge
from shared.domain.events import AnyEvent, read_published_event
from shared.domain.profile import Profile, ProfileMerged, absorb, apply_event
from shared.domain.segments import MembershipChange, Segment, merge_stays, reevaluate
from shared.errors import PoisonRecord
from shared.ports.bus import Publisher, Record
from shared.ports.clock import Clock
from shared.ports.store import OutgoingRecord, Resolution, Store, UnitOfWork

__all__ = ["Segmenter", "relay_outbox"]


@dataclass
class Segmenter:
    store: Store
    clock: Clock
    segments: Sequence[Segment]
    changes_topic: str

    async def apply_events(self, records: Sequence[Record]) -> None:
        """Apply a batch of events in one transaction; an event seen before changes nothing.

        The batch is read and written set-wise (a handful of statements whatever its
        size): claim the event ids, resolve and lock the buyers, apply the events in
        order in memory, then evaluate each touched buyer once, on what changed.
        """
        events = [_parse(record) for record in records]
        async with self.store.unit_of_work() as uow:
            now = self.clock.now()
            fresh = await uow.inbox.claim([e.event_id for e in events], now)
            todo = [e for e in {e.event_id: e for e in events}.values() if e.event_id in fresh]
            if not todo:
                await uow.commit()
                return
            resolution = await uow.profiles.resolve([e.customer.identifiers() for e in todo], now)
            changed: dict[str, set[str]] = {}
            for event, profile in zip(todo, resolution.profiles, strict=True):
                changed.setdefault(profile.id, set()).update(apply_event(profile, event))
            touched = {p.id: p for p in resolution.profiles}
            tombstones = await self._merge(uow, resolution, touched, now)
            fields = {pid: frozenset(changed.get(pid, ())) for pid in touched}
            await self._settle(uow, touched, now, fields)
            await uow.profiles.save([*touched.values(), *tombstones], now)
            await uow.commit()

    async def _merge(
        self, uow: UnitOfWork, resolution: Resolution, touched: dict[str, Profile], now: datetime
    ) -> list[Profile]:
        """Fold every profile found to be another buyer's into its survivor, in order.

        The survivor keeps its own segment stays and joins the absorbed profile's other
        stays as they were (no new entry, so no second message to the same person);
        the merge is announced on the changes topic as ``profile_merged``.
        """
        tombstones: list[Profile] = []
        for absorbed_id, survivor_id in resolution.merges:
            absorbed = resolution.loaded[absorbed_id]
            survivor = resolution.loaded[survivor_id]
            stays = await uow.memberships.of([absorbed_id, survivor_id])
            joined = merge_stays(stays[survivor_id], stays[absorbed_id])
            absorb(survivor, absorbed)
            await uow.profiles.merge(absorbed_id, survivor_id)
            await uow.memberships.apply(
                [
                    MembershipChange("entered", segment, survivor_id, entered_at, "")
                    for segment, entered_at in joined.items()
                    if segment not in stays[survivor_id]
                ]
            )
            merge = ProfileMerged(absorbed_id, survivor_id, now)
            await uow.outbox.add(
                [OutgoingRecord(self.changes_topic, absorbed_id.encode(), encode_merge(merge))],
                now,
            )
            touched.pop(absorbed_id, None)
            touched[survivor_id] = survivor
            tombstones.append(absorbed)
        return tombstones

    async def fire_timers(self, limit: int = 1000) -> int:
        """Re-evaluate the buyers whose timer is due; return how many there were."""
        async with self.store.unit_of_work() as uow:
            now = self.clock.now()
            due = await uow.timers.due(now, limit)
            if due:
                profiles = await uow.profiles.get_many(due)
                await self._settle(uow, profiles, now, None)
                await uow.profiles.save(profiles.values(), now)
            await uow.commit()
        return len(due)

    async def _settle(
        self,
        uow: UnitOfWork,
        profiles: Mapping[str, Profile],
        now: datetime,
        changed: Mapping[str, frozenset[str]] | None,
    ) -> None:
        """Move the buyers' memberships and next timers; the caller saves the profiles."""
        needed = [p for p in profiles.values() if self._needs_evaluation(p, now, changed)]
        if not needed:
            return
        memberships = await uow.memberships.of([p.id for p in needed])
        changes: list[MembershipChange] = []
        for profile in needed:
            fields = None if changed is None else changed[profile.id]
            evaluation = reevaluate(profile, self.segments, memberships[profile.id], now, fields)
            profile.next_timer_at = evaluation.next_timer
            profile.evaluated_at = now
            changes.extend(evaluation.changes)
        await uow.memberships.apply(changes)
        await uow.outbox.add(
            [
                OutgoingRecord(self.changes_topic, c.profile_id.encode(), encode_change(c))
                for c in changes
            ],
            now,
        )

    def _needs_evaluation(
        self, profile: Profile, now: datetime, changed: Mapping[str, frozenset[str]] | None
    ) -> bool:
        if changed is None or profile.evaluated_at is None:
            return True
        if profile.next_timer_at is not None and profile.next_timer_at <= now:
            return True
        fields = changed[profile.id]
        return any(not s.rule.reads.isdisjoint(fields) for s in self.segments)


def _parse(record: Record) -> AnyEvent:
    try:
        return read_published_event(record.value)
    except ValidationError as exc:
        raise PoisonRecord(f"not a valid event: {exc.error_count()} errors") from exc


async def relay_outbox(store: Store, publisher: Publisher, clock: Clock, limit: int = 500) -> int:
    """Publish the oldest unpublished outbox rows, in order; return how many."""
    async with store.unit_of_work() as uow:
        rows = await uow.outbox.claim(limit)
        if not rows:
            return 0
        start = 0
        for end in range(1, len(rows) + 1):
            if end == len(rows) or rows[end].topic != rows[start].topic:
                batch = rows[start:end]
                await publisher.publish(batch[0].topic, [(r.key, r.value) for r in batch])
                start = end
        await uow.outbox.mark_published([r.id for r in rows], clock.now())
        await uow.commit()
    return len(rows)
