"""The segment rule language: what each condition answers, reads, and when it can flip."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.profile import Profile, Purchases, Scores, apply_event, apply_scores
from shared.domain.rules import (
    KINDS,
    AllOf,
    AnyOf,
    Bought,
    ClvCompare,
    ClvTopShare,
    Condition,
    EventCount,
    ExpectedOrderDue,
    ExpectedOrderOverdue,
    Not,
    OpensAtHours,
    PAlive,
    RfmScoreIn,
    RfmSegment,
    RhythmCompare,
    RuleError,
    SegmentRef,
    StatCompare,
    StatTime,
    TraitCompare,
    TraitEquals,
    TraitExists,
    link_rules,
    parse_duration,
    parse_rule,
)
from tests.unit.builders import event, purchase

NOW = datetime(2024, 6, 1, 9, 30, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def buyer(
    *,
    orders: int = 0,
    revenue: str = "0.00",
    first: datetime | None = None,
    last: datetime | None = None,
) -> Profile:
    return Profile(
        id="p-1",
        orders_count=orders,
        revenue_total=Decimal(revenue),
        first_order_at=first,
        last_order_at=last,
    )


def ordered(days_ago: float, *, orders: int = 1, revenue: str = "100.00") -> Profile:
    """A buyer whose first and last order lie ``days_ago`` before NOW."""
    moment = NOW - timedelta(days=days_ago)
    return buyer(orders=orders, revenue=revenue, first=moment, last=moment)


OLDER_30D = StatTime("last_order_at", timedelta(days=30), older=True)
WITHIN_7D = StatTime("last_order_at", timedelta(days=7), older=False)
CHECK_4000_6000 = StatCompare("avg_check", Decimal(4000), Decimal(6000))
TWO_ORDERS_OR_MORE = StatCompare("orders_count", Decimal(2), None)


# --- StatCompare ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("revenue", "expected"),
    [
        ("3999.99", False),
        ("4000.00", True),
        ("5000.00", True),
        ("6000.00", True),
        ("6000.01", False),
    ],
)
def test_average_check_between_includes_both_bounds(revenue: str, expected: bool) -> None:
    assert CHECK_4000_6000.holds(buyer(orders=1, revenue=revenue), NOW) is expected


def test_average_check_condition_is_false_before_the_first_order() -> None:
    assert CHECK_4000_6000.holds(buyer(), NOW) is False
    assert StatCompare("avg_check", None, Decimal(100)).holds(buyer(), NOW) is False


@pytest.mark.parametrize(
    ("condition", "orders", "expected"),
    [
        (TWO_ORDERS_OR_MORE, 1, False),
        (TWO_ORDERS_OR_MORE, 2, True),
        (TWO_ORDERS_OR_MORE, 9, True),
        (StatCompare("orders_count", None, Decimal(1)), 0, True),
        (StatCompare("orders_count", None, Decimal(1)), 2, False),
        (StatCompare("orders_count", Decimal(1), Decimal(1)), 1, True),
        (StatCompare("orders_count", Decimal(1), Decimal(1)), 2, False),
    ],
)
def test_orders_count_compares_with_at_least_at_most_and_eq(
    condition: StatCompare, orders: int, expected: bool
) -> None:
    assert condition.holds(buyer(orders=orders, revenue="10.00"), NOW) is expected


def test_revenue_total_is_compared_exactly_in_decimal() -> None:
    condition = StatCompare("revenue_total", Decimal("0.30"), None)
    assert condition.holds(buyer(orders=2, revenue="0.30"), NOW) is True
    assert condition.holds(buyer(orders=2, revenue="0.29"), NOW) is False


def test_numeric_condition_reads_only_its_stat() -> None:
    assert CHECK_4000_6000.reads == frozenset({"avg_check"})
    assert TWO_ORDERS_OR_MORE.reads == frozenset({"orders_count"})


def test_numeric_condition_never_flips_with_time_alone() -> None:
    assert CHECK_4000_6000.next_change(buyer(orders=1, revenue="5000.00"), NOW) is None
    assert TWO_ORDERS_OR_MORE.next_change(ordered(3, orders=2), NOW) is None


# --- StatTime: older_than ------------------------------------------------------------


def test_older_than_is_false_while_the_buyer_never_ordered() -> None:
    assert OLDER_30D.holds(buyer(), NOW) is False
    assert OLDER_30D.next_change(buyer(), NOW) is None


def test_older_than_30d_is_false_one_instant_before_30_days() -> None:
    last = NOW - timedelta(days=30) + TICK
    assert OLDER_30D.holds(buyer(orders=1, revenue="1.00", first=last, last=last), NOW) is False


def test_older_than_30d_becomes_true_exactly_30_days_after_last_order() -> None:
    assert OLDER_30D.holds(ordered(30), NOW) is True
    assert OLDER_30D.holds(ordered(45), NOW) is True


def test_older_than_next_change_is_the_moment_it_becomes_true() -> None:
    profile = ordered(29)
    assert OLDER_30D.next_change(profile, NOW) == NOW + timedelta(days=1)


def test_older_than_has_no_next_change_once_true() -> None:
    assert OLDER_30D.next_change(ordered(30), NOW) is None
    assert OLDER_30D.next_change(ordered(31), NOW) is None


def test_older_than_compares_instants_across_utc_offsets() -> None:
    moscow = timezone(timedelta(hours=3))
    last = datetime(2024, 5, 2, 12, 30, tzinfo=moscow)  # 09:30 UTC
    profile = buyer(orders=1, revenue="1.00", first=last, last=last)
    assert OLDER_30D.holds(profile, NOW - TICK) is False
    assert OLDER_30D.holds(profile, NOW) is True
    assert OLDER_30D.next_change(profile, NOW - timedelta(days=1)) == NOW


# --- StatTime: within ----------------------------------------------------------------


def test_within_is_false_while_the_buyer_never_ordered() -> None:
    assert WITHIN_7D.holds(buyer(), NOW) is False
    assert WITHIN_7D.next_change(buyer(), NOW) is None


def test_within_7d_holds_from_the_order_until_just_before_7_days() -> None:
    assert WITHIN_7D.holds(ordered(0), NOW) is True
    last = NOW - timedelta(days=7) + TICK
    assert WITHIN_7D.holds(buyer(orders=1, revenue="1.00", first=last, last=last), NOW) is True


def test_within_7d_turns_false_exactly_7_days_after_last_order() -> None:
    assert WITHIN_7D.holds(ordered(7), NOW) is False
    assert WITHIN_7D.holds(ordered(8), NOW) is False


def test_within_next_change_is_the_moment_it_becomes_false() -> None:
    assert WITHIN_7D.next_change(ordered(2), NOW) == NOW + timedelta(days=5)


def test_within_has_no_next_change_once_expired() -> None:
    assert WITHIN_7D.next_change(ordered(7), NOW) is None


def test_time_condition_reads_only_its_stat() -> None:
    assert OLDER_30D.reads == frozenset({"last_order_at"})
    first_within = StatTime("first_order_at", timedelta(days=90), older=False)
    assert first_within.reads == frozenset({"first_order_at"})


def test_first_order_condition_looks_at_the_first_order_not_the_last() -> None:
    profile = buyer(orders=2, revenue="2.00", first=NOW - timedelta(days=100), last=NOW)
    new_buyer = StatTime("first_order_at", timedelta(days=90), older=False)
    assert new_buyer.holds(profile, NOW) is False
    assert StatTime("first_order_at", timedelta(days=90), older=True).holds(profile, NOW)


# --- combinators ---------------------------------------------------------------------


def test_all_of_holds_only_when_every_condition_holds() -> None:
    rule = AllOf((WITHIN_7D, TWO_ORDERS_OR_MORE))
    assert rule.holds(ordered(1, orders=2), NOW) is True
    assert rule.holds(ordered(1, orders=1), NOW) is False
    assert rule.holds(ordered(8, orders=2), NOW) is False


def test_any_of_holds_when_one_condition_holds() -> None:
    rule = AnyOf((WITHIN_7D, TWO_ORDERS_OR_MORE))
    assert rule.holds(ordered(1, orders=1), NOW) is True
    assert rule.holds(ordered(8, orders=2), NOW) is True
    assert rule.holds(ordered(8, orders=1), NOW) is False


def test_not_negates_its_condition() -> None:
    assert Not(WITHIN_7D).holds(ordered(8), NOW) is True
    assert Not(WITHIN_7D).holds(ordered(1), NOW) is False


def test_not_holds_for_a_buyer_who_never_ordered() -> None:
    assert Not(WITHIN_7D).holds(buyer(), NOW) is True
    assert Not(OLDER_30D).holds(buyer(), NOW) is True


def test_combinators_read_every_field_their_conditions_read() -> None:
    first_within = StatTime("first_order_at", timedelta(days=90), older=False)
    rule = AllOf((AnyOf((OLDER_30D, CHECK_4000_6000)), Not(first_within)))
    assert rule.reads == frozenset({"last_order_at", "avg_check", "first_order_at"})
    assert AnyOf((TWO_ORDERS_OR_MORE,)).reads == frozenset({"orders_count"})
    assert Not(OLDER_30D).reads == frozenset({"last_order_at"})


@pytest.mark.parametrize("combinator", [AllOf, AnyOf])
def test_combinator_next_change_is_the_earliest_of_its_conditions(combinator: Any) -> None:
    rule = combinator((OLDER_30D, WITHIN_7D, CHECK_4000_6000))
    assert rule.next_change(ordered(2), NOW) == NOW + timedelta(days=5)
    assert rule.next_change(ordered(10), NOW) == NOW + timedelta(days=20)


@pytest.mark.parametrize("combinator", [AllOf, AnyOf])
def test_combinator_without_time_conditions_never_flips_with_time(combinator: Any) -> None:
    rule = combinator((CHECK_4000_6000, TWO_ORDERS_OR_MORE))
    assert rule.next_change(ordered(2), NOW) is None
    assert combinator((OLDER_30D,)).next_change(ordered(40), NOW) is None


def test_not_flips_when_its_condition_flips() -> None:
    rule = Not(WITHIN_7D)
    profile = ordered(3)
    flip = rule.next_change(profile, NOW)
    assert flip == NOW + timedelta(days=4)
    assert rule.holds(profile, flip - TICK) is False
    assert rule.holds(profile, flip) is True


# --- parsing: good rules -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            {"stat": "avg_check", "between": [4000, 6000]},
            StatCompare("avg_check", Decimal(4000), Decimal(6000)),
        ),
        (
            {"stat": "orders_count", "at_least": 2},
            StatCompare("orders_count", Decimal(2), None),
        ),
        (
            {"stat": "revenue_total", "at_most": "1000.50"},
            StatCompare("revenue_total", None, Decimal("1000.50")),
        ),
        ({"stat": "orders_count", "eq": 1}, StatCompare("orders_count", Decimal(1), Decimal(1))),
        (
            {"stat": "avg_check", "at_least": 0.1, "at_most": 99.9},
            StatCompare("avg_check", Decimal("0.1"), Decimal("99.9")),
        ),
        (
            {"stat": "last_order_at", "older_than": "30d"},
            StatTime("last_order_at", timedelta(days=30), older=True),
        ),
        (
            {"stat": "first_order_at", "within": "12h"},
            StatTime("first_order_at", timedelta(hours=12), older=False),
        ),
        (
            {
                "all": [
                    {"stat": "orders_count", "at_least": 2},
                    {"any": [{"stat": "last_order_at", "within": "2w"}]},
                    {"not": {"stat": "avg_check", "at_most": 500}},
                ]
            },
            AllOf(
                (
                    StatCompare("orders_count", Decimal(2), None),
                    AnyOf((StatTime("last_order_at", timedelta(weeks=2), older=False),)),
                    Not(StatCompare("avg_check", None, Decimal(500))),
                )
            ),
        ),
    ],
)
def test_good_rules_parse_into_conditions(text: Any, expected: Any) -> None:
    assert parse_rule(text) == expected


def test_parsed_rule_answers_like_the_marketer_wrote_it() -> None:
    rule = parse_rule(
        {
            "all": [
                {"stat": "last_order_at", "older_than": "7d"},
                {"stat": "avg_check", "between": [4000, 6000]},
            ]
        }
    )
    assert rule.holds(ordered(8, revenue="5000.00"), NOW) is True
    assert rule.holds(ordered(6, revenue="5000.00"), NOW) is False
    assert rule.reads == frozenset({"last_order_at", "avg_check"})
    assert rule.next_change(ordered(6, revenue="5000.00"), NOW) == NOW + timedelta(days=1)


# --- parsing: bad rules --------------------------------------------------------------

BAD_RULES = [
    pytest.param(
        {
            "all": [
                {"stat": "avg_check", "at_least": 1},
                {"stat": "avg_check", "between": ["lots", 6000]},
            ]
        },
        "/all/1/between/0",
        "expected a number",
        id="not-a-number-deep-in-all",
    ),
    pytest.param(
        {"stat": "avg_check", "between": [1, {}]},
        "/between/1",
        "expected a number",
        id="high-bound-not-a-number",
    ),
    pytest.param(
        {"stat": "avg_check", "between": [4000]},
        "/between",
        "expected [low, high]",
        id="between-one-bound",
    ),
    pytest.param(
        {"stat": "avg_check", "between": "4000-6000"},
        "/between",
        "expected [low, high]",
        id="between-not-a-list",
    ),
    pytest.param(
        {"stat": "avg_check", "between": [6000, 4000]},
        "/between",
        "low is above high",
        id="between-reversed",
    ),
    pytest.param(
        {"stat": "orders_count", "at_least": True},
        "/at_least",
        "expected a number",
        id="boolean-is-not-a-number",
    ),
    pytest.param({"stat": "orders_count", "eq": None}, "/eq", "expected a number", id="eq-null"),
    pytest.param(
        {"stat": "orders_count"},
        "/",
        "expected one of: eq, at_least, at_most, between",
        id="numeric-stat-without-comparison",
    ),
    pytest.param({"stat": "colour"}, "/stat", "unknown stat 'colour'", id="unknown-stat"),
    pytest.param(
        {"stat": "last_order_at"},
        "/",
        "exactly one of: older_than, within",
        id="time-stat-without-age",
    ),
    pytest.param(
        {"stat": "last_order_at", "older_than": "30d", "within": "60d"},
        "/",
        "exactly one of: older_than, within",
        id="time-stat-with-both-ages",
    ),
    pytest.param(
        {"stat": "last_order_at", "older_than": "3x"},
        "/older_than",
        "expected a duration such as '30d'",
        id="bad-duration",
    ),
    pytest.param(
        {"stat": "last_order_at", "within": 30},
        "/within",
        "got '30'",
        id="duration-without-unit",
    ),
    pytest.param({"all": []}, "/all", "non-empty list", id="empty-all"),
    pytest.param({"any": {"stat": "orders_count"}}, "/any", "non-empty list", id="any-not-list"),
    pytest.param(
        {"not": [{"stat": "orders_count", "eq": 1}]}, "/not", "expected an object", id="not-list"
    ),
    pytest.param(
        {"all": [{"any": [{"not": {"stat": "last_order_at", "within": "30"}}]}]},
        "/all/0/any/0/not/within",
        "expected a duration",
        id="deeply-nested",
    ),
    pytest.param(
        {"segmnt": "churned"}, "/", "expected one of: all, any, not, stat, trait", id="unknown-kind"
    ),
    pytest.param(["all"], "/", "expected an object", id="top-level-list"),
    pytest.param({"all": ["orders_count"]}, "/all/0", "expected an object", id="string-child"),
]


@pytest.mark.parametrize(("text", "pointer", "message"), BAD_RULES)
def test_bad_rule_is_refused_at_the_exact_json_pointer(
    text: Any, pointer: str, message: str
) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(text)
    assert caught.value.pointer == pointer
    assert message in caught.value.message
    assert str(caught.value) == f"{pointer}: {caught.value.message}"


@pytest.mark.parametrize(
    ("text", "pointer"),
    [
        ({"all": [{"stat": "orders_count", "eq": 1}], "name": "x"}, "/name"),
        ({"any": [{"stat": "orders_count", "eq": 1}], "all": []}, "/any"),
        ({"not": {"stat": "orders_count", "eq": 1}, "note": "x"}, "/note"),
        ({"stat": "orders_count", "eq": 1, "colour": "red"}, "/colour"),
        ({"stat": "avg_check", "at_least": 1, "older_than": "3d"}, "/older_than"),
        ({"stat": "last_order_at", "older_than": "3d", "at_least": 1}, "/at_least"),
        (
            {"all": [{"not": {"stat": "last_order_at", "within": "1d", "typo": 1}}]},
            "/all/0/not/typo",
        ),
    ],
)
def test_unknown_keys_are_refused(text: Any, pointer: str) -> None:
    with pytest.raises(RuleError, match="unexpected key") as caught:
        parse_rule(text)
    assert caught.value.pointer == pointer


def test_rule_error_is_a_value_error_naming_the_root_as_slash() -> None:
    with pytest.raises(ValueError, match=r"^/: expected an object"):
        parse_rule("older_than 30d")


def test_a_stat_name_that_is_not_a_string_is_refused_at_stat() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule({"stat": ["avg_check"]})
    assert caught.value.pointer == "/stat"


@pytest.mark.parametrize("bound", ["NaN", "Infinity", float("nan"), float("inf")])
def test_a_bound_that_is_not_a_finite_number_is_refused(bound: Any) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule({"stat": "avg_check", "at_least": bound})
    assert caught.value.pointer == "/at_least"


def test_a_duration_too_long_for_the_calendar_is_refused_at_its_node() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule({"stat": "last_order_at", "older_than": "9999999999d"})
    assert caught.value.pointer == "/older_than"


@pytest.mark.parametrize(
    "text",
    [
        {"stat": "avg_check", "between": [1000, 2000], "at_least": 5000},
        {"stat": "orders_count", "eq": 1, "at_least": 3},
    ],
)
def test_a_numeric_stat_with_conflicting_comparisons_is_refused(text: Any) -> None:
    with pytest.raises(RuleError):
        parse_rule(text)


def test_pointer_to_an_unknown_key_is_escaped_as_rfc_6901_says() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule({"stat": "orders_count", "eq": 1, "a/b~c": 1})
    assert caught.value.pointer == "/a~1b~0c"


# --- durations -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("15m", timedelta(minutes=15)),
        ("90d", timedelta(days=90)),
        (" 7d ", timedelta(days=7)),
    ],
)
def test_durations_parse_with_minutes_hours_days_and_weeks(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["30", "3x", "", "d", "-1d", "1.5d", "30D", "30 days", "d30"])
def test_bad_durations_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected a duration such as '30d'") as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)


# === behaviour, traits, lifecycle and scores =========================================

DAY = timedelta(days=1)


def with_traits(**traits: Any) -> Profile:
    return Profile(id="p-1", traits=traits)


def ordering_every(gaps: list[float], last: datetime = NOW) -> Profile:
    """A buyer whose orders are ``gaps`` days apart, the last at ``last``."""
    moments = [last]
    for gap in reversed(gaps):
        moments.insert(0, moments[0] - timedelta(days=gap))
    profile = buyer(orders=len(moments), revenue="100.00", first=moments[0], last=moments[-1])
    profile.order_moments = moments
    return profile


# --- trait ---------------------------------------------------------------------------


def test_trait_eq_compares_strings_exactly_and_booleans_as_booleans() -> None:
    female = parse_rule({"trait": "gender", "eq": "female"})
    kids = parse_rule({"trait": "has_kids", "eq": True})

    assert female.holds(with_traits(gender="female"), NOW) is True
    assert female.holds(with_traits(gender="male"), NOW) is False
    assert female.holds(with_traits(), NOW) is False
    assert kids.holds(with_traits(has_kids=True), NOW) is True
    assert kids.holds(with_traits(has_kids=1), NOW) is False
    assert female.reads == kids.reads == frozenset({"traits"})
    assert female.next_change(with_traits(gender="female"), NOW) is None


def test_trait_eq_compares_numbers_by_value() -> None:
    rule = parse_rule({"trait": "kids", "eq": 2})
    assert rule.holds(with_traits(kids=2.0), NOW) is True
    assert rule.holds(with_traits(kids="2"), NOW) is False
    assert rule.holds(with_traits(kids=True), NOW) is False


def test_trait_in_matches_any_of_the_values() -> None:
    rule = parse_rule({"trait": "region", "in": ["CFD", "NWFD"]})
    assert rule == TraitEquals("region", ("CFD", "NWFD"))
    assert rule.holds(with_traits(region="NWFD"), NOW) is True
    assert rule.holds(with_traits(region="SFD"), NOW) is False


def test_trait_exists_says_whether_the_buyer_told_us() -> None:
    told = parse_rule({"trait": "has_pets", "exists": True})
    untold = parse_rule({"trait": "has_pets", "exists": False})
    assert told == TraitExists("has_pets", True)
    assert told.holds(with_traits(has_pets=False), NOW) is True
    assert untold.holds(with_traits(), NOW) is True
    assert untold.holds(with_traits(has_pets=True), NOW) is False


def test_numeric_trait_bounds_hold_only_for_numbers() -> None:
    rule = parse_rule({"trait": "age", "between": [25, 40]})
    assert rule == TraitCompare("age", Decimal(25), Decimal(40))
    assert rule.holds(with_traits(age=25), NOW) is True
    assert rule.holds(with_traits(age=40.5), NOW) is False
    assert rule.holds(with_traits(age="30"), NOW) is False
    assert rule.holds(with_traits(age=True), NOW) is False


def test_an_identify_changing_a_trait_reports_what_trait_rules_read() -> None:
    profile = Profile(id="p-1")
    changed = apply_event(profile, event("identify", {"traits": {"gender": "female"}}, NOW))
    assert parse_rule({"trait": "gender", "eq": "female"}).reads <= changed


# --- rhythm --------------------------------------------------------------------------


def test_median_days_between_orders_is_compared_with_bounds() -> None:
    rule = parse_rule({"rhythm": "median_days_between_orders", "between": [25, 35]})
    assert rule == RhythmCompare("median_days_between_orders", Decimal(25), Decimal(35))
    assert rule.holds(ordering_every([28, 31, 90]), NOW) is True  # median 31
    assert rule.holds(ordering_every([10, 12]), NOW) is False
    assert rule.holds(ordered(5), NOW) is False  # one order: no rhythm
    assert rule.next_change(ordering_every([30]), NOW) is None


def test_mean_days_between_orders_is_compared_with_bounds() -> None:
    rule = parse_rule({"rhythm": "mean_days_between_orders", "at_least": 40})
    assert rule.holds(ordering_every([28, 31, 90]), NOW) is True  # mean 49.67
    assert rule.holds(ordering_every([28, 31, 32]), NOW) is False


def test_rhythm_reads_what_a_purchase_reports() -> None:
    rule = parse_rule({"rhythm": "expected_next_order_at", "within": "3d"})
    profile = Profile(id="p-1")
    apply_event(profile, purchase("10.00", NOW))
    changed = apply_event(profile, purchase("10.00", NOW - DAY, order_id="o-early"))
    assert not rule.reads.isdisjoint(changed)


def test_expected_next_order_within_holds_in_the_days_before_it() -> None:
    monthly = ordering_every([30, 30], last=NOW - 25 * DAY)  # expected at NOW + 5d
    rule = parse_rule({"rhythm": "expected_next_order_at", "within": "3d"})

    assert rule == ExpectedOrderDue(timedelta(days=3))
    assert rule.holds(monthly, NOW) is False
    assert rule.next_change(monthly, NOW) == NOW + 2 * DAY
    assert rule.holds(monthly, NOW + 2 * DAY - TICK) is False
    assert rule.holds(monthly, NOW + 2 * DAY) is True
    assert rule.next_change(monthly, NOW + 2 * DAY) == NOW + 5 * DAY
    assert rule.holds(monthly, NOW + 5 * DAY) is False  # the day came: no longer "due soon"
    assert rule.next_change(monthly, NOW + 5 * DAY) is None


def test_expected_next_order_overdue_by_holds_once_that_long_past_it() -> None:
    monthly = ordering_every([30, 30], last=NOW - 25 * DAY)  # expected at NOW + 5d
    rule = parse_rule({"rhythm": "expected_next_order_at", "overdue_by": "7d"})

    assert rule == ExpectedOrderOverdue(timedelta(days=7))
    assert rule.holds(monthly, NOW + 12 * DAY - TICK) is False
    assert rule.next_change(monthly, NOW) == NOW + 12 * DAY
    assert rule.holds(monthly, NOW + 12 * DAY) is True
    assert rule.next_change(monthly, NOW + 12 * DAY) is None


def test_no_expected_order_before_the_second_order() -> None:
    for spec in ({"within": "3d"}, {"overdue_by": "1d"}):
        rule = parse_rule({"rhythm": "expected_next_order_at", **spec})
        assert rule.holds(ordered(40), NOW) is False
        assert rule.next_change(ordered(40), NOW) is None


# --- bought --------------------------------------------------------------------------


def pet_food_buyer(days_ago: float) -> Profile:
    at = NOW - timedelta(days=days_ago)
    return Profile(
        id="p-1",
        categories={"pet-food": Purchases(2, 3, at)},
        skus={"cat-food-1kg": Purchases(2, 3, at)},
        stores={"msk-01": Purchases(1, 2, at)},
    )


def test_bought_a_category_within_90_days_flips_90_days_after_the_last_such_order() -> None:
    rule = parse_rule({"bought": {"category": "pet-food"}, "within": "90d"})
    profile = pet_food_buyer(10)

    assert rule == Bought("category", "pet-food", timedelta(days=90))
    assert rule.reads == frozenset({"categories"})
    assert rule.holds(profile, NOW) is True
    assert rule.next_change(profile, NOW) == NOW + 80 * DAY
    assert rule.holds(profile, NOW + 80 * DAY) is False
    assert rule.next_change(profile, NOW + 80 * DAY) is None
    assert rule.holds(Profile(id="p-2"), NOW) is False


def test_not_within_is_true_for_a_lapsed_buyer_and_one_who_never_bought() -> None:
    rule = parse_rule({"bought": {"sku": "cat-food-1kg"}, "not_within": "30d"})

    assert rule == Bought("sku", "cat-food-1kg", timedelta(days=30), negated=True)
    assert rule.reads == frozenset({"skus"})
    assert rule.holds(pet_food_buyer(10), NOW) is False
    assert rule.next_change(pet_food_buyer(10), NOW) == NOW + 20 * DAY
    assert rule.holds(pet_food_buyer(30), NOW) is True
    assert rule.holds(Profile(id="p-2"), NOW) is True


def test_bought_ever_and_in_a_store() -> None:
    ever = parse_rule({"bought": {"store": "msk-01"}})
    assert ever == Bought("store", "msk-01")
    assert ever.reads == frozenset({"stores"})
    assert ever.holds(pet_food_buyer(1000), NOW) is True
    assert ever.holds(Profile(id="p-2"), NOW) is False
    assert ever.next_change(pet_food_buyer(1), NOW) is None


# --- custom events -------------------------------------------------------------------


def carts(*days_ago: int) -> Profile:
    """A buyer who updated the cart once on each of these UTC days before NOW's day."""
    days: dict[date, int] = {}
    for ago in days_ago:
        day = NOW.date() - timedelta(days=ago)
        days[day] = days.get(day, 0) + 1
    return Profile(id="p-1", tracked_days={"cart_updated": days})


