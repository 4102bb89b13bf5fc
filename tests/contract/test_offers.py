"""One contract for the offers port and the codes a unit of work takes, run against SQLite
(embedded) and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema
from shared.adapters.store.engine import create_engine, open_store
from shared.adapters.store.migrate import alembic_config, upgrade_async
from shared.adapters.store.offers import SqlOffers
from shared.adapters.store.sql import SqlStore
from shared.domain.offers import Issued, Redemption, parse_offer
from shared.ports.definitions import StaleVersion
from shared.ports.offers import CodesTaken, IssuedOfferCode, OfferResults, PoolCounts
from tests.conftest import T0
from tests.contract.test_schedule import _parts
from tests.support import infra

OFFER: dict[str, Any] = {
    "name": "10% to come back",
    "kind": "percent",
    "value": 10,
    "valid": {"days_after_send": 14},
}
EXPIRES = T0 + timedelta(days=14)


def validate(key: str, definition: Mapping[str, Any]) -> None:
    parse_offer(definition, key=key)


class OffersContract:
    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    async def offers(self, url: str, clock: SimulatedClock) -> AsyncIterator[SqlOffers]:
        found = SqlOffers(create_engine(url), clock=clock, validate=validate)
        yield found
        await found.close()

    @pytest.fixture
    async def store(self, url: str) -> AsyncIterator[SqlStore]:
        found = open_store(url)
        yield found
        await found.close()

    async def test_an_offer_is_versioned_like_a_campaign(
        self, offers: SqlOffers, clock: SimulatedClock
    ) -> None:
        created = await offers.put("win-back-10", definition=OFFER, expected_version=None)
        clock.advance(timedelta(minutes=1))
        changed = await offers.put(
            "win-back-10", definition={**OFFER, "value": 15}, expected_version=1
        )

        assert (created.version, changed.version) == (1, 2)
        assert changed.definition["value"] == 15
        assert (changed.created_at, changed.updated_at) == (T0, T0 + timedelta(minutes=1))
        assert await offers.get("win-back-10") == changed
        assert [o.key for o in await offers.list()] == ["win-back-10"]
        with pytest.raises(StaleVersion) as stale:
            await offers.put("win-back-10", definition=OFFER, expected_version=1)
        assert stale.value.current == 2
        assert await offers.stamp() == 2

    async def test_an_invalid_offer_is_refused_with_nothing_written(
        self, offers: SqlOffers
    ) -> None:
        with pytest.raises(ValueError, match="/value"):
            await offers.put("bad", definition={**OFFER, "value": 500}, expected_version=None)
        assert await offers.get("bad") is None

    async def test_an_upload_goes_into_the_pool_free(self, offers: SqlOffers) -> None:
        counts = await offers.add_codes("win-back-10", ["A-1", "A-2", "A-3"], T0)
        assert counts == PoolCounts(free=3, issued=0)

    async def test_an_upload_with_a_code_already_there_is_refused_whole(
        self, offers: SqlOffers
    ) -> None:
        await offers.add_codes("win-back-10", ["A-1", "A-2"], T0)

        with pytest.raises(CodesTaken) as taken:
            await offers.add_codes("win-back-10", ["B-1", "A-2", "B-2"], T0)

        assert (taken.value.codes, taken.value.count) == (("A-2",), 1)
        assert await offers.pool("win-back-10") == PoolCounts(free=2)
        # the same code in another offer's pool is another code
        assert await offers.add_codes("other", ["A-2"], T0) == PoolCounts(free=1)

    async def test_a_message_takes_one_free_code_and_an_empty_pool_gives_none(
        self, offers: SqlOffers, store: SqlStore
    ) -> None:
        await offers.add_codes("win-back-10", ["A-1"], T0)

        async with store.unit_of_work() as uow:
            first = await uow.offer_codes.take("win-back-10", "m-1", "p-1", T0, EXPIRES)
            second = await uow.offer_codes.take("win-back-10", "m-2", "p-2", T0, EXPIRES)
            left = await uow.offer_codes.free_count("win-back-10")
            await uow.commit()

        assert (first, second, left) == ("A-1", None, 0)
        assert await offers.pool("win-back-10") == PoolCounts(free=0, issued=1)
        async with store.unit_of_work() as uow:
            carried = await uow.offer_codes.of_messages(["m-1", "m-2"])
        assert carried == {"m-1": IssuedOfferCode("win-back-10", "A-1", "m-1", "p-1", T0, EXPIRES)}

    async def test_a_code_taken_in_a_unit_of_work_rolled_back_stays_free(
        self, offers: SqlOffers, store: SqlStore
    ) -> None:
        await offers.add_codes("win-back-10", ["A-1"], T0)
        async with store.unit_of_work() as uow:
            assert await uow.offer_codes.take("win-back-10", "m-1", "p-1", T0, EXPIRES) == "A-1"
        assert await offers.pool("win-back-10") == PoolCounts(free=1)

    async def test_codes_of_messages_never_sent_go_back_to_the_pool(
        self, offers: SqlOffers, store: SqlStore
    ) -> None:
        await offers.add_codes("win-back-10", ["A-1"], T0)
        generated = IssuedOfferCode("gen", "GEN-1", "m-2", "p-2", T0, EXPIRES)
        async with store.unit_of_work() as uow:
            await uow.offer_codes.take("win-back-10", "m-1", "p-1", T0, EXPIRES)
            await uow.offer_codes.record(generated)
            await uow.commit()

        async with store.unit_of_work() as uow:
            released = await uow.offer_codes.release(["m-1", "m-2"])
            await uow.commit()

        assert released == 1
        assert await offers.pool("win-back-10") == PoolCounts(free=1)
        assert await offers.pool("gen") == PoolCounts()

    async def test_a_message_carries_one_code_at_most(
        self, offers: SqlOffers, store: SqlStore
    ) -> None:
        async with store.unit_of_work() as uow:
            await uow.offer_codes.record(IssuedOfferCode("gen", "GEN-1", "m-1", "p", T0, None))
            await uow.commit()
        with pytest.raises(IntegrityError):
            async with store.unit_of_work() as uow:
                await uow.offer_codes.record(IssuedOfferCode("gen", "GEN-2", "m-1", "p", T0, None))

    async def test_a_redeemed_code_counts_once_for_the_campaign_of_its_message(
        self, offers: SqlOffers, store: SqlStore
    ) -> None:
        await offers.add_codes("win-back-10", ["A-1", "A-2"], T0)
        async with store.engine.begin() as conn:
            for key in ("m-1", "m-2"):
                await conn.execute(
                    schema.messages.insert().values(
                        key=key,
                        campaign="win-back-30d",
                        profile_id=f"p-{key}",
                        channel="email",
                        occurrence_id="o",
                        status="sent",
                        created_at=T0,
                    )
                )
        async with store.unit_of_work() as uow:
            for key in ("m-1", "m-2"):
                await uow.offer_codes.take("win-back-10", key, f"p-{key}", T0, EXPIRES)
            await uow.commit()

        issued = await offers.issued(["A-1", "NOT-OURS"])
        first = Redemption(
            "win-back-10", "A-1", "m-1", "o-1", Decimal("2000.00"), Decimal("200.00"), T0
        )
        again = Redemption(
            "win-back-10", "A-1", "m-1", "o-2", Decimal("900.00"), Decimal("90.00"), T0
        )

        assert issued == [Issued("win-back-10", "A-1", "m-1")]
        assert await offers.redeem([first]) == 1
        assert await offers.redeem([again]) == 0
        results = await offers.campaign_results("win-back-30d")
        assert (results.issued, results.redeemed, results.discount) == (2, 1, Decimal("200.00"))
        assert results.redemption_rate == 0.5
        assert results.offers == ("win-back-10",)
        assert await offers.campaign_results("other") == OfferResults()
        listed = await offers.codes("win-back-10")
        assert [(x.code, x.state, x.expires_at, x.redeemed_at) for x in listed] == [
            ("A-1", "issued", EXPIRES, T0),
            ("A-2", "issued", EXPIRES, None),
        ]


class Migration0022Contract:
    @pytest.fixture
    def empty_url(self) -> str:
        raise NotImplementedError

    async def test_0022_builds_what_schema_py_declares(self, empty_url: str) -> None:
        await upgrade_async(empty_url)
        store = open_store(empty_url)

        def differences(conn: Connection) -> list[Any]:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            mine = {"offers", "offer_codes", "offer_redemptions"}
            return [
                diff
                for diff in compare_metadata(context, schema.metadata)
                if mine & {str(getattr(part, "name", "")) for part in _parts(diff)}
            ]

        try:
            async with store.engine.connect() as conn:
                assert await conn.run_sync(differences) == []
        finally:
            await store.close()

    def test_0022_goes_down_and_up_again(self, empty_url: str) -> None:
        config = alembic_config(empty_url)
        command.upgrade(config, "head")
        command.downgrade(config, "0018")
        command.upgrade(config, "head")


class TestSqliteMigration0022(Migration0022Contract):
    @pytest.fixture
    def empty_url(self, tmp_path: Path) -> str:
        return f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"


@pytest.mark.postgres
class TestPostgresMigration0022(Migration0022Contract):
    @pytest.fixture
    def empty_url(self) -> Iterator[str]:
        name = infra.unique("nudge_m22_")
        yield infra.create_database(infra.DATABASE_URL, name)
        infra.drop_database(infra.DATABASE_URL, name)


class TestSqliteOffers(OffersContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresOffers(OffersContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url

    async def test_two_units_of_work_taking_at_once_never_take_the_same_code(
        self, offers: SqlOffers, store: SqlStore
    ) -> None:
        await offers.add_codes("win-back-10", [f"C-{n}" for n in range(40)], T0)
        both_in = asyncio.Barrier(2)

        async def take_all(who: str) -> list[str]:
            taken: list[str] = []
            async with store.unit_of_work() as uow:
                first = await uow.offer_codes.take("win-back-10", f"{who}-0", who, T0, None)
                assert first is not None
                taken.append(first)
                await both_in.wait()  # the other holds its lock on a row now
                for n in range(1, 30):
                    code = await uow.offer_codes.take("win-back-10", f"{who}-{n}", who, T0, None)
                    if code is None:
                        break
                    taken.append(code)
                await uow.commit()
            return taken

        a, b = await asyncio.gather(take_all("a"), take_all("b"))

        assert not set(a) & set(b)
        assert len(a) + len(b) == 40
        assert await offers.pool("win-back-10") == PoolCounts(free=0, issued=40)
