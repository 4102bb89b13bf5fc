"""The segmenter's handlers: apply events, fire due timers, relay the outbox, and keep
the segments in force (the built-ins and the marketers' stored ones) with the base
evaluated against each one's current rule.

Each handler is one unit of work: the event's dedupe row, the profile, the
memberships, the next timer and the outbox rows commit together or not at all.

Purchases and refunds move their orders' balances in the same unit of work
(:class:`~shared.domain.money.OrderBook`): a refund above what its order left, of another
buyer's order, or of an order nudge never saw beyond ``refund_rules``' cap, is a
:class:`~shared.errors.PoisonRecord` with the reason, so its batch is rolled back whole
and the consume loop dead-letters that one refund, the others applied.

A stored segment whose rule changed (or that is new) is evaluated over the whole
base once, in batches of buyers in id order (:meth:`Segmenter.recompute`), each
batch one unit of work with its ``entered``/``exited`` changes in the outbox like
any other; how far it got is kept (``segment_recomputes``), so a restart resumes
there. An archived segment is recomputed the same way, as a rule no one meets: its
members exit.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from services.catalogue import Catalogue
from services.segmenter.attribution import Attribution
from shared.codec import encode_change, encode_merge
from shared.domain.events import AnyEvent, PurchaseEvent, RefundEvent, read_published_event
from shared.domain.money import OrderBook, RefundRefused, RefundRules
from shared.domain.profile import (
    Profile,
    ProfileMerged,
    Scores,
    absorb,
    apply_event,
    apply_scores,
)
from shared.domain.rules import Condition
from shared.domain.segments import (
    MembershipChange,
    Segment,
    SegmentIndex,
    merge_stays,
    reevaluate,
    rule_fingerprint,
)
from shared.errors import PoisonRecord
from shared.logging import get_logger
from shared.ports.bus import Publisher, Record
from shared.ports.clock import Clock
from shared.ports.definitions import Definitions, Recompute
from shared.ports.store import OutgoingRecord, PlacedOrder, Resolution, Store, UnitOfWork

__all__ = ["Segmenter", "relay_outbox"]

log = get_logger(__name__)

RECOMPUTE_BATCH = 1000
"""Buyers per unit of work when the base is evaluated against one segment."""
_PROGRESS_SECONDS = 5.0
"""At most one progress line this often per recompute."""


class _NoOne(Condition):
    """The rule of an archived segment: no one meets it, so its members exit."""

    @property
    def reads(self) -> frozenset[str]:
        return frozenset()

    def holds(self, profile: Profile, now: datetime) -> bool:
        return False

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


_ARCHIVED = "archived"
"""The fingerprint of an archived segment's recompute."""