def midnight_after(days: int) -> datetime:
    return datetime.combine(NOW.date() + timedelta(days=days), datetime.min.time(), tzinfo=UTC)


def test_event_at_least_within_counts_the_last_whole_days() -> None:
    rule = parse_rule({"event": "cart_updated", "at_least": 2, "within": "7d"})

    assert rule == EventCount("cart_updated", Decimal(2), None, 7)
    assert rule.reads == frozenset({"tracked_days"})
    assert rule.holds(carts(0, 6), NOW) is True
    assert rule.holds(carts(0, 7), NOW) is False  # 7 days ago is outside a 7-day window
    assert rule.holds(carts(0), NOW) is False


def test_event_window_flips_when_the_oldest_needed_day_leaves_it() -> None:
    rule = parse_rule({"event": "cart_updated", "at_least": 2, "within": "7d"})
    profile = carts(1, 4, 4)  # three updates: days -1, -4, -4

    # Day -4 leaves the window at midnight 3 days ahead; then only one update remains.
    assert rule.next_change(profile, NOW) == midnight_after(3)
    assert rule.holds(profile, midnight_after(3) - TICK) is True
    assert rule.holds(profile, midnight_after(3)) is False
    assert rule.next_change(profile, midnight_after(3)) is None


def test_event_at_most_within_becomes_true_when_the_days_leave_the_window() -> None:
    rule = parse_rule({"event": "cart_updated", "at_most": 1, "within": "7d"})
    profile = carts(2, 5)

    assert rule.holds(profile, NOW) is False
    assert rule.next_change(profile, NOW) == midnight_after(2)
    assert rule.holds(profile, midnight_after(2)) is True
    assert rule.holds(Profile(id="p-2"), NOW) is True


