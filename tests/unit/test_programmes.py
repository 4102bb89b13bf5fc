"""Programmes on plain data and a simulated clock: how a buyer walks the steps, and the
documents a programme is written as (refused at the bad field)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.profile import Profile, Tally
from shared.domain.programmes import (
    BUILTIN_PROGRAMMES,
    Position,
    Programme,
    ProgrammeError,
    Relocation,
    Walk,
    enter,
    parse_programme,
    relocate,
    variant_for,
    walk,
)
from tests.unit.builders import T0

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
TEMPLATES = {
    "email": {"win-back-email", "other-email"},
    "sms": {"win-back-sms"},
    "push": {"pre-churn-push"},
}


def programme(*steps: dict[str, Any], **header: Any) -> Programme:
    document: dict[str, Any] = {
        "key": "test-programme",
        "name": "Test",
        "status": "active",
        "trigger": {"segment": "no-order-30d"},
        "steps": list(steps),
    }
    document.update(header)
    return parse_programme(document, templates=TEMPLATES)


def email(step_id: str = "email", **fields: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "send": {"channels": ["email"], "templates": {"email": "win-back-email"}},
        **fields,
    }


def sms(step_id: str = "sms", **fields: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "send": {"channels": ["sms"], "templates": {"sms": "win-back-sms"}},
        **fields,
    }


def wait(step_id: str, **until: Any) -> dict[str, Any]:
    return {"id": step_id, "wait": until}


def buyer(profile_id: str = "p-1", **fields: Any) -> Profile:
    return Profile(id=profile_id, email="anna@example.com", phone="+79161234567", **fields)


def start(p: Programme, profile_id: str = "p-1", at: datetime = T0) -> Position:
    return enter(p, profile_id, "occ-1", at).position


def step(p: Programme, position: Position, profile: Profile, now: datetime, **kw: Any) -> Walk:
    return walk(p, position, profile, now, zone=kw.pop("zone", UTC_ZONE), **kw)


WIN_BACK = next(p for p in BUILTIN_PROGRAMMES if p.key == "win-back")


# --- walking ------------------------------------------------------------------------------


def test_the_win_back_programme_sends_an_email_then_an_sms_a_week_later_then_sunsets() -> None:
    anna = buyer()
    first = step(WIN_BACK, start(WIN_BACK), anna, T0)
    assert [s.step.id for s in first.sends] == ["email"]
    assert first.position is not None
    assert first.position.step == "pause"
    assert first.position.due_at == T0 + timedelta(days=7)

    early = step(WIN_BACK, first.position, anna, T0 + timedelta(days=6))
    assert early.sends == ()
    assert early.position == first.position

    second = step(WIN_BACK, first.position, anna, T0 + timedelta(days=7))
    assert [s.step.id for s in second.sends] == ["sms"]
    assert second.position is not None
    assert second.position.due_at == T0 + timedelta(days=30)

    last = step(WIN_BACK, second.position, anna, T0 + timedelta(days=30))
    assert last.sends == ()
    assert last.position is None
    assert last.exited == "sunset"


def test_a_buyer_who_orders_after_the_first_step_gets_nothing_more() -> None:
    first = step(WIN_BACK, start(WIN_BACK), buyer(), T0)
    assert first.position is not None
    ordered = buyer(last_order_at=T0 + timedelta(days=2), orders_count=1)
    woken = step(WIN_BACK, first.position, ordered, T0 + timedelta(days=7))
    assert woken.sends == ()
    assert woken.exited == "goal"


def test_an_order_before_entry_does_not_count_as_the_goal() -> None:
    old_buyer = buyer(last_order_at=T0 - timedelta(days=31), orders_count=3)
    assert [s.step.id for s in step(WIN_BACK, start(WIN_BACK), old_buyer, T0).sends] == ["email"]


def test_walking_again_from_the_answer_at_the_same_moment_does_nothing_more() -> None:
    first = step(WIN_BACK, start(WIN_BACK), buyer(), T0 + timedelta(days=7))
    assert first.position is not None
    again = step(WIN_BACK, first.position, buyer(), T0 + timedelta(days=7))
    assert again.sends == ()
    assert again.passed == ()
    assert again.position == first.position


def test_every_step_of_every_entry_has_its_own_message_key_and_the_same_one_every_time() -> None:
    first = step(WIN_BACK, start(WIN_BACK), buyer(), T0)
    assert first.position is not None
    second = step(WIN_BACK, first.position, buyer(), T0 + timedelta(days=7))
    keys = [first.sends[0].key, second.sends[0].key]
    assert len(set(keys)) == 2
    assert step(WIN_BACK, start(WIN_BACK), buyer(), T0).sends[0].key == keys[0]
    other_entry = enter(WIN_BACK, "p-1", "occ-2", T0).position
    assert step(WIN_BACK, other_entry, buyer(), T0).sends[0].key not in keys


def test_a_late_wake_up_measures_the_next_wait_from_when_the_first_one_ended() -> None:
    p = programme(wait("one", **{"for": "1d"}), wait("two", **{"for": "1d"}), email(), sms())
    first = step(p, start(p), buyer(), T0)
    assert first.position is not None
    assert first.position.due_at == T0 + timedelta(days=1)
    late = step(p, first.position, buyer(), T0 + timedelta(days=1, hours=6))
    assert late.position is not None
    assert late.position.step == "two"
    assert late.position.due_at == T0 + timedelta(days=2)
    assert late.sends == ()


def test_a_wait_of_days_keeps_the_local_time_across_the_change_to_summer_time() -> None:
    p = programme(email(), wait("pause", **{"for": "1d"}), sms())
    saturday = datetime(2024, 3, 30, 9, 0, tzinfo=UTC)  # 10:00 in Berlin, winter time
    first = step(p, start(p, at=saturday), buyer(), saturday, zone=BERLIN)
    assert first.position is not None
    due = first.position.due_at
    assert due is not None
    assert due.astimezone(BERLIN).hour == 10
    assert due - saturday == timedelta(hours=23)


def test_a_wait_of_hours_is_elapsed_time_across_the_change_to_summer_time() -> None:
    p = programme(email(), wait("pause", **{"for": "24h"}), sms())
    saturday = datetime(2024, 3, 30, 9, 0, tzinfo=UTC)
    first = step(p, start(p, at=saturday), buyer(), saturday, zone=BERLIN)
    assert first.position is not None
    assert first.position.due_at == saturday + timedelta(hours=24)
    assert first.position.due_at.astimezone(BERLIN).hour == 11


def test_a_wait_until_a_local_time_is_the_next_one_on_the_buyers_clock() -> None:
    p = programme(email(), wait("morning", until="10:00"), sms())
    evening = datetime(2024, 10, 26, 20, 0, tzinfo=UTC)  # 22:00 in Berlin, summer time
    first = step(p, start(p, at=evening), buyer(), evening, zone=BERLIN)
    assert first.position is not None
    assert first.position.due_at is not None
    local = first.position.due_at.astimezone(BERLIN)
    assert (local.day, local.hour, local.minute) == (27, 10, 0)  # winter time from 03:00
    assert first.position.due_at == datetime(2024, 10, 27, 9, 0, tzinfo=UTC)


def test_a_best_hour_wait_waits_for_the_hour_the_buyer_opens_most() -> None:
    p = programme(wait("hour", best_hour=True), email())
    hours = [0] * 24
    hours[19] = 9
    first = step(p, start(p), buyer(), T0, open_hours=hours)
    assert first.position is not None
    assert first.position.due_at == T0.replace(hour=19)
    woken = step(p, first.position, buyer(), T0.replace(hour=19), open_hours=hours)
    assert [s.step.id for s in woken.sends] == ["email"]


def test_a_best_hour_wait_without_any_hour_known_goes_on_at_once() -> None:
    p = programme(wait("hour", best_hour=True), email())
    assert [s.step.id for s in step(p, start(p), buyer(), T0).sends] == ["email"]


def test_an_event_wait_goes_on_when_the_event_happens_and_to_its_timeout_path_otherwise() -> None:
    p = programme(
        email(),
        {
            "id": "browse",
            "wait": {"event": "track", "name": "viewed", "timeout": "2d"},
            "next": "end",
            "on_timeout": "sms",
        },
        sms(next=None),
        {"id": "end", "exit": {"reason": "viewed"}},
    )
    first = step(p, start(p), buyer(), T0)
    assert first.position is not None
    assert first.position.due_at == T0 + timedelta(days=2)
    viewed = buyer(tracked={"viewed": Tally(1, T0 + timedelta(hours=5))})
    woken = step(p, first.position, viewed, T0 + timedelta(hours=5))
    assert woken.sends == ()
    assert woken.exited == "viewed"
    timed_out = step(p, first.position, buyer(), T0 + timedelta(days=2))
    assert [s.step.id for s in timed_out.sends] == ["sms"]
    assert timed_out.exited == "end"


def test_a_branch_on_a_response_follows_what_the_buyer_did_with_the_earlier_message() -> None:
    p = programme(
        email(),
        wait("pause", **{"for": "3d"}),
        {
            "id": "opened",
            "branch": {"response": {"step": "email", "is": "opened"}},
            "then": "end",
            "else": "sms",
        },
        sms(next=None),
        {"id": "end", "exit": {}},
    )
    first = step(p, start(p), buyer(), T0)
    assert first.position is not None
    later = T0 + timedelta(days=3)
    opened = step(p, first.position, buyer(), later, responses={"email": {"delivered", "opened"}})
    assert opened.sends == ()
    assert opened.exited == "end"
    silent = step(p, first.position, buyer(), later, responses={"email": {"delivered"}})
    assert [s.step.id for s in silent.sends] == ["sms"]


def test_a_branch_on_a_rule_reads_the_buyer_at_that_moment() -> None:
    p = programme(
        {
            "id": "big",
            "branch": {"rule": {"stat": "orders_count", "at_least": 3}},
            "then": "sms",
            "else": "email",
        },
        email(next=None),
        sms(next=None),
    )
    assert [s.step.id for s in step(p, start(p), buyer(orders_count=5), T0).sends] == ["sms"]
    assert [s.step.id for s in step(p, start(p), buyer(orders_count=1), T0).sends] == ["email"]


def test_leaving_the_audience_exits_the_buyer_at_the_next_step() -> None:
    p = programme(
        email(),
        wait("pause", **{"for": "1d"}),
        sms(),
        audience={"stat": "orders_count", "at_most": 3},
    )
    first = step(p, start(p), buyer(orders_count=1), T0)
    assert first.position is not None
    woken = step(p, first.position, buyer(orders_count=4), T0 + timedelta(days=1))
    assert woken.sends == ()
    assert woken.exited == "left_audience"


def test_a_split_sends_each_arm_its_share_and_each_buyer_always_the_same_arm() -> None:
    p = programme(
        {"id": "ab", "split": [{"share": 0.25, "next": "email"}, {"share": 0.75, "next": "sms"}]},
        email(next=None),
        sms(next=None),
    )
    arms = Counter(
        step(p, start(p, f"p-{i}"), buyer(f"p-{i}"), T0).sends[0].step.id for i in range(4000)
    )
    assert 900 <= arms["email"] <= 1100
    assert arms["email"] + arms["sms"] == 4000
    assert {step(p, start(p, "p-7"), buyer("p-7"), T0).sends[0].step.id for _ in range(5)} == {
        step(p, start(p, "p-7"), buyer("p-7"), T0).sends[0].step.id
    }


def test_content_variants_are_drawn_by_share_and_fixed_per_buyer() -> None:
    p = programme(
        {
            "id": "email",
            "send": {
                "channels": ["email"],
                "variants": [
                    {"name": "a", "share": 0.5, "templates": {"email": "win-back-email"}},
                    {"name": "b", "share": 0.5, "templates": {"email": "other-email"}},
                ],
            },
        }
    )
    send = p.sends[0]
    names = Counter(variant_for(p, send, f"p-{i}").name for i in range(4000))
    assert 1850 <= names["a"] <= 2150
    sent = step(p, start(p, "p-3"), buyer("p-3"), T0).sends[0]
    assert sent.variant == variant_for(p, send, "p-3")
    assert dict(sent.variant.templates) == {
        "email": "win-back-email" if sent.variant.name == "a" else "other-email"
    }


def test_the_programme_holdout_is_drawn_once_at_entry_by_its_share() -> None:
    p = programme(email(), holdout=0.2)
    held = sum(enter(p, f"p-{i}", "occ", T0).holdout for i in range(5000))
    assert 900 <= held <= 1100
    assert enter(p, "p-1", "occ-1", T0).holdout == enter(p, "p-1", "occ-9", T0).holdout


def test_a_send_steps_own_holdout_skips_its_message_and_goes_on() -> None:
    p = programme(
        {
            "id": "email",
            "send": {
                "channels": ["email"],
                "templates": {"email": "win-back-email"},
                "holdout": 0.5,
            },
        },
        sms(),
    )
    walks = [step(p, start(p, f"p-{i}"), buyer(f"p-{i}"), T0) for i in range(2000)]
    skipped = [w for w in walks if w.held_out == ("email",)]
    assert 850 <= len(skipped) <= 1150
    assert all([s.step.id for s in w.sends] == ["sms"] for w in skipped)


# --- versions ------------------------------------------------------------------------------


def test_an_edited_programme_keeps_buyers_on_their_version_unless_told_to_move() -> None:
    first = step(WIN_BACK, start(WIN_BACK), buyer(), T0)
    assert first.position is not None
    document = {**WIN_BACK.document, "version": 2}
    document["steps"] = [*document["steps"][:2], sms("sms-2"), *document["steps"][3:]]
    edited = parse_programme(document)
    now = T0 + timedelta(days=1)
    assert relocate(first.position, edited, Relocation(), now) == first.position
    moved = relocate(first.position, edited, Relocation("same_step"), now)
    assert moved.version == 2
    assert moved.step == "pause"
    assert moved.due_at == first.position.due_at
    woken = step(edited, moved, buyer(), T0 + timedelta(days=7))
    assert [s.step.id for s in woken.sends] == ["sms-2"]


def test_a_restart_on_a_new_version_never_sends_a_step_of_the_same_id_twice() -> None:
    first = step(WIN_BACK, start(WIN_BACK), buyer(), T0)
    assert first.position is not None
    edited = parse_programme({**WIN_BACK.document, "version": 2})
    restarted = relocate(first.position, edited, Relocation("restart"), T0 + timedelta(days=1))
    again = step(edited, restarted, buyer(), T0 + timedelta(days=1))
    assert again.sends[0].key == first.sends[0].key  # the message table refuses it


def test_a_position_is_walked_only_on_its_own_version() -> None:
    edited = parse_programme({**WIN_BACK.document, "version": 2})
    with pytest.raises(ValueError, match="v1"):
        step(edited, start(WIN_BACK), buyer(), T0)


@settings(max_examples=60, deadline=None)
@given(
    wakes=st.lists(st.integers(min_value=0, max_value=90 * 24), min_size=1, max_size=12),
    ordered_after=st.one_of(st.none(), st.integers(min_value=1, max_value=90 * 24)),
)
def test_any_sequence_of_wake_ups_sends_each_step_at_most_once_and_in_order(
    wakes: list[int], ordered_after: int | None
) -> None:
    profile = buyer()
    if ordered_after is not None:
        profile = replace(profile, last_order_at=T0 + timedelta(hours=ordered_after))
    position: Position | None = start(WIN_BACK)
    sent: list[str] = []
    for hours in sorted(wakes):
        if position is None:
            break
        now = T0 + timedelta(hours=hours)
        seen = profile if ordered_after is not None and ordered_after <= hours else buyer()
        done = step(WIN_BACK, position, seen, now)
        sent.extend(s.step.id for s in done.sends)
        position = done.position
    assert sent == ["email", "sms"][: len(sent)]
    if ordered_after is not None:
        assert "sms" not in sent or ordered_after > 7 * 24


# --- the documents ---------------------------------------------------------------------------


def test_every_ready_made_programme_parses_as_a_draft_with_its_steps() -> None:
    keys = {p.key for p in BUILTIN_PROGRAMMES}
    assert keys == {
        "welcome",
        "second-order",
        "win-back",
        "monthly-basket",
        "pre-churn",
        "abandoned-cart",
    }
    assert all(p.status == "draft" and p.holdout == 0.1 for p in BUILTIN_PROGRAMMES)


@pytest.mark.parametrize(
    ("steps", "pointer", "words"),
    [
        ([], "/steps", "non-empty"),
        ([email(), email()], "/steps/1/id", "twice"),
        ([email(next="nowhere")], "/steps/0/next", "id of a step"),
        ([email(next="email")], "/steps/0/next", "itself"),
        ([email(next="sms"), sms(next="email")], "/steps/1", "loop"),
        ([email(next=None), sms()], "/steps/1/id", "cannot be reached"),
        ([{"id": "x", "send": {}, "wait": {}}], "/steps/0", "exactly one"),
        ([wait("w", **{"for": "0m"})], "/steps/0/wait/for", "longer than zero"),
        ([wait("w", until="25:00")], "/steps/0/wait/until", "HH:MM"),
        ([wait("w", event="purchase")], "/steps/0/wait/timeout", "required"),
        ([wait("w", event="identify", timeout="1d")], "/steps/0/wait/event", "expected one of"),
        (
            [{"id": "s", "split": [{"share": 0.5, "next": None}, {"share": 0.4, "next": None}]}],
            "/steps/0/split",
            "add up to 0.9",
        ),
        (
            [
                {"id": "b", "branch": {"response": {"step": "email", "is": "opened"}}},
                email(),
            ],
            "/steps/0/branch/response/step",
            "does not come before",
        ),
        (
            [{"id": "e", "send": {"channels": ["email"], "templates": {"email": "nope"}}}],
            "/steps/0/send/templates/email",
            "no email template",
        ),
        (
            [{"id": "e", "send": {"channels": ["sms"], "templates": {"email": "win-back-email"}}}],
            "/steps/0/send/channels/0",
            "no template for 'sms'",
        ),
        (
            [{"id": "b", "branch": {"rule": {"stat": "nope", "at_least": 1}}}, email()],
            "/steps/0/branch/rule/stat",
            "unknown stat 'nope'",
        ),
    ],
)
def test_a_bad_programme_is_refused_at_the_bad_field(
    steps: list[dict[str, Any]], pointer: str, words: str
) -> None:
    with pytest.raises(ProgrammeError) as refused:
        programme(*steps)
    assert refused.value.pointer.startswith(pointer), refused.value
    assert words in refused.value.message


def test_a_programme_without_a_known_trigger_is_refused_at_the_trigger() -> None:
    with pytest.raises(ProgrammeError) as refused:
        programme(email(), trigger={"when": "now"})
    assert refused.value.pointer == "/trigger"
    with pytest.raises(ProgrammeError) as unknown:
        parse_programme(
            {"key": "x", "name": "X", "trigger": {"everyone_in": "nope"}, "steps": [email()]},
            segments={"no-order-30d"},
        )
    assert unknown.value.pointer == "/trigger/everyone_in"
