"""The segmenter's handlers: apply events, fire due timers, relay the outbox.

Each handler is one unit of work: the event's dedupe row, the profile, the
memberships, the next timer and the outbox rows commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from shared.codec import encode_change
from shared.domain.events import parse_event
from shared.domain.profile import Profile, apply_event
from shared.domain.segments import Segment, reevaluate
from shared.errors import PoisonRecord
from shared.ports.bus import Publisher, Record
from shared.ports.clock import Clock
from shared.ports.store import Store, UnitOfWork

__all__ = ["Segmenter", "relay_outbox"]


@dataclass
class Segmenter:
    store: Store
    clock: Clock
    segments: Sequence[Segment]
    changes_topic: str

    async def apply_events(self, records: Sequence[Record]) -> None:
        """Apply a batch of events in one transaction; an event seen before changes nothing."""
        async with self.store.unit_of_work() as uow:
            now = self.clock.now()
            for record in records:
                try:
                    event = parse_event(record.value)
                except ValidationError as exc:
                    raise PoisonRecord(f"not a valid event: {exc.error_count()} errors") from exc
                if not await uow.inbox.claim(event.event_id, now):
                    continue
                profile = await uow.profiles.resolve(event.customer.identifiers(), now)
                changed = apply_event(profile, event)
                await self._settle(uow, profile, now, changed)
                await uow.profiles.save(profile, now)
            await uow.commit()

    async def fire_timers(self, limit: int = 1000) -> int:
        """Re-evaluate the buyers whose timer is due; return how many there were."""
        async with self.store.unit_of_work() as uow:
            now = self.clock.now()
            due = await uow.timers.due(now, limit)
            for profile_id in due:
                profile = await uow.profiles.get(profile_id)
                if profile is None:  # merged away since it was locked
                    continue
                await self._settle(uow, profile, now, changed=None)
                await uow.profiles.save(profile, now)
            await uow.commit()
        return len(due)

    async def _settle(
        self, uow: UnitOfWork, profile: Profile, now: datetime, changed: frozenset[str] | None
    ) -> None:
        """Move the buyer's memberships and next timer; the caller saves the profile."""
        untouched = changed is not None and all(
            s.rule.reads.isdisjoint(changed) for s in self.segments
        )
        due = profile.next_timer_at is not None and profile.next_timer_at <= now
        if untouched and not due and profile.evaluated_at is not None:
            return
        current = await uow.memberships.of(profile.id)
        evaluation = reevaluate(profile, self.segments, current, now, changed)
        await uow.memberships.apply(evaluation.changes)
        profile.next_timer_at = evaluation.next_timer
        profile.evaluated_at = now
        for change in evaluation.changes:
            await uow.outbox.add(
                self.changes_topic, profile.id.encode(), encode_change(change), now
            )


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