def test_event_without_a_window_counts_every_time() -> None:
    rule = parse_rule({"event": "cart_updated", "at_least": 3})
    profile = Profile(id="p-1")
    changes: set[str] = set()
    for n in range(3):
        changes |= apply_event(
            profile, event("track", {"name": "cart_updated"}, NOW - n * 100 * DAY)
        )

    assert rule.reads == frozenset({"tracked"})
    assert rule.reads <= changes
    assert rule.holds(profile, NOW) is True
    assert rule.next_change(profile, NOW) is None


def test_a_track_event_reports_what_a_windowed_event_rule_reads() -> None:
    rule = parse_rule({"event": "cart_updated", "at_least": 1, "within": "1d"})
    profile = Profile(id="p-1")
    assert rule.reads <= apply_event(profile, event("track", {"name": "cart_updated"}, NOW))
    assert rule.holds(profile, NOW) is True


# --- opens ---------------------------------------------------------------------------


def night_owl(night: int, day: int) -> Profile:
    hours = [0] * 24
    hours[0] = night
    hours[14] = day
    return Profile(id="p-1", open_hours={"email": hours})


def test_opens_at_night_share_with_hours_wrapping_past_midnight() -> None:
    rule = parse_rule({"opens": "email", "local_hours": [23, 5], "share_at_least": 0.5})

    assert rule == OpensAtHours("email", frozenset({23, 0, 1, 2, 3, 4, 5}), Decimal("0.5"))
    assert rule.reads == frozenset({"open_hours"})
    assert rule.holds(night_owl(1, 1), NOW) is True
    assert rule.holds(night_owl(1, 2), NOW) is False
    assert rule.holds(Profile(id="p-2"), NOW) is False  # never opened
    assert rule.next_change(night_owl(1, 1), NOW) is None


