"""The field-to-segments index: an event is evaluated only against the segments that read
what it changed; a segment's rule is known by a fingerprint that survives a restart."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.domain.profile import Profile, apply_event
from shared.domain.rules import Condition, parse_rule
from shared.domain.segments import Segment, SegmentIndex, reevaluate, rule_fingerprint
from tests.unit.builders import T0, purchase


class Counting(Condition):
    """Reads the given fields, holds always, and counts how often it is asked."""

    def __init__(self, *fields: str) -> None:
        self.fields = frozenset(fields)
        self.asked = 0

    @property
    def reads(self) -> frozenset[str]:
        return self.fields

    def holds(self, profile: Profile, now: datetime) -> bool:
        self.asked += 1
        return True

    def next_change(self, profile: Profile, now: datetime) -> datetime | None:
        return None


def segment(key: str, *fields: str) -> Segment:
    return Segment(key, key, Counting(*fields))


ORDERS = segment("orders", "orders_count")
LAST = segment("last", "last_order_at")
BOTH = segment("both", "orders_count", "revenue_total")
INDEX = SegmentIndex([ORDERS, LAST, BOTH])


def evaluated_buyer() -> Profile:
    profile = Profile(id="p-1")
    apply_event(profile, purchase("100.00", T0))
    profile.evaluated_at = T0
    return profile


def test_the_index_finds_the_segments_reading_a_changed_field_in_their_order() -> None:
    assert INDEX.reading({"revenue_total"}) == [BOTH]
    assert INDEX.reading({"revenue_total", "orders_count"}) == [ORDERS, BOTH]
    assert INDEX.reading({"traits", "consents"}) == []
    assert INDEX.reads_any({"last_order_at", "traits"})
    assert not INDEX.reads_any({"traits"})
    assert INDEX.fields == {"orders_count", "last_order_at", "revenue_total"}


def test_the_index_is_a_sequence_of_its_segments() -> None:
    assert list(INDEX) == [ORDERS, LAST, BOTH]
    assert (len(INDEX), INDEX[1], list(INDEX[1:])) == (3, LAST, [LAST, BOTH])
    assert INDEX.named({"both", "orders", "gone"}) == [ORDERS, BOTH]


def test_an_event_evaluates_only_the_segments_that_read_what_it_changed() -> None:
    orders, last, both = (
        segment(k, *f.rule.reads) for k, f in (("orders", ORDERS), ("last", LAST), ("both", BOTH))
    )
    index = SegmentIndex([orders, last, both])
    profile = evaluated_buyer()

    evaluation = reevaluate(profile, index, {}, T0, {"traits"})
    assert evaluation.changes == ()
    assert [s.rule.asked for s in index] == [0, 0, 0]  # type: ignore[attr-defined]

    evaluation = reevaluate(profile, index, {}, T0, {"last_order_at"})
    assert [c.segment for c in evaluation.changes] == ["last"]
    assert [s.rule.asked for s in index] == [0, 1, 0]  # type: ignore[attr-defined]


def test_only_names_the_segments_to_evaluate_whatever_changed() -> None:
    profile = evaluated_buyer()
    index = SegmentIndex([segment("a", "orders_count"), segment("b", "orders_count")])
    evaluation = reevaluate(profile, index, {}, T0, only={"b"})
    assert [c.segment for c in evaluation.changes] == ["b"]


def test_a_buyer_whose_timer_is_overdue_is_evaluated_in_full_even_with_only() -> None:
    profile = evaluated_buyer()
    profile.next_timer_at = T0 - timedelta(minutes=1)
    index = SegmentIndex([segment("a", "orders_count"), segment("b", "orders_count")])
    evaluation = reevaluate(profile, index, {}, T0, only={"b"})
    assert sorted(c.segment for c in evaluation.changes) == ["a", "b"]


def test_the_next_timer_is_over_every_segment_even_when_one_is_evaluated() -> None:
    profile = evaluated_buyer()
    older = Segment.from_definition("older", "", {"stat": "last_order_at", "older_than": "30d"})
    index = SegmentIndex([segment("a", "orders_count"), older])
    evaluation = reevaluate(profile, index, {}, T0, only={"a"})
    assert evaluation.next_timer == T0 + timedelta(days=30)


def test_a_rule_parsed_twice_has_one_fingerprint_and_another_rule_another() -> None:
    rule = {"all": [{"stat": "orders_count", "at_least": 2}, {"stat": "avg_check", "eq": 5000}]}
    assert rule_fingerprint(parse_rule(rule)) == rule_fingerprint(parse_rule(dict(rule)))
    other = {"all": [{"stat": "orders_count", "at_least": 3}, {"stat": "avg_check", "eq": 5000}]}
    assert rule_fingerprint(parse_rule(rule)) != rule_fingerprint(parse_rule(other))
