"""Segments that marketers store, through the embedded pipeline: buyers enter them like any
built-in, a changed rule is applied to the whole base once, in batches, and an event is
evaluated only against the segments that read what it changed."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.segmenter.handlers import Segmenter
from services.tools.embedded import Pipeline
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.engine import open_store
from shared.codec import decode_change
from shared.domain.profile import Profile
from shared.domain.rules import Condition
from shared.domain.segments import MembershipChange, Segment, SegmentIndex
from tests.conftest import T0
from tests.e2e.stacks import purchase


@pytest.fixture
def definitions(pipeline: Pipeline, clock: SimulatedClock) -> SqlDefinitions:
    """The pipeline's definitions (its engine is closed with the runtime)."""
    return SqlDefinitions(pipeline.runtime.store.engine, clock=clock)


def changes_of(pipeline: Pipeline, segment: str) -> list[tuple[str, str]]:
    """(kind, buyer's id) of every change of ``segment`` published so far (in order for
    each buyer; the bus keeps one buyer's changes in one partition)."""
    bus = pipeline.runtime.bus
    assert isinstance(bus, MemoryBus)
    found = []
    for record in bus.records(pipeline.runtime.settings.topic("segment-changes")):
        change = decode_change(record.value)
        if isinstance(change, MembershipChange) and change.segment == segment:
            found.append((change.kind, change.profile_id))
    return found


async def card_of(pipeline: Pipeline) -> dict[str, str]:
    """Profile id to loyalty card, for reading changes as buyers."""
    names = {}
    async with pipeline.runtime.store.unit_of_work() as uow:
        for card in ("A", "B", "C", "D"):
            profile = await uow.profiles.find("loyalty_card", card)
            if profile is not None:
                names[profile.id] = card
    return names


async def buyers_with_orders(pipeline: Pipeline, orders: dict[str, int]) -> None:
    events = [
        purchase(f"{card}-{n}", T0 + timedelta(hours=n), customer={"loyalty_card": card})
        for card, count in orders.items()
        for n in range(count)
    ]
    await pipeline.post_events(events)
    await pipeline.settle()


async def changes_by_card(pipeline: Pipeline, segment: str) -> list[tuple[str, str]]:
    names = await card_of(pipeline)
    return [(kind, names[pid]) for kind, pid in changes_of(pipeline, segment)]


async def test_a_buyer_matching_a_stored_segment_enters_it(
    pipeline: Pipeline, definitions: SqlDefinitions
) -> None:
    await definitions.segments.put(
        "repeat-buyers",
        name="Repeat buyers",
        description="",
        rule={"stat": "orders_count", "at_least": 2},
        expected_version=None,
    )
    await pipeline.settle()

    await buyers_with_orders(pipeline, {"A": 2, "B": 1})

    assert await changes_by_card(pipeline, "repeat-buyers") == [("entered", "A")]
    assert (await definitions.segment_sizes())["repeat-buyers"] == 1


async def test_a_new_segment_is_evaluated_over_the_existing_base_once(
    pipeline: Pipeline, definitions: SqlDefinitions
) -> None:
    await buyers_with_orders(pipeline, {"A": 2, "B": 1, "C": 3})
    pipeline.segmenter.segmenter.recompute_size = 2

    await definitions.segments.put(
        "repeat-buyers",
        name="Repeat buyers",
        description="",
        rule={"stat": "orders_count", "at_least": 2},
        expected_version=None,
    )
    await pipeline.settle()
    await pipeline.settle()

    assert sorted(await changes_by_card(pipeline, "repeat-buyers")) == [
        ("entered", "A"),
        ("entered", "C"),
    ]
    recompute = (await definitions.recomputes())["repeat-buyers"]
    assert recompute.evaluated == 3, "each buyer once, in batches of 2"
    assert recompute.finished_at is not None


async def test_editing_a_rule_moves_exactly_the_buyers_it_changes_for(
    pipeline: Pipeline, definitions: SqlDefinitions
) -> None:
    await definitions.segments.put(
        "repeat-buyers",
        name="Repeat buyers",
        description="",
        rule={"stat": "orders_count", "at_least": 2},
        expected_version=None,
    )
    await buyers_with_orders(pipeline, {"A": 2, "B": 1, "C": 3})
    before = Counter(await changes_by_card(pipeline, "repeat-buyers"))

    await definitions.segments.put(
        "repeat-buyers",
        name="Loyal buyers",
        description="",
        rule={"any": [{"stat": "orders_count", "at_least": 3}, {"stat": "orders_count", "eq": 1}]},
        expected_version=1,
    )
    await pipeline.settle()
    await pipeline.settle()

    after = Counter(await changes_by_card(pipeline, "repeat-buyers")) - before
    assert sorted(after.elements()) == [("entered", "B"), ("exited", "A")], (
        "C stays in, no change for C"
    )
    assert (await definitions.recomputes())["repeat-buyers"].evaluated == 3