def test_opens_hours_without_wrapping_include_both_ends() -> None:
    rule = parse_rule({"opens": "email", "local_hours": [9, 14], "share_at_least": 1})
    assert rule.holds(night_owl(0, 3), NOW) is True
    assert rule.holds(night_owl(1, 3), NOW) is False


# --- segment references --------------------------------------------------------------


def test_a_linked_segment_reference_answers_reads_and_flips_as_its_segment() -> None:
    rules = {
        "lapsed": parse_rule({"stat": "last_order_at", "older_than": "30d"}),
        "lapsed-mum": parse_rule(
            {"all": [{"trait": "has_kids", "eq": True}, {"segment": "lapsed"}]}
        ),
    }
    linked = link_rules(rules)
    profile = ordered(20)
    profile.traits = {"has_kids": True}

    assert linked["lapsed-mum"].reads == frozenset({"traits", "last_order_at"})
    assert linked["lapsed-mum"].holds(profile, NOW) is False
    assert linked["lapsed-mum"].next_change(profile, NOW) == NOW + 10 * DAY
    assert linked["lapsed-mum"].holds(profile, NOW + 10 * DAY) is True
    assert linked["lapsed"] == rules["lapsed"]


def test_a_reference_parses_unlinked_and_refuses_to_be_evaluated_so() -> None:
    rule = parse_rule({"not": {"segment": "churned"}})
    assert rule == Not(SegmentRef("churned"))
    with pytest.raises(RuntimeError, match="not linked"):
        rule.holds(Profile(id="p-1"), NOW)


