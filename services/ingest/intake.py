"""The path every event takes through ingest, whoever sent it: a shop's backend
(``POST /v1/events``), a provider's delivery webhook, a buyer's unsubscribe click.

The body is read within its size limit and parsed as JSON; anything that looks
like a card number is refused before any other check; the validated events
go to the events topic once per event id, keyed by the buyer's strongest
identifier, and the caller answers only after the broker acknowledged them all
(``broker-unavailable``, 503, when it did not in time).

Before they are published, the request's event ids are claimed in the index of
accepted ids (:class:`~shared.ports.event_ids.EventIds`) with the digest of each
event's content (:mod:`shared.domain.event_content`): an id that comes again with
other content, in the request or from any earlier one, is ``event-id-conflict``
(409) and nothing of the request is published. An id that comes again with the same
content is published again: after a 503 the claim stays, and the retry must reach
the broker (the segmenter applies an id once). A store-bound key's ids are claimed in
its event's store (the event's ``tenant``), so one store never sees nor blocks
another's; a digest of another deployment's version is the same content.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.http.problems import Problem
from shared.domain.card_numbers import MAX_CHECKS, scan_for_card_numbers
from shared.domain.event_content import content_digest
from shared.domain.events import AnyEvent
from shared.domain.money import ShopCurrency
from shared.errors import BusUnavailable, StoreUnavailable
from shared.logging import get_logger
from shared.ports.bus import Publisher
from shared.ports.event_ids import EventIds, EventKey

__all__ = [
    "OFF_LOOP_BYTES",
    "EventPublisher",
    "IngestMetrics",
    "Prepared",
    "refuse_card_numbers",
]

OFF_LOOP_BYTES = 64 * 1024
"""A body larger than this is read for card numbers, validated and prepared for
publishing (its events' JSON and content digests) in a worker thread,
so that however it is made, it never holds up the event loop (``/healthz``, other
requests) for longer than one thread switch."""

log = get_logger(__name__)


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.accepted = Counter(
            "nudge_events_accepted",
            "Events accepted and acknowledged by the broker",
            registry=self.registry,
        )
        self.refused = Counter(
            "nudge_events_refused",
            "Requests refused, by problem kind",
            ["reason"],
            registry=self.registry,
        )
        self.produce_seconds = Histogram(
            "nudge_produce_seconds",
            "Time for the broker to acknowledge one request's events",
            registry=self.registry,
        )


def refuse_card_numbers(items: list[Any], prefix: str) -> None:
    """A ``card-number`` :class:`Problem` naming each field that holds one, never its digits.

    ``prefix`` is the pointer of each item, ``{}`` standing for its index (``/events/{}``),
    or ``""`` for a lone item. The items are read in one pass over their JSON text and
    walked for pointers only when that found a card number
    (:func:`~shared.domain.card_numbers.scan_for_card_numbers`). A key holding one is
    named by the pointer of its object, never by a pointer through the key.
    """
    scan = scan_for_card_numbers(items)
    if scan.clear:
        return
    errors: list[dict[str, Any]] = []
    for found in scan.fields:
        index_text, _, rest = found.pointer[1:].partition("/")
        index = int(index_text)
        entry: dict[str, Any] = {
            "pointer": prefix.format(index) + (f"/{rest}" if rest else ""),
            "detail": (
                "a key of this object looks like a card number"
                if found.in_key
                else "looks like a card number"
            )
            + "; card numbers are never accepted",
        }
        errors.append({"index": index, **entry} if prefix else entry)
    if scan.unread:
        errors.append(
            {
                "pointer": "",
                "detail": f"more than {MAX_CHECKS} numbers shaped like card numbers; "
                "not read further, send fewer at once",
            }
        )
    log.warning("card number refused", pointers=[e["pointer"] for e in errors])
    bad = len({e["index"] for e in errors if "index" in e}) or 1
    raise Problem(
        "card-number",
        f"{bad} of {len(items)} events carry what looks like a card number; none was accepted"
        if not scan.unread
        else f"the {len(items)} events carry too many numbers shaped like card numbers to "
        "read; none was accepted",
        errors,
    )


@dataclass(frozen=True)
class Prepared:
    """A request's events as :meth:`EventPublisher.prepare` made them."""

    events: Sequence[AnyEvent]
    pointer: str
    unique: Mapping[EventKey, tuple[AnyEvent, bytes, bytes]]
    """Per id: the first event of it, the JSON published for it, its content digest."""


@dataclass
class EventPublisher:
    """Publishes validated events to the events topic and waits for the broker's acks,
    each event id claimed in ``event_ids`` first."""

    publisher: Publisher
    topic: str
    metrics: IngestMetrics
    event_ids: EventIds
    digest_version: bytes
    """The version of this deployment's content digests
    (:func:`~shared.domain.event_content.digest_version`)."""
    currency: ShopCurrency | None = None
    """With it, a purchase or refund in another currency is published converted into the
    shop's (its rate checked before: :meth:`~shared.domain.money.ShopCurrency.refusal`); its
    content digest is of the event as sent, so a retry after the rate changed is still a
    duplicate."""

    def prepare(
        self,
        events: Sequence[AnyEvent],
        *,
        pointer: str = "/events/{}/event_id",
        store_bound: bool = False,
    ) -> Prepared:
        """``events`` ready to claim and publish: each as the JSON published for it, with
        its content digest, once per id. Work for the CPU alone, so that a large request
        does it in the thread it was validated in.

        ``event-id-conflict`` when an id comes twice with two contents: ``pointer`` is
        where each such event's id is in the request, ``{}`` standing for its index
        (``/events/{}/event_id``), or without ``{}`` for a lone event (``/event_id``).
        ``store_bound``: the events come from a key bound to stores, so each event's id
        is its store's (:attr:`~shared.domain.events.AnyEvent.tenant`), never another
        tenant's.
        """
        if store_bound:
            events = [e.model_copy(update={"tenant": e.store_id}) for e in events]
        unique: dict[EventKey, tuple[AnyEvent, bytes, bytes]] = {}
        inside: set[EventKey] = set()
        for event in events:
            value = event.model_dump_json(exclude_none=True).encode()
            digest = content_digest(value, version=self.digest_version)
            converted = self.currency.converted(event) if self.currency is not None else event
            if converted is not event:
                value = converted.model_dump_json(exclude_none=True).encode()
            first = unique.setdefault(_key(event), (event, value, digest))
            if first[2] != digest:
                inside.add(_key(event))
        if inside:
            raise _conflict(events, inside, pointer, "another event of this request has")
        return Prepared(events, pointer, unique)

    async def publish(
        self,
        events: Sequence[AnyEvent] | Prepared,
        *,
        pointer: str = "/events/{}/event_id",
        store_bound: bool = False,
    ) -> tuple[int, int]:
        """Publish each event id once; return ``(accepted, duplicates)`` once acknowledged.

        ``events`` as they are (see :meth:`prepare` for ``pointer`` and ``store_bound``),
        or as :meth:`prepare` made them. ``event-id-conflict`` when an id comes with two
        contents, or with another content than it was accepted with.
        """
        if not isinstance(events, Prepared):
            events = self.prepare(events, pointer=pointer, store_bound=store_bound)
        unique = events.unique
        conflicts = await self._claim({key: d for key, (_, _, d) in unique.items()})
        if conflicts:
            raise _conflict(
                events.events, conflicts, events.pointer, "an event accepted before had"
            )
        records = [(e.key.encode(), value) for e, value, _ in unique.values()]
        started = time.perf_counter()
        try:
            await self.publisher.publish(self.topic, records)
        except BusUnavailable as exc:
            log.warning("broker unavailable", error=str(exc), events=len(records))
            raise Problem(
                "broker-unavailable",
                "the event broker did not acknowledge in time",
                headers={"Retry-After": "5"},
            ) from None
        self.metrics.produce_seconds.observe(time.perf_counter() - started)
        self.metrics.accepted.inc(len(records))
        return len(records), len(events.events) - len(records)

    async def _claim(self, digests: dict[EventKey, bytes]) -> set[EventKey]:
        try:
            return await self.event_ids.claim(digests)
        except StoreUnavailable as exc:
            log.warning("event ids unavailable", error=str(exc), events=len(digests))
            raise Problem(
                "database-unavailable",
                "the database of accepted event ids did not answer; nothing was accepted",
                headers={"Retry-After": "5"},
            ) from None


def _key(event: AnyEvent) -> EventKey:
    """Where ``event``'s id is claimed: in its tenant (``""`` for the shop-wide keys)."""
    return (event.tenant or "", event.event_id)


def _conflict(
    events: Sequence[AnyEvent], conflicting: set[EventKey], pointer: str, who: str
) -> Problem:
    """``event-id-conflict`` naming every event whose id is in ``conflicting`` (never the id:
    the pointer finds it in the request)."""
    detail = f"{who} this event_id with other content; an event id names one event"
    errors: list[dict[str, Any]] = []
    for index, event in enumerate(events):
        if _key(event) in conflicting:
            entry: dict[str, Any] = {"pointer": pointer.format(index), "detail": detail}
            errors.append({"index": index, **entry} if "{}" in pointer else entry)
    log.warning("event id conflict", pointers=[e["pointer"] for e in errors])
    return Problem(
        "event-id-conflict",
        f"{len(errors)} of {len(events)} events reuse an event id with other content; "
        "none was accepted",
        errors,
    )