@dataclass
class Segmenter:
    """``segments`` are the built-ins; with ``definitions``, the stored segments join
    them at each :meth:`refresh_segments`."""

    store: Store
    clock: Clock
    segments: Sequence[Segment]
    changes_topic: str
    definitions: Definitions | None = None
    recompute_size: int = RECOMPUTE_BATCH
    default_timezone: str = "UTC"
    """The zone a buyer's email opens are counted in when they did not say theirs."""
    refund_rules: RefundRules = field(default_factory=RefundRules)
    """What a refund of an order nudge never saw may take back."""
    attribution: Attribution | None = None
    """With it, each batch's purchases are attributed to the campaign messages they convert
    and its delivery reports kept per message: what campaign reports count."""
    catalogue: Catalogue | None = None
    """Where the segments in force come from (shared with attribution in a service); by
    default one over ``segments`` and ``definitions``."""
    index: SegmentIndex = field(init=False)
    """The segments in force, by the fields they read."""

    def __post_init__(self) -> None:
        self._in_force = self.catalogue or Catalogue(self.definitions, segments=self.segments)
        self.index = SegmentIndex(self._in_force.segments)
        self._archived: tuple[str, ...] = ()
        self._targets: dict[str, tuple[str, Segment]] | None = None
        self._logged_at: dict[str, float] = {}

    async def apply_events(self, records: Sequence[Record]) -> None:
        """Apply a batch of events in one transaction; an event seen before changes nothing.

        The batch is read and written set-wise (a handful of statements whatever its
        size): claim the event ids, resolve and lock the buyers, apply the events in
        order in memory, then evaluate each touched buyer once, on what changed.
        """
        events = [_parse(record) for record in records]
        await self._load_segments_once()
        async with self.store.unit_of_work() as uow:
            now = self.clock.now()
            fresh = await uow.inbox.claim([e.dedupe_id for e in events], now)
            todo = [e for e in {e.dedupe_id: e for e in events}.values() if e.dedupe_id in fresh]
            if not todo:
                await uow.commit()
                await self._attribute(events)
                return
            resolution = await uow.profiles.resolve([e.customer.identifiers() for e in todo], now)
            orders = await self._order_book(uow, todo, resolution)
            changed: dict[str, set[str]] = {}
            notes: list[str] = []
            for event, profile in zip(todo, resolution.profiles, strict=True):
                if orders is not None:
                    notes += _taken(orders, event, profile.id)
                changed.setdefault(profile.id, set()).update(
                    apply_event(profile, event, default_timezone=self.default_timezone)
                )
            touched = {p.id: p for p in resolution.profiles}
            await uow.placed_orders.record(_placed(todo, resolution.profiles))
            tombstones = await self._merge(uow, resolution, touched, now)
            fields = {pid: frozenset(changed.get(pid, ())) for pid in touched}
            await self._settle(uow, touched, now, fields)
            await uow.profiles.save([*touched.values(), *tombstones], now)
            if orders is not None:
                await uow.orders.save(orders.changed.values(), now)
            await uow.commit()
        for note in notes:
            log.warning("refund of an order nudge never saw accepted", note=note)
        await self._attribute(events)

    async def _order_book(
        self, uow: UnitOfWork, events: Sequence[AnyEvent], resolution: Resolution
    ) -> OrderBook | None:
        """The balances of the orders the batch's purchases and refunds name, locked, with
        who is one buyer: the same profile, or one merged into the other before or in this
        batch. ``None`` for a batch without purchases or refunds."""
        money = [
            (e, p.id)
            for e, p in zip(events, resolution.profiles, strict=True)
            if isinstance(e, PurchaseEvent | RefundEvent)
        ]
        if not money:
            return None
        balances = await uow.orders.of({e.data.order_id for e, _ in money})
        # The owners of refunded orders placed by another profile, as they are now.
        strangers = {
            placed.profile_id
            for e, buyer in money
            if isinstance(e, RefundEvent)
            and (placed := balances.get(e.data.order_id)) is not None
            and placed.profile_id != buyer
        }
        now_known = await uow.profiles.current_many(strangers) if strangers else {}
        heads = {owner: profile.id for owner, profile in now_known.items()}
        survivors = dict(resolution.merges)

        def head(profile_id: str) -> str:
            profile_id = heads.get(profile_id, profile_id)
            for _ in range(len(survivors) + 1):
                if profile_id not in survivors:
                    break
                profile_id = survivors[profile_id]
            return profile_id

        return OrderBook(balances, self.refund_rules, lambda a, b: head(a) == head(b))

    async def _attribute(self, events: Sequence[AnyEvent]) -> None:
        """After the commit, and for events seen before too: a conversion is kept once."""
        if self.attribution is not None:
            await self.attribution.record(events)

    async def _merge(
        self, uow: UnitOfWork, resolution: Resolution, touched: dict[str, Profile], now: datetime
    ) -> list[Profile]:
        """Fold every profile found to be another buyer's into its survivor, in order.

        The survivor keeps its own segment stays and joins the absorbed profile's other
        stays as they were (no new entry, so no second message to the same person);
        the merge is announced on the changes topic as ``profile_merged``.
        """
        merges = resolution.merges
        if not merges:
            return []
        # The batch's merges at once: their stays read together and folded in order in
        # memory (a survivor absorbed by a later merge passes on what it absorbed).
        stays = await uow.memberships.of({p for merge in merges for p in merge})
        changes: list[MembershipChange] = []
        announced: list[OutgoingRecord] = []
        tombstones: list[Profile] = []
        for absorbed_id, survivor_id in merges:
            absorbed = resolution.loaded[absorbed_id]
            survivor = resolution.loaded[survivor_id]
            kept, gone = stays[survivor_id], stays[absorbed_id]
            joined = merge_stays(kept, gone)
            changes += [
                MembershipChange("entered", segment, survivor_id, entered_at, "")
                for segment, entered_at in joined.items()
                if segment not in kept
            ]
            # what the merge drops: written, never announced (no one left)
            changes += [MembershipChange("exited", s, absorbed_id, now, "") for s in gone]
            stays[survivor_id], stays[absorbed_id] = joined, {}
            absorb(survivor, absorbed)
            merge = ProfileMerged(absorbed_id, survivor_id, now)
            announced.append(
                OutgoingRecord(self.changes_topic, absorbed_id.encode(), encode_merge(merge))
            )
            touched.pop(absorbed_id, None)
            touched[survivor_id] = survivor
            tombstones.append(absorbed)
        await uow.profiles.merge_many(merges)
        await uow.memberships.apply(changes)
        await uow.outbox.add(announced, now)
        return tombstones

    async def fire_timers(self, limit: int = 1000) -> int:
        """Re-evaluate the buyers whose timer is due; return how many there were."""
        await self._load_segments_once()
        async with self.store.unit_of_work() as uow:
            now = self.clock.now()
            due = await uow.timers.due(now, limit)
            if due:
                profiles = await uow.profiles.get_many(due)
                await self._settle(uow, profiles, now, None)
                await uow.profiles.save(profiles.values(), now)
            await uow.commit()
        return len(due)

    async def apply_scores(self, scores: Mapping[str, Scores]) -> int:
        """Set the scoring job's scores (by buyer id) on their buyers in one transaction,
        and move the memberships of the segments that read a score that changed; return
        how many buyers' scores changed. A buyer merged away meanwhile is skipped."""
        await self._load_segments_once()
        async with self.store.unit_of_work() as uow:
            now = self.clock.now()
            loaded = await uow.profiles.get_many(list(scores), lock=True)
            touched = {pid: p for pid, p in loaded.items() if p.merged_into is None}
            changed = {
                pid: apply_scores(profile, scores[pid]) - {"scored_at"}
                for pid, profile in touched.items()
            }
            await self._settle(uow, touched, now, changed)
            await uow.profiles.save(touched.values(), now)
            await uow.commit()
        return sum(1 for fields in changed.values() if fields)

    async def _settle(
        self,
        uow: UnitOfWork,
        profiles: Mapping[str, Profile],
        now: datetime,
        changed: Mapping[str, frozenset[str]] | None,
    ) -> None:
        """Move the buyers' memberships and next timers; the caller saves the profiles."""
        index = self.index
        needed = [p for p in profiles.values() if self._needs_evaluation(index, p, now, changed)]
        if not needed:
            return
        memberships = await uow.memberships.of([p.id for p in needed])
        changes: list[MembershipChange] = []
        for profile in needed:
            fields = None if changed is None else changed[profile.id]
            evaluation = reevaluate(profile, index, memberships[profile.id], now, fields)
            profile.next_timer_at = evaluation.next_timer
            profile.evaluated_at = now
            changes.extend(evaluation.changes)
        await uow.memberships.apply(changes)
        await uow.outbox.add([self._record(c) for c in changes], now)

    def _needs_evaluation(
        self,
        index: SegmentIndex,
        profile: Profile,
        now: datetime,
        changed: Mapping[str, frozenset[str]] | None,
    ) -> bool:
        if changed is None or profile.evaluated_at is None:
            return True
        if profile.next_timer_at is not None and profile.next_timer_at <= now:
            return True
        return index.reads_any(changed[profile.id])

    # --- the segments in force, and the base evaluated against each -----------------

    async def _load_segments_once(self) -> None:
        """No event or timer is evaluated before the stored segments are known."""
        if not self._in_force.segments_loaded:
            await self.refresh_segments()

    async def refresh_segments(self) -> bool:
        """Take the segments in force from the catalogue if the stored ones changed since
        the last look (one cheap query when none did); return whether they changed."""
        if not await self._in_force.refresh_segments():
            return False
        self.index = SegmentIndex(self._in_force.segments)
        self._archived = self._in_force.archived_segments
        self._targets = None
        return True

    def _wanted(self) -> dict[str, tuple[str, Segment]]:
        """Segment key to the fingerprint the base must be evaluated against, and the
        segment to evaluate (an archived one as a rule no one meets)."""
        if self._targets is None:
            targets = {s.key: (rule_fingerprint(s.rule), s) for s in self.index}
            for key in self._archived:
                targets[key] = (_ARCHIVED, Segment(key, key, _NoOne()))
            self._targets = targets
        return self._targets

    async def recompute(self) -> int:
        """One batch of the first segment whose rule the base was not yet evaluated
        against (a new or changed rule, an archived segment); return how many buyers
        were evaluated (0: the base is up to date with every rule)."""
        if self.definitions is None:
            return 0
        states = await self.definitions.recomputes()
        for key, (fingerprint, segment) in self._wanted().items():
            state = states.get(key)
            while state is None or state.fingerprint != fingerprint or state.finished_at is None:
                if state is None or state.fingerprint != fingerprint:
                    state = await self._start(segment, fingerprint)
                done, state = await self._recompute_batch(segment, state)
                if done:
                    return done
                if state is None:  # started again elsewhere for another rule
                    break
        return 0

    async def restart_recompute(self, key: str) -> Recompute:
        """Evaluate the base against segment ``key`` again, from the start (``nudge
        segments recompute``); :class:`KeyError` for a segment not in force nor archived."""
        assert self.definitions is not None, "recomputing needs the definitions"
        await self.refresh_segments()
        fingerprint, segment = self._wanted()[key]
        return await self._start(segment, fingerprint)

    async def recompute_batch(self, key: str, state: Recompute) -> Recompute | None:
        """The next batch of ``key``'s recompute from ``state``; the state after it, or
        ``None`` when the recompute was started again elsewhere for another rule."""
        _fingerprint, segment = self._wanted()[key]
        _done, after = await self._recompute_batch(segment, state)
        return after

    async def _start(self, segment: Segment, fingerprint: str) -> Recompute:
        assert self.definitions is not None
        total = await self.definitions.count_profiles()
        log.info("segment recompute started", segment=segment.key, buyers=total)
        self._logged_at[segment.key] = time.monotonic()
        return await self.definitions.start_recompute(segment.key, fingerprint, self.clock.now())

    async def _recompute_batch(
        self, segment: Segment, state: Recompute
    ) -> tuple[int, Recompute | None]:
        assert self.definitions is not None
        batch = await self.definitions.buyers.page(after=state.cursor, limit=self.recompute_size)
        index = self.index
        segments = index if segment.key in {s.key for s in index} else [*index, segment]
        changes: list[MembershipChange] = []
        async with self.store.unit_of_work() as uow:
            now = self.clock.now()
            if batch:
                profiles = await uow.profiles.get_many([p.id for p in batch], lock=True)
                live = [p for p in profiles.values() if p.merged_into is None]
                memberships = await uow.memberships.of([p.id for p in live])
                for profile in live:
                    evaluation = reevaluate(
                        profile, segments, memberships[profile.id], now, only={segment.key}
                    )
                    profile.next_timer_at = evaluation.next_timer
                    profile.evaluated_at = now
                    changes.extend(evaluation.changes)
                await uow.memberships.apply(changes)
                await uow.outbox.add([self._record(c) for c in changes], now)
                await uow.profiles.save(live, now)
            await uow.commit()
        finished = len(batch) < self.recompute_size
        after = await self.definitions.advance_recompute(
            segment.key,
            state.fingerprint,
            cursor=batch[-1].id if batch else state.cursor or "",
            evaluated=state.evaluated + len(batch),
            finished_at=now if finished else None,
        )
        self._log_progress(segment.key, after, len(changes), finished)
        return len(batch), after

    def _log_progress(
        self, key: str, state: Recompute | None, changes: int, finished: bool
    ) -> None:
        if state is None:
            return
        if finished:
            log.info("segment recompute finished", segment=key, evaluated=state.evaluated)
            self._logged_at.pop(key, None)
            return
        moment = time.monotonic()
        if moment - self._logged_at.get(key, 0.0) >= _PROGRESS_SECONDS:
            self._logged_at[key] = moment
            log.info(
                "segment recompute progress",
                segment=key,
                evaluated=state.evaluated,
                changes_in_batch=changes,
            )

    def _record(self, change: MembershipChange) -> OutgoingRecord:
        return OutgoingRecord(self.changes_topic, change.profile_id.encode(), encode_change(change))