def test_a_reference_to_an_unknown_segment_is_refused_at_its_pointer() -> None:
    rules = {"a": parse_rule({"any": [{"stat": "orders_count", "eq": 0}, {"segment": "b"}]})}
    with pytest.raises(RuleError) as caught:
        link_rules(rules)
    assert caught.value.pointer == "/any/1/segment"
    assert caught.value.segment == "a"
    assert "unknown segment 'b'" in caught.value.message


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"a": {"segment": "a"}}, "a -> a"),
        (
            {
                "a": {"segment": "b"},
                "b": {"all": [{"stat": "orders_count", "eq": 1}, {"segment": "c"}]},
                "c": {"not": {"segment": "a"}},
            },
            "a -> b -> c -> a",
        ),
    ],
)
def test_segments_referring_to_each_other_in_a_cycle_are_refused(
    rules: dict[str, Any], message: str
) -> None:
    with pytest.raises(RuleError, match="cycle") as caught:
        link_rules({key: parse_rule(rule) for key, rule in rules.items()})
    assert message in caught.value.message


# --- RFM, predictions, CLV -----------------------------------------------------------


def scored(**scores: Any) -> Profile:
    profile = Profile(id="p-1")
    apply_scores(profile, Scores(**scores))
    return profile


def test_rfm_segment_is_the_one_the_scoring_job_named() -> None:
    rule = parse_rule({"rfm": "champions"})
    assert rule == RfmSegment("champions")
    assert rule.reads == frozenset({"rfm_segment"})
    assert rule.holds(scored(rfm_segment="champions"), NOW) is True
    assert rule.holds(scored(rfm_segment="at-risk"), NOW) is False
    assert rule.holds(Profile(id="p-1"), NOW) is False


