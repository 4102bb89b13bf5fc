"""``nudge replay``: a shop's transactions file replayed as purchase events.

The file is read whole first (:mod:`shared.domain.transactions`): one purchase per
order, event ids from the file's content. A file with a bad row publishes nothing
unless bad rows are to be skipped (then the orders they belong to are left out).

- **Embedded** (:func:`replay_embedded`): the whole pipeline in this process
  (:class:`~services.tools.embedded.Pipeline`) on the database given, with a simulated
  clock that walks through the file's days: each day's purchases are published at
  the end of that day and every loop runs until idle, so time-based segments flip
  on the days they would have; then day by day up to ``as_of``.
- **Production** (:func:`replay_production`): the purchases go to the events topic
  through ingest's own publisher (keyed by ``id:<customer_id>``, as ingest keys
  them); the running segmenter applies them, on its own (system) clock.

Replaying a file again publishes the same event ids, and the segmenter skips them:
nothing changes. An embedded replay claims its event ids first in the database's index
of accepted ids, as ingest does: a file whose order comes again with other content
(the same order id, another total) is refused, not published to be skipped. A
production replay does the same in the index of the configured database
(``NUDGE_DATABASE_URL``, the one ingest claims in), and is refused without one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import groupby
from pathlib import Path

from services.bootstrap import TOPICS, bootstrap, build_bus, open_ingest_database, simulated_clock
from services.http.problems import Problem
from services.ingest.intake import EventPublisher, IngestMetrics
from services.tools.embedded import Pipeline
from shared.domain.event_content import digest_version
from shared.domain.events import PurchaseEvent
from shared.domain.transactions import BadRow, Transactions, read_transactions
from shared.errors import BusUnavailable
from shared.ports.clock import SimulatedTime
from shared.settings import Settings

__all__ = [
    "PUBLISH_BATCH",
    "ReplayRefused",
    "ReplaySummary",
    "read_file",
    "replay",
    "replay_embedded",
    "replay_production",
]

PUBLISH_BATCH = 1000
"""Events per publish call: one broker round trip each, as one full ingest request."""

Progress = Callable[[int], None]
"""Told how many more events were published."""


class ReplayRefused(Exception):
    """The file, or the request, cannot be replayed; the message says why."""

    def __init__(self, message: str, bad_rows: Sequence[BadRow] = ()) -> None:
        super().__init__(message)
        self.bad_rows = list(bad_rows)


@dataclass
class ReplaySummary:
    """What a replay read and did, for the closing summary."""

    rows: int
    orders: int
    buyers: int
    repeated_rows: int
    bad_rows: list[BadRow]
    skipped_orders: int
    first_at: datetime | None
    last_at: datetime | None
    published: int = 0
    ran_until: datetime | None = None
    """Embedded: where the simulated clock stopped (due timers fired up to there)."""
    seconds: float = 0.0
    ignored_columns: tuple[str, ...] = field(default=())
    scored_at: datetime | None = None
    """Embedded with ``--as-of``: the moment the base was scored at, the end of the run."""
    scoring_models: str = ""
    scoring_notes: tuple[str, ...] = field(default=())

    def report(self, *, embedded: bool) -> list[tuple[str, object]]:
        """What the closing summary shows, line by line: what, and how much."""
        span = (
            f"{self.first_at:%Y-%m-%d %H:%M} .. {self.last_at:%Y-%m-%d %H:%M} UTC"
            if self.first_at and self.last_at
            else "none"
        )
        lines: list[tuple[str, object]] = [
            ("rows read", self.rows),
            ("orders", self.orders),
            ("buyers", self.buyers),
            ("events published", self.published),
            ("rows repeating an earlier row of their order (kept)", self.repeated_rows),
            ("bad rows (skipped)", len(self.bad_rows)),
            ("orders skipped for a bad row", self.skipped_orders),
            ("time span", span),
        ]
        if embedded and self.ran_until is not None:
            lines.append(("timers run up to", f"{self.ran_until:%Y-%m-%d %H:%M} UTC"))
        if embedded and self.scored_at is not None:
            lines.append(("base scored as of", f"{self.scored_at:%Y-%m-%d %H:%M} UTC"))
            lines.append(("scoring models", self.scoring_models))
            lines.extend(("scoring note", note) for note in self.scoring_notes)
        if self.ignored_columns:
            lines.append(("columns ignored", ", ".join(self.ignored_columns)))
        lines.append(("seconds", f"{self.seconds:.1f}"))
        return lines


def read_file(
    path: Path,
    *,
    timezone: tzinfo = UTC,
    currency: str = "RUB",
    skip_bad: bool = False,
    on_row: Callable[[], None] | None = None,
) -> tuple[Transactions, ReplaySummary]:
    """Read ``path`` (UTF-8, a BOM allowed); refuse it when a row is bad, unless ``skip_bad``."""
    with path.open(encoding="utf-8-sig", newline="") as lines:
        found = read_transactions(lines, timezone=timezone, currency=currency, on_row=on_row)
    if found.bad_rows and not skip_bad:
        raise ReplayRefused(
            f"{len(found.bad_rows)} bad rows: nothing was published "
            "(fix them, or pass --skip-bad to replay the other orders)",
            found.bad_rows,
        )
    summary = ReplaySummary(
        rows=found.rows,
        orders=len(found.orders),
        buyers=found.buyers,
        repeated_rows=found.repeated_rows,
        bad_rows=found.bad_rows,
        skipped_orders=found.skipped_orders,
        first_at=found.first_at,
        last_at=found.last_at,
        ignored_columns=found.ignored_columns,
    )
    return found, summary


async def _publish(
    events_out: EventPublisher, events: Sequence[PurchaseEvent], progress: Progress
) -> int:
    published = 0
    for start in range(0, len(events), PUBLISH_BATCH):
        chunk = events[start : start + PUBLISH_BATCH]
        try:
            accepted, _ = await events_out.publish(chunk)
        except Problem as problem:
            if problem.kind == "event-id-conflict":
                raise ReplayRefused(
                    f"after {published} of {len(events)} events: orders of the file were "
                    "published before with other content (an order's event id is made from "
                    "its order id); nothing more was published"
                ) from None
            raise ReplayRefused(
                f"the {'database' if problem.kind == 'database-unavailable' else 'broker'} "
                f"did not answer in time after {published} of {len(events)} events; replay "
                "the file again: what was published is skipped"
            ) from None
        published += accepted
        progress(accepted)
    return published


def _digest_version(settings: Settings) -> bytes:
    """The version of a replay's content digests: a file's purchases carry no bank card
    token, so no token key goes into it (nor is one made under the data dir)."""
    return digest_version(default_region=settings.default_region, token_key=None)


async def replay(
    settings: Settings,
    found: Transactions,
    summary: ReplaySummary,
    progress: Progress,
    *,
    embedded: bool,
    as_of: datetime | None = None,
) -> ReplaySummary:
    """:func:`replay_embedded` (up to ``as_of``), or :func:`replay_production`; refused
    before anything is published when the file's currency is not the shop's and has no
    rate to it (the amounts are converted, as at ingest, when it has)."""
    refused = settings.shop_currency.refusal(found.events[0]) if found.events else None
    if refused is not None:
        raise ReplayRefused(f"--currency: {refused[1]}; nothing was published")
    if embedded:
        return await replay_embedded(settings, found, summary, progress, as_of=as_of)
    return await replay_production(settings, found, summary, progress)


async def replay_production(
    settings: Settings, found: Transactions, summary: ReplaySummary, progress: Progress
) -> ReplaySummary:
    """Publish the purchases to the events topic; the running segmenter applies them."""
    started = time.perf_counter()
    try:
        database = open_ingest_database(settings)
    except ValueError as exc:
        raise ReplayRefused(str(exc)) from None
    bus = build_bus(settings)
    publisher = bus.publisher()
    try:
        await bus.ensure_topics([settings.topic(t) for t in TOPICS])
        events_out = EventPublisher(
            publisher,
            settings.topic("events"),
            IngestMetrics(),
            database.event_ids,
            _digest_version(settings),
            settings.shop_currency,
        )
        summary.published = await _publish(events_out, found.events, progress)
    except BusUnavailable as exc:
        raise ReplayRefused(f"the broker is unreachable: {exc}") from None
    finally:
        await publisher.close()
        await bus.close()
        await database.close()
    summary.seconds = time.perf_counter() - started
    return summary


async def replay_embedded(
    settings: Settings,
    found: Transactions,
    summary: ReplaySummary,
    progress: Progress,
    *,
    as_of: datetime | None = None,
) -> ReplaySummary:
    """Run the pipeline in this process through the file's days, then up to ``as_of``."""
    started = time.perf_counter()
    if as_of is not None and summary.last_at is not None and as_of < summary.last_at:
        raise ReplayRefused(
            f"--as-of {as_of.isoformat()} is before the file's last purchase "
            f"({summary.last_at.isoformat()})"
        )
    first_day = _day(summary.first_at or as_of or datetime.now(UTC))
    clock = simulated_clock(first_day)
    runtime = await bootstrap(settings, clock=clock)
    try:
        async with Pipeline(runtime) as pipeline:
            publisher = runtime.bus.publisher()
            events_out = EventPublisher(
                publisher,
                settings.topic("events"),
                IngestMetrics(),
                runtime.event_ids,
                _digest_version(settings),
                settings.shop_currency,
            )
            try:
                for day, todays in groupby(found.events, key=lambda e: _day(e.occurred_at)):
                    await _run_days(pipeline, clock, until=day)
                    clock.set(day + timedelta(days=1))
                    summary.published += await _publish(events_out, list(todays), progress)
                    await pipeline.settle()
                if as_of is not None:
                    await _run_days(pipeline, clock, until=as_of)
                    clock.set(max(as_of, clock.now()))
                    await pipeline.settle()
                    # The history scored as it stood at as_of, not at the wall clock's.
                    scored = await pipeline.segmenter.score(as_of=as_of)
                    await pipeline.settle()
                    if scored is not None:
                        summary.scored_at = scored.scored_at
                        summary.scoring_models = (
                            f"{scored.models.purchase_model}, {scored.models.spend_model}"
                            if scored.models
                            else "none (no orders)"
                        )
                        summary.scoring_notes = scored.notes
            finally:
                await publisher.close()
        summary.ran_until = clock.now()
    finally:
        await runtime.close()
    summary.seconds = time.perf_counter() - started
    return summary


async def _run_days(pipeline: Pipeline, clock: SimulatedTime, *, until: datetime) -> None:
    """Move the clock a day at a time up to ``until``, every loop run until idle each day:
    timers fire on the day they fall due, not all at once at the end."""
    while clock.now() + timedelta(days=1) <= until:
        clock.advance(timedelta(days=1))
        await pipeline.settle()


def _day(moment: datetime) -> datetime:
    """Midnight (UTC) of the day ``moment`` falls on."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