def _taken(orders: OrderBook, event: AnyEvent, profile_id: str) -> list[str]:
    """``event`` taken into its order's balance; the note it leaves, if any. A refund the
    order does not allow is a poison record: nothing of its batch is kept."""
    try:
        note = orders.take(event, profile_id)
    except RefundRefused as exc:
        raise PoisonRecord(f"refund refused: {exc}") from exc
    return [] if note is None else [note]


def _parse(record: Record) -> AnyEvent:
    try:
        return read_published_event(record.value)
    except ValidationError as exc:
        raise PoisonRecord(f"not a valid event: {exc.error_count()} errors") from exc


async def relay_outbox(store: Store, publisher: Publisher, clock: Clock, limit: int = 2000) -> int:
    """Publish the oldest unpublished outbox rows, in order; return how many.

    One publish for the whole claim (runs of one topic, in order): every record is on
    its way before any acknowledgement is awaited. Marked published only once all are
    acknowledged; a crash in between publishes them again, and consumers dedupe."""
    async with store.unit_of_work() as uow:
        rows = await uow.outbox.claim(limit)
        if not rows:
            return 0
        runs: list[tuple[str, list[tuple[bytes | None, bytes]]]] = []
        for row in rows:
            if not runs or runs[-1][0] != row.topic:
                runs.append((row.topic, []))
            runs[-1][1].append((row.key, row.value))
        await publisher.publish_many(runs)
        await uow.outbox.mark_published([r.id for r in rows], clock.now())
        await uow.commit()
    return len(rows)


def _placed(events: Sequence[AnyEvent], buyers: Sequence[Profile]) -> list[PlacedOrder]:
    """The batch's purchases for the order history, each with the buyer it resolved to
    (a merge later in the batch moves them on to the survivor)."""
    return [
        PlacedOrder(e.data.order_id, buyer.id, e.occurred_at, e.data.total, e.data.currency)
        for e, buyer in zip(events, buyers, strict=True)
        if isinstance(e, PurchaseEvent)
    ]