def test_rfm_scores_among_allowed_values() -> None:
    rule = parse_rule({"rfm_score": {"r": [4, 5], "m": [5]}})
    assert isinstance(rule, RfmScoreIn)
    assert rule.reads == frozenset({"rfm_r", "rfm_m"})
    assert rule.holds(scored(rfm_r=4, rfm_f=1, rfm_m=5), NOW) is True
    assert rule.holds(scored(rfm_r=3, rfm_f=5, rfm_m=5), NOW) is False
    assert rule.holds(Profile(id="p-1"), NOW) is False


def test_p_alive_below_and_above_are_strict() -> None:
    below = parse_rule({"p_alive": {"below": 0.3}})
    band = parse_rule({"p_alive": {"above": 0.2, "below": 0.5}})
    assert below == PAlive(Decimal("0.3"), None)
    assert below.reads == frozenset({"p_alive"})
    assert below.holds(scored(p_alive=0.29), NOW) is True
    assert below.holds(scored(p_alive=0.3), NOW) is False
    assert below.holds(Profile(id="p-1"), NOW) is False
    assert band.holds(scored(p_alive=0.4), NOW) is True
    assert band.holds(scored(p_alive=0.2), NOW) is False


def test_clv_top_share_and_amount() -> None:
    top = parse_rule({"clv": {"top_share": 0.1}})
    rich = parse_rule({"clv": {"at_least": 20000}})
    assert top == ClvTopShare(Decimal("0.1"))
    assert rich == ClvCompare(Decimal(20000), None)
    assert top.reads == frozenset({"clv_share"})
    assert rich.reads == frozenset({"clv"})
    assert top.holds(scored(clv_share=0.0), NOW) is True
    assert top.holds(scored(clv_share=0.1), NOW) is False
    assert rich.holds(scored(clv=Decimal("20000.00")), NOW) is True
    assert rich.holds(scored(clv=Decimal("19999.99")), NOW) is False
    assert rich.holds(Profile(id="p-1"), NOW) is False


