"""``nudge dlq``: look at dead letters, and send chosen ones back to where they failed.

A consumer loop (:mod:`shared.consuming`) that cannot apply a record, whatever the
retries, publishes it to ``<topic>.dlq`` with headers ``error``, ``source.topic``,
``source.partition`` and ``source.offset``. Once the cause is fixed (a new release,
a corrected segment), :func:`replay_dead_letters` publishes the chosen dead letters
to their source topic again, with their key, so they reach the same partition as
the buyer's other records. The segmenter dedupes events by ``event_id`` and the
dispatcher dedupes messages by key, so a record applied twice changes nothing.

What was replayed is recorded on the bus itself, in ``<topic>.dlq.replayed``: one
record per dead letter sent back, written after it was republished. A dead letter
recorded there is not sent again (a crash between the two sends it once more,
which the dedupe absorbs).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from shared.domain.masking import mask_email, mask_identifier, mask_phone, mask_text
from shared.ports.bus import Bus, Record
from shared.settings import Settings

__all__ = [
    "DeadLetter",
    "DeadLetters",
    "ReplayOutcome",
    "dead_letter_topic",
    "list_dead_letters",
    "masked_key",
    "replay_dead_letters",
    "replayed_topic",
]

Position = tuple[int, int]
"""A dead letter's place in the dead-letter topic: ``(partition, offset)``."""


def dead_letter_topic(settings: Settings, topic: str) -> str:
    """``events`` → ``nudge.events.dlq``."""
    return f"{settings.topic(topic)}.dlq"


def replayed_topic(settings: Settings, topic: str) -> str:
    """Where replayed dead letters of ``topic`` are recorded: ``nudge.events.dlq.replayed``."""
    return f"{dead_letter_topic(settings, topic)}.replayed"


@dataclass(frozen=True)
class DeadLetter:
    record: Record
    """The dead letter as it sits in the dead-letter topic."""
    error: str
    """Why it failed, identifiers masked."""
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    replayed_at: datetime | None

    @property
    def position(self) -> Position:
        return (self.record.partition, self.record.offset)

    @property
    def failed_at(self) -> datetime | None:
        return self.record.timestamp


def _dead_letter(record: Record, replayed: Mapping[Position, datetime]) -> DeadLetter:
    headers = {name: value.decode("utf-8", "replace") for name, value in record.headers}

    def number(name: str) -> int | None:
        value = headers.get(name, "")
        return int(value) if value.isdigit() else None

    return DeadLetter(
        record=record,
        error=mask_text(headers.get("error", "(no error recorded)")),
        source_topic=headers.get("source.topic") or record.topic.removesuffix(".dlq"),
        source_partition=number("source.partition"),
        source_offset=number("source.offset"),
        replayed_at=replayed.get((record.partition, record.offset)),
    )


def masked_key(key: bytes | None) -> str:
    """A record key as ``kind:value`` with the value masked (``email:a***@shop.ru``)."""
    if key is None:
        return ""
    text = key.decode("utf-8", "replace")
    kind, separator, value = text.partition(":")
    if not separator:
        return mask_identifier(text)
    masks = {"email": mask_email, "phone": mask_phone}
    return f"{kind}:{masks.get(kind, mask_identifier)(value)}"


async def _replayed(bus: Bus, settings: Settings, topic: str) -> dict[Position, datetime]:
    found: dict[Position, datetime] = {}
    async for record in bus.read(replayed_topic(settings, topic)):
        entry = orjson.loads(record.value)
        found[(entry["partition"], entry["offset"])] = datetime.fromisoformat(entry["at"])
    return found


@dataclass
class DeadLetters:
    """A page of dead letters, and how many there are in all."""

    shown: list[DeadLetter]
    total: int
    waiting: int
    """Dead letters not replayed yet."""


async def list_dead_letters(
    bus: Bus,
    settings: Settings,
    topic: str = "events",
    *,
    limit: int = 50,
    everything: bool = False,
) -> DeadLetters:
    """The first ``limit`` dead letters of ``topic`` still waiting for a replay (or of
    every one, replayed too, with ``everything``), oldest first in each partition."""
    await bus.ensure_topics([dead_letter_topic(settings, topic), replayed_topic(settings, topic)])
    replayed = await _replayed(bus, settings, topic)
    page = DeadLetters(shown=[], total=0, waiting=0)
    async with aclosing(bus.read(dead_letter_topic(settings, topic))) as records:
        async for record in records:
            letter = _dead_letter(record, replayed)
            page.total += 1
            page.waiting += letter.replayed_at is None
            if (everything or letter.replayed_at is None) and len(page.shown) < limit:
                page.shown.append(letter)
    return page


@dataclass
class ReplayOutcome:
    replayed: list[DeadLetter]
    already: list[Position]
    """Chosen dead letters that had been replayed before: not sent again."""
    missing: list[Position]
    """Chosen positions that hold no dead letter."""


async def replay_dead_letters(
    bus: Bus,
    settings: Settings,
    topic: str = "events",
    *,
    chosen: Collection[Position] | None = None,
    now: datetime | None = None,
) -> ReplayOutcome:
    """Publish the chosen dead letters (every waiting one when ``chosen`` is ``None``) to
    their source topic again, and record them as replayed."""
    dlq, ledger = dead_letter_topic(settings, topic), replayed_topic(settings, topic)
    await bus.ensure_topics([dlq, ledger])
    replayed = await _replayed(bus, settings, topic)
    wanted = None if chosen is None else set(chosen)
    outcome = ReplayOutcome(replayed=[], already=[], missing=[])
    found: set[Position] = set()
    publisher = bus.publisher()
    try:
        async with aclosing(bus.read(dlq)) as records:
            async for record in records:
                letter = _dead_letter(record, replayed)
                if wanted is not None and letter.position not in wanted:
                    continue
                found.add(letter.position)
                if letter.replayed_at is not None:
                    if wanted is not None:
                        outcome.already.append(letter.position)
                    continue
                origin = f"{dlq}/{record.partition}/{record.offset}"
                await publisher.publish(
                    letter.source_topic,
                    [(record.key, record.value)],
                    [("dlq.replayed_from", origin.encode())],
                )
                at = (now or datetime.now(UTC)).isoformat()
                await publisher.publish(
                    ledger,
                    [
                        (
                            f"{record.partition}:{record.offset}".encode(),
                            orjson.dumps(
                                {"partition": record.partition, "offset": record.offset, "at": at}
                            ),
                        )
                    ],
                )
                outcome.replayed.append(letter)
    finally:
        await publisher.close()
    outcome.missing = sorted((wanted or set()) - found)
    return outcome
