"""One contract for the store port, run against SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from shared.adapters.store.sql import SqlStore
from shared.domain.decisions import Reason
from shared.domain.profile import Basket, Engagement, Purchases, Tally
from shared.domain.segments import MembershipChange
from shared.ports.store import MessageOutcome, MessageRecord, OutgoingRecord
from tests.conftest import T0
from tests.contract.on_store import OnStore, merge


def _message(key: str, status: str = "sending") -> MessageRecord:
    return MessageRecord(
        key=key,
        campaign="win-back-30d",
        profile_id="p1",
        channel="email",
        occurrence_id="o1",
        status=status,
        created_at=T0,
    )


class StoreContract(OnStore):
    async def test_an_event_is_claimed_only_once(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            assert await uow.inbox.claim(["e-1", "e-1"], T0) == {"e-1"}
            assert await uow.inbox.claim(["e-1"], T0) == set()
            await uow.commit()
        async with store.unit_of_work() as uow:
            assert await uow.inbox.claim(["e-1", "e-2"], T0) == {"e-2"}

    async def test_nothing_is_kept_without_commit(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            await uow.inbox.claim(["e-1"], T0)
            await uow.profiles.resolve([{"id": "c1"}], T0)
        async with store.unit_of_work() as uow:
            assert await uow.inbox.claim(["e-1"], T0) == {"e-1"}
            (profile,) = (await uow.profiles.resolve([{"id": "c1"}], T0)).profiles
            assert profile.orders_count == 0

    async def test_a_new_buyer_gets_the_same_id_each_time_the_same_events_are_replayed(
        self, store: SqlStore
    ) -> None:
        # Holdout draws are keyed on the buyer's id: a replay (or a seeded demo) that
        # drew new ids would hold out other buyers each time.
        ids = []
        for _ in range(2):
            async with store.unit_of_work() as uow:
                resolved = await uow.profiles.resolve([{"id": "c1"}, {"id": "c2"}], T0)
                ids.append([p.id for p in resolved.profiles])
        assert ids[0] == ids[1]
        assert ids[0][0] != ids[0][1]

    async def test_a_profile_is_found_again_by_any_of_its_identifiers(
        self, store: SqlStore
    ) -> None:
        async with store.unit_of_work() as uow:
            (first,) = (
                await uow.profiles.resolve([{"id": "c1", "email": "anna@shop.ru"}], T0)
            ).profiles
            await uow.commit()
        async with store.unit_of_work() as uow:
            by_email, by_id_and_phone, other = (
                await uow.profiles.resolve(
                    [
                        {"email": "anna@shop.ru"},
                        {"id": "c1", "phone": "+79161234567"},
                        {"id": "c2"},
                    ],
                    T0,
                )
            ).profiles
            await uow.commit()
        assert by_email.id == first.id
        assert by_id_and_phone.id == first.id
        assert other.id != first.id
        async with store.unit_of_work() as uow:
            found = await uow.profiles.find("phone", "+79161234567")
            missing = await uow.profiles.find("phone", "+79160000000")
        assert found is not None
        assert found.id == first.id
        assert missing is None

    async def test_one_batch_resolves_one_buyer_to_one_profile(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            a, b, c = (
                await uow.profiles.resolve(
                    [
                        {"bank_card_token": "tok-1"},
                        {"id": "c9", "bank_card_token": "tok-1"},
                        {"id": "c9"},
                    ],
                    T0,
                )
            ).profiles
            await uow.commit()
        assert a is b
        assert b is c
        async with store.unit_of_work() as uow:
            found = await uow.profiles.find("id", "c9")
        assert found is not None
        assert found.id == a.id

    async def test_one_set_naming_two_buyers_merges_them_into_the_strongest(
        self, store: SqlStore
    ) -> None:
        async with store.unit_of_work() as uow:
            known, anonymous = (
                await uow.profiles.resolve([{"loyalty_card": "L-1"}, {"bank_card_token": "t"}], T0)
            ).profiles
            await uow.messages.begin(
                MessageRecord("m-1", "c", anonymous.id, "email", "o", "sent", T0)
            )
            await uow.memberships.apply(
                [MembershipChange("entered", "no-order-30d", anonymous.id, T0, "o")]
            )
            await uow.commit()
        async with store.unit_of_work() as uow:
            resolution = await uow.profiles.resolve(
                [{"loyalty_card": "L-1", "bank_card_token": "t"}, {"bank_card_token": "t"}], T0
            )
            assert resolution.merges == [(anonymous.id, known.id)]
            assert [p.id for p in resolution.profiles] == [known.id, known.id]
            assert set(resolution.loaded) == {known.id, anonymous.id}
            await uow.profiles.merge(anonymous.id, known.id)
            tombstone = resolution.loaded[anonymous.id]
            tombstone.merged_into = known.id
            await uow.profiles.save([tombstone], T0)
            await uow.commit()
        async with store.unit_of_work() as uow:
            by_token = await uow.profiles.find("bank_card_token", "t")
            current = await uow.profiles.current(anonymous.id)
            message = await uow.messages.get("m-1")
            stays = await uow.memberships.of([anonymous.id])
        assert by_token is not None
        assert by_token.id == known.id
        assert current is not None
        assert current.id == known.id
        assert message is not None
        assert message.profile_id == known.id
        assert stays == {anonymous.id: {}}

    async def test_open_hours_are_summed_over_a_sample_of_buyers_from_an_id_on(
        self, store: SqlStore
    ) -> None:
        opens: dict[str, int] = {}
        async with store.unit_of_work() as uow:
            resolved = await uow.profiles.resolve([{"id": f"opener-{n}"} for n in range(3)], T0)
            for n, profile in enumerate(resolved.profiles):
                hours = [0] * 24
                hours[17] = opens[profile.id] = n + 1
                profile.open_hours = {"email": hours, "sms": [1] * 24}
            await uow.profiles.save(resolved.profiles, T0)
            await uow.commit()
        first, second, third = sorted(opens)
        async with store.unit_of_work() as uow:
            everyone = await uow.profiles.open_hours_sample("email", start="", limit=10)
            from_second = await uow.profiles.open_hours_sample("email", start=second, limit=2)
            only_first = await uow.profiles.open_hours_sample("email", start="", limit=1)
        assert everyone == [0] * 17 + [6] + [0] * 6
        assert from_second[17] == opens[second] + opens[third]
        assert only_first[17] == opens[first]
        async with store.unit_of_work() as uow:
            wrapped = await uow.profiles.open_hours_sample("email", start=third, limit=2)
        assert wrapped[17] == opens[third] + opens[first], "past the last id, on from the first"

    async def test_money_and_moments_come_back_exactly(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            (profile,) = (await uow.profiles.resolve([{"id": "c1"}], T0)).profiles
            profile.orders_count = 3
            profile.revenue_total = Decimal("12345.67")
            profile.first_order_at = T0 - timedelta(days=40, microseconds=5)
            profile.last_order_at = T0
            profile.email = "anna@shop.ru"
            await uow.profiles.save([profile], T0)
            await uow.commit()
        async with store.unit_of_work() as uow:
            again = await uow.profiles.get(profile.id)
        assert again == profile
        assert again is not None
        assert again.last_order_at is not None
        assert again.last_order_at.tzinfo is not None

    async def test_the_facts_of_every_event_type_come_back_exactly(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            (profile,) = (await uow.profiles.resolve([{"id": "c1"}], T0)).profiles
            profile.refunds_count = 2
            profile.refunds_total = Decimal("99.99")
            profile.traits = {"gender": "female", "kids": 2, "has_pets": True, "check": 4999.5}
            profile.consents = {"email": False, "sms": True}
            profile.tracked = {"cart_updated": Tally(3, T0 - timedelta(hours=1, microseconds=7))}
            profile.engagement = {
                "email": Engagement(delivered=4, opens=3, clicks=1, bounces=1, last_open_at=T0),
                "push": Engagement(opens=1, last_click_at=T0 - timedelta(days=1)),
            }
            profile.suppressions = {"sms": "complained"}
            await uow.profiles.save([profile], T0)
            await uow.commit()
        async with store.unit_of_work() as uow:
            again = await uow.profiles.get(profile.id)
        assert again == profile
        assert again is not None
        assert again.tracked["cart_updated"].last_at == profile.tracked["cart_updated"].last_at
        assert type(again.traits["check"]) is float

    async def test_the_behaviour_and_scores_of_a_buyer_come_back_exactly(
        self, store: SqlStore
    ) -> None:
        async with store.unit_of_work() as uow:
            (profile,) = (await uow.profiles.resolve([{"id": "c1"}], T0)).profiles
            profile.order_moments = [
                T0 - timedelta(days=60, microseconds=3),
                T0 - timedelta(days=30),
            ]
            profile.baskets = [
                Basket(T0 - timedelta(days=60), {"milk-1l": 2, "bread": 1}),
                Basket(T0 - timedelta(days=30), {"milk-1l": 3}),
            ]
            profile.categories = {"dairy": Purchases(2, 5, T0 - timedelta(days=30))}
            profile.skus = {
                "milk-1l": Purchases(2, 5, T0 - timedelta(days=30)),
                "bread": Purchases(1, 1, T0 - timedelta(days=60)),
            }
            profile.stores = {"msk-01": Purchases(2, 6, T0 - timedelta(days=30))}
            profile.tracked_days = {"cart_updated": {T0.date(): 3, T0.date() - timedelta(1): 1}}
            profile.open_hours = {"email": [0] * 23 + [4]}
            profile.rfm_r, profile.rfm_f, profile.rfm_m = 5, 3, 1
            profile.rfm_segment = "potential-loyalist"
            profile.p_alive = 0.8125
            profile.expected_purchases = 1.25
            profile.expected_spend = Decimal("1234.56")
            profile.clv = Decimal("98765.43")
            profile.clv_share = 0.015
            profile.scored_at = T0
            await uow.profiles.save([profile], T0)
            await uow.commit()
        async with store.unit_of_work() as uow:
            again = await uow.profiles.get(profile.id)
        assert again == profile
        assert again is not None
        assert again.median_days_between_orders == profile.median_days_between_orders
        assert again.standard_basket == [("milk-1l", 3), ("bread", 1)]

    async def test_a_new_profile_has_no_facts_yet(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            (profile,) = (await uow.profiles.resolve([{"id": "c1"}], T0)).profiles
        assert (profile.traits, profile.consents, profile.tracked) == ({}, {}, {})
        assert (profile.engagement, profile.suppressions) == ({}, {})
        assert profile.refunds_total == Decimal("0.00")

    async def test_every_profile_is_found_by_its_own_id_also_after_a_merge(
        self, store: SqlStore
    ) -> None:
        async with store.unit_of_work() as uow:
            known, anonymous = (
                await uow.profiles.resolve([{"loyalty_card": "L-1"}, {"bank_card_token": "t"}], T0)
            ).profiles
            await uow.commit()
        async with store.unit_of_work() as uow:
            (by_own_id,) = (await uow.profiles.resolve([{"profile_id": known.id}], T0)).profiles
            assert by_own_id.id == known.id
            resolution = await uow.profiles.resolve(
                [{"loyalty_card": "L-1", "bank_card_token": "t"}], T0
            )
            assert resolution.merges == [(anonymous.id, known.id)]
            await uow.profiles.merge(anonymous.id, known.id)
            await uow.commit()
        async with store.unit_of_work() as uow:
            found = await uow.profiles.find("profile_id", anonymous.id)
        assert found is not None
        assert found.id == known.id

    async def test_an_unknown_profile_id_starts_a_buyer_with_that_id(self, store: SqlStore) -> None:
        gone = "0b3e2c1a-7f4d-4e5b-9a8c-1d2e3f4a5b6c"
        async with store.unit_of_work() as uow:
            (profile,) = (await uow.profiles.resolve([{"profile_id": gone}], T0)).profiles
            await uow.commit()
        assert profile.id == gone
        async with store.unit_of_work() as uow:
            found = await uow.profiles.find("profile_id", gone)
        assert found is not None
        assert found.id == gone

    async def test_memberships_enter_and_exit(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            (profile,) = (await uow.profiles.resolve([{"id": "c1"}], T0)).profiles
            await uow.memberships.apply(
                [
                    MembershipChange("entered", "no-order-30d", profile.id, T0, "o1"),
                    MembershipChange("entered", "vip", profile.id, T0, "o2"),
                ]
            )
            await uow.commit()
        async with store.unit_of_work() as uow:
            assert await uow.memberships.of([profile.id]) == {
                profile.id: {"no-order-30d": T0, "vip": T0}
            }
            later = T0 + timedelta(days=1)
            await uow.memberships.apply(
                [MembershipChange("exited", "vip", profile.id, later, "o2")]
            )
            await uow.commit()
        async with store.unit_of_work() as uow:
            assert await uow.memberships.of([profile.id, "nobody"]) == {
                profile.id: {"no-order-30d": T0},
                "nobody": {},
            }

    async def test_memberships_changes_in_one_apply_leave_the_last_stay(
        self, store: SqlStore
    ) -> None:
        """Changes applied together are netted per buyer and segment, in order: an exit
        and a re-entry leave the new stay; an entry and an exit, none."""
        later, latest = T0 + timedelta(days=1), T0 + timedelta(days=2)
        async with store.unit_of_work() as uow:
            one, two = (await uow.profiles.resolve([{"id": "c1"}, {"id": "c2"}], T0)).profiles
            await uow.memberships.apply([MembershipChange("entered", "vip", one.id, T0, "o1")])
            await uow.commit()
        async with store.unit_of_work() as uow:
            await uow.memberships.apply(
                [
                    MembershipChange("exited", "vip", one.id, later, "o1"),
                    MembershipChange("entered", "lapsed", two.id, later, "o3"),
                    MembershipChange("entered", "vip", one.id, latest, "o4"),
                    MembershipChange("entered", "new", one.id, later, "o5"),
                    MembershipChange("exited", "lapsed", two.id, latest, "o3"),
                    MembershipChange("exited", "new", one.id, latest, "o5"),
                    MembershipChange("entered", "new", two.id, latest, "o6"),
                ]
            )
            await uow.commit()
        async with store.unit_of_work() as uow:
            assert await uow.memberships.of([one.id, two.id]) == {
                one.id: {"vip": latest},
                two.id: {"new": latest},
            }

    async def test_only_due_timers_wake_earliest_first(self, store: SqlStore) -> None:
        timers = [T0 + timedelta(days=2), T0 + timedelta(days=1), T0 + timedelta(days=30), None]
        async with store.unit_of_work() as uow:
            ids = []
            profiles = (
                await uow.profiles.resolve([{"id": f"c{i}"} for i in range(4)], T0)
            ).profiles
            for profile, due in zip(profiles, timers, strict=True):
                profile.next_timer_at = due
                ids.append(profile.id)
            await uow.profiles.save(profiles, T0)
            await uow.commit()
        async with store.unit_of_work() as uow:
            assert await uow.timers.due(T0, 10) == []
            assert await uow.timers.due(T0 + timedelta(days=2), 10) == [ids[1], ids[0]]
            assert await uow.timers.due(T0 + timedelta(days=2), 1) == [ids[1]]
            moved = await uow.profiles.get(ids[1])
            assert moved is not None
            moved.next_timer_at = T0 + timedelta(days=60)
            await uow.profiles.save([moved], T0)
            assert await uow.timers.due(T0 + timedelta(days=2), 10) == [ids[0]]

    async def test_outbox_hands_out_unpublished_records_in_order(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            await uow.outbox.add(
                [OutgoingRecord("t.changes", b"k", f"v{n}".encode()) for n in range(5)], T0
            )
            await uow.commit()
        async with store.unit_of_work() as uow:
            first = await uow.outbox.claim(3)
            assert [r.value for r in first] == [b"v0", b"v1", b"v2"]
            await uow.outbox.mark_published([r.id for r in first], T0)
            await uow.commit()
        async with store.unit_of_work() as uow:
            rest = await uow.outbox.claim(10)
        assert [r.value for r in rest] == [b"v3", b"v4"]
        assert all(r.topic == "t.changes" and r.key == b"k" for r in rest)

    async def test_a_message_key_is_begun_once(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            assert await uow.messages.begin(_message("m-1"))
            assert not await uow.messages.begin(_message("m-1", status="sent"))
            await uow.commit()
        async with store.unit_of_work() as uow:
            assert not await uow.messages.begin(_message("m-1"))
            await uow.messages.finish(
                "m-1", MessageOutcome("sent", T0, provider_message_id="<m-1@shop>")
            )
            await uow.commit()
        async with store.unit_of_work() as uow:
            record = await uow.messages.get("m-1")
            assert [m.key for m in await uow.messages.all()] == ["m-1"]
        assert record is not None
        assert (record.status, record.provider_message_id) == ("sent", "<m-1@shop>")

    async def test_many_messages_are_finished_at_once_as_one_by_one(self, store: SqlStore) -> None:
        outcomes = [
            MessageOutcome("sent", T0, provider_message_id="<1@shop>", channel="email"),
            MessageOutcome("failed", T0, error="down", reason="provider_unavailable"),
            MessageOutcome("sent", T0, provider_message_id="<3@shop>", channel="sms"),
        ]
        async with store.unit_of_work() as uow:
            for prefix in ("one", "many"):
                for n in range(3):
                    await uow.messages.begin(_message(f"{prefix}-{n}"))
            for n, outcome in enumerate(outcomes):
                await uow.messages.finish(f"one-{n}", outcome)
            await uow.messages.finish_many([(f"many-{n}", o) for n, o in enumerate(outcomes)])
            await uow.commit()
        async with store.unit_of_work() as uow:
            rows = await uow.messages.get_many(
                [f"{p}-{n}" for p in ("one", "many") for n in range(3)]
            )
        for n in range(3):
            assert rows[f"many-{n}"] == replace(rows[f"one-{n}"], key=f"many-{n}")
        assert [rows[f"many-{n}"].status for n in range(3)] == ["sent", "failed", "sent"]

    async def test_many_identifiers_find_their_profiles_at_once(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            named = [{"id": "c1", "email": "anna@shop.ru"}, {"phone": "+79161234567"}]
            anna, boris = (await uow.profiles.resolve(named, T0)).profiles
            await uow.commit()
        async with store.unit_of_work() as uow:
            found = await uow.profiles.find_many(
                [("email", "anna@shop.ru"), ("id", "c1"), ("phone", "+79161234567"), ("id", "c9")]
            )
            created = await uow.profiles.find_many([("email", "nobody@shop.ru")])
        assert {pair: p.id for pair, p in found.items()} == {
            ("email", "anna@shop.ru"): anna.id,
            ("id", "c1"): anna.id,
            ("phone", "+79161234567"): boris.id,
        }
        assert created == {}

    async def test_merges_at_once_move_each_absorbed_buyer_to_where_its_merges_end(
        self, store: SqlStore
    ) -> None:
        """A survivor absorbed by a later merge of the same call passes on what it had
        absorbed: identifiers and messages end with the last survivor, memberships of
        the absorbed are dropped, the survivors' kept."""
        async with store.unit_of_work() as uow:
            first, second, third = (
                await uow.profiles.resolve([{"id": f"c{n}"} for n in range(3)], T0)
            ).profiles
            for n, buyer in enumerate((first, second, third)):
                await uow.messages.begin(
                    MessageRecord(f"m-{n}", "c", buyer.id, "email", "o", "sent", T0)
                )
                await uow.memberships.apply(
                    [MembershipChange("entered", f"s{n}", buyer.id, T0, "o")]
                )
            await uow.commit()
        async with store.unit_of_work() as uow:
            await uow.profiles.merge_many([(first.id, second.id), (second.id, third.id)])
            await uow.commit()
        async with store.unit_of_work() as uow:
            owners = await uow.profiles.find_many([("id", f"c{n}") for n in range(3)])
            messages = await uow.messages.get_many(["m-0", "m-1", "m-2"])
            stays = await uow.memberships.of([first.id, second.id, third.id])
        assert {pair: p.id for pair, p in owners.items()} == {
            ("id", "c0"): third.id,
            ("id", "c1"): third.id,
            ("id", "c2"): third.id,
        }
        assert {key: m.profile_id for key, m in messages.items()} == {
            "m-0": third.id,
            "m-1": third.id,
            "m-2": third.id,
        }
        assert stays == {first.id: {}, second.id: {}, third.id: {"s2": T0}}

    async def test_many_buyers_are_followed_through_their_merges_at_once(
        self, store: SqlStore
    ) -> None:
        async with store.unit_of_work() as uow:
            first, second, third, other = (
                await uow.profiles.resolve([{"id": f"c{n}"} for n in range(4)], T0)
            ).profiles
            await uow.commit()
        await merge(store, first.id, second.id)
        await merge(store, second.id, third.id)
        async with store.unit_of_work() as uow:
            current = await uow.profiles.current_many([first.id, second.id, other.id, "nobody"])
            one = await uow.profiles.current(first.id)
            locked = await uow.profiles.current_many([second.id], lock=True)
        assert {named: p.id for named, p in current.items()} == {
            first.id: third.id,
            second.id: third.id,
            other.id: other.id,
        }
        assert one is not None
        assert one.id == third.id
        assert locked == {second.id: current[second.id]}

    async def test_message_rows_are_read_by_key_many_at_once(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            await uow.messages.begin(_message("m-1"))
            await uow.messages.begin(_message("m-2", status="scheduled"))
            await uow.commit()
        async with store.unit_of_work() as uow:
            found = await uow.messages.get_many(["m-1", "m-2", "m-3"])
            one, two = await uow.messages.get("m-1"), await uow.messages.get("m-2")
        assert found == {"m-1": one, "m-2": two}

    async def test_message_rows_written_at_once_are_as_begun_then_finished(
        self, store: SqlStore
    ) -> None:
        trail = (Reason("quiet_hours", "quiet_hours", "until 09:00"),)
        outcome = MessageOutcome(
            "scheduled", T0, reason="quiet_hours", scheduled_for=T0 + timedelta(hours=9)
        )
        finished = MessageOutcome("sending", T0, channel="sms", sent_at=T0, decision=trail)
        async with store.unit_of_work() as uow:
            await uow.messages.begin(_message("m-kept", status="sent"))
            for key, then in (("one-1", outcome), ("one-2", finished)):
                await uow.messages.begin(_message(key, status="new"))
                await uow.messages.finish(key, then)
            await uow.messages.begin(_message("one-3", status="holdout"))
            await uow.commit()
        async with store.unit_of_work() as uow:
            await uow.messages.write(
                [
                    (_message("many-1", status="new"), outcome),
                    (_message("many-2", status="new"), finished),
                    (_message("many-3", status="holdout"), None),
                    (_message("m-kept", status="new"), finished),
                ]
            )
            await uow.commit()
        async with store.unit_of_work() as uow:
            rows = await uow.messages.get_many(
                ["one-1", "one-2", "one-3", "many-1", "many-2", "many-3", "m-kept"]
            )
        for n in (1, 2, 3):
            assert rows[f"many-{n}"] == replace(rows[f"one-{n}"], key=f"many-{n}")
        assert rows["one-2"].decision == trail
        assert rows["m-kept"] == _message("m-kept", status="sent")


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresStore(StoreContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url

    async def test_one_outbox_relay_at_a_time(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            await uow.outbox.add([OutgoingRecord("t.changes", b"k", b"v")], T0)
            await uow.commit()
        async with store.unit_of_work() as first, store.unit_of_work() as second:
            assert len(await first.outbox.claim(10)) == 1
            assert await second.outbox.claim(10) == []

    async def test_replicas_firing_timers_never_take_the_same_buyer(self, store: SqlStore) -> None:
        async with store.unit_of_work() as uow:
            profiles = (
                await uow.profiles.resolve([{"id": f"c{i}"} for i in range(6)], T0)
            ).profiles
            for profile in profiles:
                profile.next_timer_at = T0
            await uow.profiles.save(profiles, T0)
            await uow.commit()
        async with store.unit_of_work() as first, store.unit_of_work() as second:
            mine = await first.timers.due(T0, 4)
            theirs = await asyncio.wait_for(second.timers.due(T0, 10), timeout=5)
        assert len(mine) == 4
        assert len(theirs) == 2
        assert not set(mine) & set(theirs)