def test_score_rules_read_what_the_scoring_job_reports() -> None:
    changed = apply_scores(
        Profile(id="p-1"),
        Scores(
            rfm_r=5,
            rfm_f=5,
            rfm_m=5,
            rfm_segment="champions",
            p_alive=0.9,
            clv=Decimal("1.00"),
            clv_share=0.5,
            scored_at=NOW,
        ),
    )
    for text in (
        {"rfm": "champions"},
        {"rfm_score": {"r": [5], "f": [5], "m": [5]}},
        {"p_alive": {"above": 0.5}},
        {"clv": {"top_share": 0.1}},
        {"clv": {"at_most": 10}},
    ):
        assert parse_rule(text).reads <= changed


def test_new_numeric_stats_read_refunds_and_predictions() -> None:
    net = parse_rule({"stat": "net_revenue", "at_least": 100})
    profile = ordered(1, revenue="150.00")
    assert net.holds(profile, NOW) is True
    changed = apply_event(profile, event("refund", {"order_id": "o", "amount": "60.00"}, NOW))
    assert net.reads <= changed
    assert net.holds(profile, NOW) is False
    expected = parse_rule({"stat": "expected_purchases", "at_least": 1.5})
    assert expected.holds(scored(expected_purchases=1.5), NOW) is True
    assert expected.holds(Profile(id="p-1"), NOW) is False


# --- parse errors of the new conditions ----------------------------------------------

NEW_BAD_RULES = [
    pytest.param({"trait": ""}, "/trait", "expected a trait name", id="trait-empty"),
    pytest.param({"trait": "gender"}, "/", "expected one of: eq, in, exists", id="trait-no-op"),
    pytest.param({"trait": "g", "in": []}, "/in", "non-empty list", id="trait-in-empty"),
    pytest.param({"trait": "g", "in": ["a", [1]]}, "/in/1", "expected a string", id="trait-in"),
    pytest.param({"trait": "g", "eq": None}, "/eq", "expected a string", id="trait-eq-null"),
    pytest.param({"trait": "g", "exists": "yes"}, "/exists", "true or false", id="trait-exists"),
    pytest.param({"trait": "g", "eq": "a", "in": ["b"]}, "/in", "unexpected key", id="trait-mix"),
    pytest.param(
        {"all": [{"rhythm": "weekly", "eq": 7}]}, "/all/0/rhythm", "expected one of", id="rhythm"
    ),
    pytest.param(
        {"rhythm": "expected_next_order_at", "within": "3d", "overdue_by": "1d"},
        "/",
        "exactly one of: within, overdue_by",
        id="rhythm-two-ops",
    ),
    pytest.param(
        {"rhythm": "expected_next_order_at", "within": "soon"},
        "/within",
        "expected a duration",
        id="rhythm-duration",
    ),
    pytest.param({"bought": "pet-food"}, "/bought", "expected an object", id="bought-string"),
    pytest.param(
        {"bought": {"brand": "x"}}, "/bought", "exactly one of: category, sku", id="bought-kind"
    ),
    pytest.param(
        {"bought": {"sku": "x", "category": "y"}}, "/bought", "exactly one of", id="bought-two"
    ),
    pytest.param(
        {"bought": {"sku": "x"}, "within": "1d", "not_within": "2d"},
        "/",
        "cannot be combined",
        id="bought-both",
    ),
    pytest.param({"event": "cart", "within": "7d"}, "/", "expected one of: eq", id="event-no-n"),
    pytest.param(
        {"event": "cart", "at_least": 1, "within": "12h"}, "/within", "whole days", id="event-12h"
    ),
    pytest.param(
        {"event": "cart", "at_least": 1, "within": "401d"}, "/within", "to 400d", id="event-long"
    ),
    pytest.param(
        {"opens": "fax", "local_hours": [1, 2], "share_at_least": 0.5},
        "/opens",
        "expected a channel",
        id="opens-channel",
    ),
    pytest.param(
        {"opens": "email", "local_hours": [23, 24], "share_at_least": 0.5},
        "/local_hours/1",
        "an hour from 0 to 23",
        id="opens-hour",
    ),
    pytest.param(
        {"opens": "email", "local_hours": [23], "share_at_least": 0.5},
        "/local_hours",
        "expected [from, to]",
        id="opens-span",
    ),
    pytest.param(
        {"opens": "email", "local_hours": [1, 2], "share_at_least": 1.5},
        "/share_at_least",
        "share from 0 to 1",
        id="opens-share",
    ),
    pytest.param(
        {"opens": "email", "local_hours": [1, 2]}, "/", "needs share_at_least", id="opens-missing"
    ),
    pytest.param({"segment": 3}, "/segment", "expected a segment key", id="segment-not-text"),
    pytest.param(
        {"any": [{"lifecycle": "vip"}]}, "/any/0/lifecycle", "expected a stage", id="lifecycle"
    ),
    pytest.param({"rfm": "vips"}, "/rfm", "expected an RFM segment", id="rfm-name"),
    pytest.param({"rfm_score": {"r": [6]}}, "/rfm_score/r/0", "score from 1 to 5", id="rfm-6"),
    pytest.param({"rfm_score": {"x": [1]}}, "/rfm_score/x", "unexpected key", id="rfm-letter"),
    pytest.param({"rfm_score": {}}, "/rfm_score", "expected an object", id="rfm-empty"),
    pytest.param({"p_alive": {"under": 0.3}}, "/p_alive", "below and/or above", id="p-alive"),
    pytest.param({"p_alive": {"below": 2}}, "/p_alive/below", "share from 0 to 1", id="p-alive-2"),
    pytest.param({"clv": {"top_share": 0}}, "/clv/top_share", "above 0", id="clv-top-0"),
    pytest.param({"clv": {}}, "/clv", "expected one of: top_share", id="clv-empty"),
    pytest.param(
        {"clv": {"top_share": 0.1, "at_least": 5}}, "/clv/at_least", "unexpected", id="clv-mix"
    ),
]


