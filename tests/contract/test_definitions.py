"""One contract for the definitions port, run against SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any

import pytest

from shared.adapters.clock import SimulatedClock
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.engine import create_engine, open_store
from shared.domain.segments import MembershipChange
from shared.ports.definitions import StaleVersion
from tests.conftest import T0

RULE = {"stat": "orders_count", "at_least": 2}
EMAIL = {"subject": "Hi", "html": "<p>Hi</p>", "text": "Hi"}


def refuse_campaigns_without_trigger(key: str, definition: Mapping[str, Any]) -> None:
    if "trigger" not in definition:
        raise ValueError(f"campaign {key} needs a trigger")


def refuse_programmes_without_steps(key: str, definition: Mapping[str, Any]) -> None:
    if not definition.get("steps"):
        raise ValueError(f"programme {key} needs steps")


PROGRAMME = {"trigger": {"segment": "no-order-30d"}, "steps": [{"id": "email"}]}


class DefinitionsContract:
    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    async def definitions(self, url: str, clock: SimulatedClock) -> AsyncIterator[SqlDefinitions]:
        definitions = SqlDefinitions(
            create_engine(url),
            clock=clock,
            validate_campaign=refuse_campaigns_without_trigger,
            validate_programme=refuse_programmes_without_steps,
        )
        yield definitions
        await definitions.close()

    async def test_a_new_segment_is_version_1_and_reads_back(
        self, definitions: SqlDefinitions
    ) -> None:
        created = await definitions.segments.put(
            "repeat-buyers", name="Repeat buyers", description="", rule=RULE, expected_version=None
        )
        assert (created.version, created.created_at, created.archived_at) == (1, T0, None)
        assert await definitions.segments.get("repeat-buyers") == created
        assert created.rule == RULE

    async def test_a_change_against_the_current_version_makes_the_next(
        self, definitions: SqlDefinitions, clock: SimulatedClock
    ) -> None:
        await definitions.segments.put(
            "vip", name="VIP", description="", rule=RULE, expected_version=None
        )
        clock.advance(timedelta(minutes=5))
        changed = await definitions.segments.put(
            "vip",
            name="VIP buyers",
            description="big spenders",
            rule={"stat": "revenue_total", "at_least": 50000},
            expected_version=1,
        )
        assert changed.version == 2
        assert (changed.created_at, changed.updated_at) == (T0, T0 + timedelta(minutes=5))
        assert changed.rule == {"stat": "revenue_total", "at_least": 50000}

    async def test_a_change_against_an_old_version_is_stale_and_writes_nothing(
        self, definitions: SqlDefinitions
    ) -> None:
        await definitions.segments.put(
            "vip", name="VIP", description="", rule=RULE, expected_version=None
        )
        await definitions.segments.put(
            "vip", name="VIP 2", description="", rule=RULE, expected_version=1
        )
        with pytest.raises(StaleVersion) as stale:
            await definitions.segments.put(
                "vip", name="lost edit", description="", rule=RULE, expected_version=1
            )
        assert (stale.value.expected, stale.value.current) == (1, 2)
        current = await definitions.segments.get("vip")
        assert current is not None
        assert current.name == "VIP 2"

    async def test_creating_an_existing_key_or_changing_a_missing_one_is_stale(
        self, definitions: SqlDefinitions
    ) -> None:
        await definitions.segments.put(
            "vip", name="VIP", description="", rule=RULE, expected_version=None
        )
        with pytest.raises(StaleVersion) as exists:
            await definitions.segments.put(
                "vip", name="again", description="", rule=RULE, expected_version=None
            )
        assert (exists.value.expected, exists.value.current) == (None, 1)
        with pytest.raises(StaleVersion) as missing:
            await definitions.segments.put(
                "nobody", name="x", description="", rule=RULE, expected_version=3
            )
        assert (missing.value.expected, missing.value.current) == (3, None)

    async def test_two_writers_on_one_version_one_wins(self, definitions: SqlDefinitions) -> None:
        await definitions.segments.put(
            "vip", name="VIP", description="", rule=RULE, expected_version=None
        )

        async def edit(name: str) -> str:
            try:
                await definitions.segments.put(
                    "vip", name=name, description="", rule=RULE, expected_version=1
                )
            except StaleVersion:
                return "stale"
            return "saved"

        outcomes = await asyncio.gather(*(edit(f"edit {i}") for i in range(5)))
        assert sorted(outcomes) == ["saved", "stale", "stale", "stale", "stale"]
        current = await definitions.segments.get("vip")
        assert current is not None
        assert current.version == 2

    async def test_archived_segments_leave_the_list_and_come_back_with_a_put(
        self, definitions: SqlDefinitions
    ) -> None:
        for key in ("b-segment", "a-segment"):
            await definitions.segments.put(
                key, name=key, description="", rule=RULE, expected_version=None
            )
        archived = await definitions.segments.archive("b-segment", 1)
        assert (archived.version, archived.archived_at) == (2, T0)
        assert [d.key for d in await definitions.segments.list()] == ["a-segment"]
        everything = await definitions.segments.list(archived=True)
        assert [d.key for d in everything] == ["a-segment", "b-segment"]
        with pytest.raises(StaleVersion):
            await definitions.segments.archive("b-segment", 1)
        back = await definitions.segments.put(
            "b-segment", name="back", description="", rule=RULE, expected_version=2
        )
        assert (back.version, back.archived_at) == (3, None)

    async def test_the_stamp_grows_with_every_change(self, definitions: SqlDefinitions) -> None:
        stamps = [await definitions.segments.stamp()]
        await definitions.segments.put(
            "vip", name="VIP", description="", rule=RULE, expected_version=None
        )
        stamps.append(await definitions.segments.stamp())
        await definitions.segments.put(
            "vip", name="VIP", description="", rule=RULE, expected_version=1
        )
        stamps.append(await definitions.segments.stamp())
        await definitions.segments.archive("vip", 2)
        stamps.append(await definitions.segments.stamp())
        assert stamps == sorted(set(stamps)), stamps
        assert await definitions.templates.stamp() == 0

    async def test_templates_keep_their_channel_and_content(
        self, definitions: SqlDefinitions
    ) -> None:
        email = await definitions.templates.put(
            "win-back", channel="email", content=EMAIL, expected_version=None
        )
        sms = await definitions.templates.put(
            "win-back-sms", channel="sms", content={"text": "Come back"}, expected_version=None
        )
        assert await definitions.templates.get("win-back") == email
        assert [t.channel for t in await definitions.templates.list()] == ["email", "sms"]
        assert sms.content == {"text": "Come back"}
        with pytest.raises(ValueError, match="channel"):
            await definitions.templates.put(
                "fax",
                channel="fax",
                content={},
                expected_version=None,  # type: ignore[arg-type]
            )

    async def test_campaigns_are_checked_by_the_given_validator(
        self, definitions: SqlDefinitions
    ) -> None:
        with pytest.raises(ValueError, match="win-back needs a trigger"):
            await definitions.campaigns.put(
                "win-back", definition={}, status="draft", expected_version=None
            )
        assert await definitions.campaigns.get("win-back") is None
        saved = await definitions.campaigns.put(
            "win-back",
            definition={"trigger": {"segment": "no-order-30d"}},
            status="active",
            expected_version=None,
        )
        assert (saved.status, saved.version) == ("active", 1)
        assert await definitions.campaigns.get("win-back") == saved

    async def test_programmes_are_checked_and_every_version_stays_readable(
        self, definitions: SqlDefinitions, clock: SimulatedClock
    ) -> None:
        with pytest.raises(ValueError, match="win-back needs steps"):
            await definitions.programmes.put(
                "win-back", definition={"steps": []}, status="draft", expected_version=None
            )
        assert await definitions.programmes.get("win-back") is None
        assert await definitions.programmes.version("win-back", 1) is None
        first = await definitions.programmes.put(
            "win-back", definition=PROGRAMME, status="draft", expected_version=None
        )
        clock.advance(timedelta(minutes=5))
        edited = {**PROGRAMME, "steps": [{"id": "email"}, {"id": "sms"}]}
        second = await definitions.programmes.put(
            "win-back", definition=edited, status="active", expected_version=1
        )
        with pytest.raises(StaleVersion):
            await definitions.programmes.put(
                "win-back", definition=PROGRAMME, status="draft", expected_version=1
            )
        archived = await definitions.programmes.archive("win-back", 2)
        assert await definitions.programmes.get("win-back") == archived
        assert await definitions.programmes.version("win-back", 1) == first
        old_second = await definitions.programmes.version("win-back", 2)
        assert old_second == second
        assert old_second.definition == edited
        third = await definitions.programmes.version("win-back", 3)
        assert third is not None
        assert (third.archived_at, third.definition) == (T0 + timedelta(minutes=5), edited)
        assert await definitions.programmes.version("win-back", 4) is None
        assert await definitions.programmes.list() == []
        assert await definitions.programmes.list(archived=True) == [archived]

    async def test_sizes_and_scans_read_the_base(
        self, url: str, definitions: SqlDefinitions
    ) -> None:
        store = open_store(url)
        try:
            async with store.unit_of_work() as uow:
                resolution = await uow.profiles.resolve([{"id": f"c-{i}"} for i in range(5)], T0)
                ids = sorted(p.id for p in resolution.profiles)
                await uow.memberships.apply(
                    [MembershipChange("entered", "vip", pid, T0, "") for pid in ids[:3]]
                    + [MembershipChange("entered", "new", ids[0], T0, "")]
                )
                survivor = resolution.loaded[ids[0]]
                await uow.profiles.merge(ids[4], ids[0])
                merged = resolution.loaded[ids[4]]
                merged.merged_into = survivor.id
                await uow.profiles.save([merged], T0)
                await uow.commit()
        finally:
            await store.close()
        assert await definitions.segment_sizes() == {"vip": 3, "new": 1}
        first = list(await definitions.buyers.page(after=None, limit=2))
        rest = list(await definitions.buyers.page(after=first[-1].id, limit=10))
        assert [p.id for p in first + rest] == ids[:4], "merged profiles are not scanned"
        assert await definitions.count_profiles() == 4
        found = await definitions.find_profile(ids[4])
        assert found is not None
        assert found.id == ids[0], "a merged profile is found as its survivor"
        assert await definitions.find_profile("nobody") is None

    async def test_a_recompute_advances_and_a_new_rule_starts_it_again(
        self, definitions: SqlDefinitions
    ) -> None:
        assert await definitions.recomputes() == {}
        started = await definitions.start_recompute("vip", "f1", T0)
        assert (started.cursor, started.evaluated, started.finished_at) == (None, 0, None)
        moved = await definitions.advance_recompute(
            "vip", "f1", cursor="p-9", evaluated=10, finished_at=None
        )
        assert moved is not None
        assert (moved.cursor, moved.evaluated) == ("p-9", 10)
        await definitions.start_recompute("vip", "f2", T0 + timedelta(hours=1))
        stale = await definitions.advance_recompute(
            "vip", "f1", cursor="p-99", evaluated=20, finished_at=T0
        )
        assert stale is None, "a batch of the old rule does not move the new recompute"
        (current,) = (await definitions.recomputes()).values()
        assert (current.fingerprint, current.cursor, current.started_at) == (
            "f2",
            None,
            T0 + timedelta(hours=1),
        )


class TestSqliteDefinitions(DefinitionsContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresDefinitions(DefinitionsContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