async def test_a_name_change_alone_re_evaluates_no_one(
    pipeline: Pipeline, definitions: SqlDefinitions
) -> None:
    rule = {"stat": "orders_count", "at_least": 2}
    await definitions.segments.put(
        "repeat-buyers", name="Repeat", description="", rule=rule, expected_version=None
    )
    await buyers_with_orders(pipeline, {"A": 2})
    started = (await definitions.recomputes())["repeat-buyers"].started_at

    await definitions.segments.put(
        "repeat-buyers", name="Repeat buyers", description="2+", rule=rule, expected_version=1
    )
    await pipeline.settle()

    assert (await definitions.recomputes())["repeat-buyers"].started_at == started


async def test_archiving_a_segment_lets_its_members_exit(
    pipeline: Pipeline, definitions: SqlDefinitions
) -> None:
    await definitions.segments.put(
        "repeat-buyers",
        name="Repeat buyers",
        description="",
        rule={"stat": "orders_count", "at_least": 2},
        expected_version=None,
    )
    await buyers_with_orders(pipeline, {"A": 2, "B": 3})

    await definitions.segments.archive("repeat-buyers", 1)
    await pipeline.settle()

    exits = [c for c in await changes_by_card(pipeline, "repeat-buyers") if c[0] == "exited"]
    assert sorted(exits) == [("exited", "A"), ("exited", "B")]
    assert "repeat-buyers" not in await definitions.segment_sizes()


class CountingRule(Condition):
    """Reads ``orders_count`` and counts how often it is asked."""

    def __init__(self) -> None:
        self.asked = 0

    @property
    def reads(self) -> frozenset[str]:
        return frozenset({"orders_count"})

    def holds(self, profile: Profile, now: datetime) -> bool:
        self.asked += 1
        return False

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


def identify_with_traits(event_id: str, card: str, traits: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "identify",
        "occurred_at": (T0 + timedelta(days=1)).isoformat(),
        "customer": {"loyalty_card": card},
        "data": {"traits": traits},
    }


async def test_an_event_that_changes_no_field_a_segment_reads_does_not_evaluate_it(
    pipeline: Pipeline, clock: SimulatedClock
) -> None:
    await buyers_with_orders(pipeline, {"A": 1})
    counting = CountingRule()
    segmenter = pipeline.segmenter.segmenter
    segmenter.index = SegmentIndex([*segmenter.index, Segment("counted", "Counted", counting)])

    await pipeline.post_events([identify_with_traits("traits-1", "A", {"gender": "female"})])
    await pipeline.settle()
    assert counting.asked == 0, "traits changed; the segment reads only orders_count"

    clock.set(T0 + timedelta(days=2))  # the purchase is posted once it happened
    await pipeline.post_events(
        [purchase("A-next", T0 + timedelta(days=2), customer={"loyalty_card": "A"})]
    )
    await pipeline.settle()
    assert counting.asked == 1


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated database: SQLite, then PostgreSQL."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


async def test_a_recompute_resumes_where_it_stopped_on_both_databases(
    database_url: str, clock: SimulatedClock
) -> None:
    url = database_url
    store = open_store(url)
    definitions = SqlDefinitions(store.engine, clock=clock)
    try:
        async with store.unit_of_work() as uow:
            resolution = await uow.profiles.resolve([{"id": f"c-{i}"} for i in range(5)], T0)
            for orders, profile in enumerate(resolution.profiles):
                profile.orders_count, profile.evaluated_at = orders, T0
            await uow.profiles.save(resolution.profiles, T0)
            await uow.commit()
        await definitions.segments.put(
            "repeat-buyers",
            name="Repeat buyers",
            description="",
            rule={"stat": "orders_count", "at_least": 2},
            expected_version=None,
        )

        def segmenter() -> Segmenter:
            return Segmenter(store, clock, (), "changes", definitions, recompute_size=2)

        first = segmenter()
        await first.refresh_segments()
        assert await first.recompute() == 2
        restarted = segmenter()  # a new process: nothing in memory but the stored cursor
        await restarted.refresh_segments()
        assert await restarted.recompute() == 2
        assert await restarted.recompute() == 1
        assert await restarted.recompute() == 0

        async with store.unit_of_work() as uow:
            outbox = await uow.outbox.claim(100)
        changes = [decode_change(r.value) for r in outbox]
        assert sorted((c.kind, c.segment) for c in changes) == [("entered", "repeat-buyers")] * 3
        assert (await definitions.recomputes())["repeat-buyers"].evaluated == 5
    finally:
        await store.close()