@pytest.mark.parametrize(("text", "pointer", "message"), NEW_BAD_RULES)
def test_bad_new_conditions_are_refused_at_the_exact_json_pointer(
    text: Any, pointer: str, message: str
) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(text)
    assert caught.value.pointer == pointer
    assert message in caught.value.message


def test_the_brief_example_rule_parses_and_answers() -> None:
    rule = link_rules(
        {
            "churned": parse_rule({"lifecycle": "churned"}),
            "monthly-mum-5000": parse_rule(
                {
                    "all": [
                        {"trait": "gender", "eq": "female"},
                        {"trait": "has_kids", "eq": True},
                        {"trait": "region", "in": ["CFD"]},
                        {"stat": "avg_check", "between": [4000, 6000]},
                        {"rhythm": "median_days_between_orders", "between": [25, 35]},
                        {"stat": "last_order_at", "older_than": "7d"},
                        {"opens": "email", "local_hours": [23, 5], "share_at_least": 0.5},
                        {"bought": {"category": "pet-food"}, "within": "90d"},
                        {"not": {"segment": "churned"}},
                    ]
                }
            ),
        }
    )["monthly-mum-5000"]
    mum = ordering_every([30, 29], last=NOW - 8 * DAY)
    mum.revenue_total = Decimal("15000.00")
    mum.traits = {"gender": "female", "has_kids": True, "region": "CFD"}
    mum.open_hours = {"email": [2] + [0] * 22 + [1]}
    mum.categories = {"pet-food": Purchases(3, 3, NOW - 8 * DAY)}

    assert rule.holds(mum, NOW) is True
    assert rule.next_change(mum, NOW) is not None


def test_linking_leniently_leaves_out_the_segments_that_cannot_be_linked() -> None:
    errors: dict[str, RuleError] = {}
    linked = link_rules(
        {
            "buyers": parse_rule({"stat": "orders_count", "at_least": 1}),
            "typo": parse_rule({"segment": "byuers"}),
            "on-typo": parse_rule({"not": {"segment": "typo"}}),
            "fine": parse_rule({"segment": "buyers"}),
        },
        errors,
    )

    assert set(linked) == {"buyers", "fine"}
    assert set(errors) == {"typo", "on-typo"}
    assert errors["typo"].pointer == "/segment"
    assert errors["on-typo"].pointer == "/not/segment"


def test_an_edited_rule_that_closes_a_cycle_is_refused_when_linked_with_those_in_force() -> None:
    in_force = {
        "a": parse_rule({"stat": "orders_count", "at_least": 1}),
        "b": parse_rule({"segment": "a"}),
    }
    with pytest.raises(RuleError, match="a -> b -> a"):
        link_rules({**in_force, "a": parse_rule({"segment": "b"})})


# --- any input: a condition or a RuleError, never a crash ----------------------------

_KEYS = st.sampled_from(
    [
        *KINDS,
        "eq",
        "in",
        "exists",
        "at_least",
        "at_most",
        "between",
        "within",
        "not_within",
        "older_than",
        "overdue_by",
        "local_hours",
        "share_at_least",
        "category",
        "sku",
        "store",
        "r",
        "f",
        "m",
        "below",
        "above",
        "top_share",
        "x",
    ]
)
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-30, max_value=30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "",
            "7d",
            "12h",
            "90d",
            "401d",
            "female",
            "email",
            "champions",
            "pre-churn",
            "median_days_between_orders",
            "expected_next_order_at",
            "avg_check",
            "a/b~c",
        ]
    ),
)
_TREES = st.recursive(
    _LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(_KEYS, children, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, database=None)
@given(tree=_TREES)
def test_any_json_is_a_condition_or_a_rule_error_at_a_pointer(tree: Any) -> None:
    error: RuleError | None = None
    try:
        condition = parse_rule(tree)
    except RuleError as exc:
        error = exc
    if error is None:
        assert isinstance(condition, Condition)
    else:
        assert error.pointer.startswith("/")
        assert error.message
