"""The segment rule language: what each condition answers, reads, and when it can flip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from shared.domain.profile import Profile
from shared.domain.rules import (
    AllOf,
    AnyOf,
    Not,
    RuleError,
    StatCompare,
    StatTime,
    parse_duration,
    parse_rule,
)

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
        {"segment": "churned"}, "/", "expected one of: all, any, not, stat", id="unknown-kind"
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
