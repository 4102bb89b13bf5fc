"""What a batch of decisions reads and writes, kept in memory from one read to one write.

A batch of decisions (a batch of segment changes, an event's campaigns, a woken send)
reads what it needs for all its buyers at once (:meth:`Ledger.read`: the message rows
of its keys, the buyers' recent messages and waiting sends) and writes once, at the end
(:meth:`Ledger.write`: the new message rows in one statement, the scheduled-send rows
in one), in the batch's unit of work. In between, each decision sees what the ones
before it in the batch did, as it would see a committed row: a message sent or
scheduled counts for the caps, priority and sunset of the buyer's next decision, and a
key decided once is found by the next trigger that gives it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import cast

from shared.domain.decisions import ScheduledSend, SentMessage
from shared.domain.events import Channel
from shared.ports.store import (
    NOT_SENT,
    MessageOutcome,
    MessageRecord,
    ScheduledRecord,
    UnitOfWork,
)

__all__ = ["Ledger"]


@dataclass
class Ledger:
    uow: UnitOfWork
    """The batch's unit of work: read from, written to, committed by the caller."""
    _messages: dict[str, MessageRecord | None] = field(default_factory=dict)
    """Each key read (``None``: no row), as the batch left it."""
    _new: dict[str, MessageOutcome | None] = field(default_factory=dict)
    """The keys begun in the batch, with their last outcome."""
    _finished: list[tuple[str, MessageOutcome]] = field(default_factory=list)
    """Outcomes given to rows that existed before the batch, in order."""
    _changed: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    """Per buyer, the keys of the messages the batch began or finished."""
    _sent: dict[str, dict[str, SentMessage]] = field(default_factory=dict)
    """Per buyer read, their recent messages as read."""
    _waiting: dict[str, dict[str, ScheduledSend]] = field(default_factory=dict)
    """Per buyer read, their waiting sends, as read and as scheduled since."""
    _scheduled: dict[str, ScheduledRecord] = field(default_factory=dict)

    async def read(
        self, buyers: Collection[str], keys: Collection[str], *, since: datetime, at_least: int
    ) -> None:
        """Read the message rows of ``keys`` and, for ``buyers``, their messages handed to a
        provider (:meth:`~shared.ports.store.Messages.recent` from ``since``, ``at_least``)
        and their waiting sends: one query each, for what was not read before."""
        unread = [k for k in keys if k not in self._messages]
        if unread:
            found = await self.uow.messages.get_many(unread)
            self._messages.update({k: found.get(k) for k in unread})
        strangers = [b for b in buyers if b not in self._sent]
        if strangers:
            sent = await self.uow.messages.recent(strangers, since, at_least=at_least)
            waiting = await self.uow.schedule.pending(strangers)
            for buyer in strangers:
                self._sent[buyer] = {m.key: m for m in sent[buyer]}
                self._waiting[buyer] = {s.key: s for s in waiting[buyer]}

    def know(self, message: MessageRecord) -> None:
        """Keep ``message``'s row, read by the caller, as this batch's to decide on."""
        self._messages.setdefault(message.key, message)

    def message(self, key: str) -> MessageRecord | None:
        """The message row of ``key`` as the batch left it; ``None`` if there is none. The
        key must have been read."""
        return self._messages[key]

    def begin(self, record: MessageRecord) -> bool:
        """Begin the message's row; ``False`` when its key exists already."""
        if self.message(record.key) is not None:
            return False
        self._messages[record.key] = record
        self._new[record.key] = None
        self._changed[record.profile_id].add(record.key)
        return True

    def finish(self, key: str, outcome: MessageOutcome) -> None:
        """Give the message ``outcome`` (as :meth:`~shared.ports.store.Messages.finish`)."""
        record = self.message(key)
        assert record is not None, f"no message {key} to finish"
        self._messages[key] = replace(record, **outcome.changes())
        self._changed[record.profile_id].add(key)
        if key in self._new:
            self._new[key] = outcome
        else:
            self._finished.append((key, outcome))

    def schedule(self, records: Sequence[ScheduledRecord]) -> None:
        """Schedule ``records`` (as :meth:`~shared.ports.store.Schedule.add`)."""
        for record in records:
            self._scheduled[record.send.key] = record
            waiting = self._waiting.get(record.send.profile_id)
            if waiting is not None:
                waiting[record.send.key] = record.send

    def recent(self, buyer: str, since: datetime, *, at_least: int = 0) -> list[SentMessage]:
        """The buyer's messages handed to a provider since ``since``, and at least the last
        ``at_least`` (:meth:`~shared.ports.store.Messages.recent`), the batch's included.
        ``since`` and ``at_least`` no earlier and no more than those read with."""
        counted = dict(self._sent[buyer])
        for key in self._changed.get(buyer, ()):
            record = self._messages[key]
            assert record is not None
            if record.sent_at is not None and record.status not in NOT_SENT:
                channel = cast(Channel, record.channel)
                counted[key] = SentMessage(
                    record.campaign, record.priority, record.sent_at, channel, key
                )
            else:
                counted.pop(key, None)
        latest_first = sorted(counted.values(), key=lambda m: (m.at, m.key), reverse=True)
        kept = [m for n, m in enumerate(latest_first) if m.at >= since or n < at_least]
        return kept[::-1]

    def pending(self, buyer: str) -> list[ScheduledSend]:
        """The buyer's waiting sends, earliest first, the batch's included."""
        return sorted(self._waiting[buyer].values(), key=lambda s: (s.due_at, s.key))

    async def write(self, at: datetime) -> None:
        """Write what the batch did: its new message rows in one statement, the outcomes of
        rows that existed (a woken send's) one each, its scheduled sends in one."""
        if self._new:
            begun = [(self._row(key), outcome) for key, outcome in self._new.items()]
            await self.uow.messages.write(begun)
        for key, outcome in self._finished:
            await self.uow.messages.finish(key, outcome)
        if self._scheduled:
            await self.uow.schedule.add(list(self._scheduled.values()), at)
        self._new, self._finished, self._scheduled = {}, [], {}

    def _row(self, key: str) -> MessageRecord:
        """The row of ``key``, begun in the batch, as the batch left it."""
        record = self._messages[key]
        assert record is not None
        return record
