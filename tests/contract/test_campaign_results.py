"""One contract for campaign results (conversions and the rows a report reads), run against
SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert

from shared.adapters.store import schema
from shared.adapters.store.engine import create_engine
from shared.adapters.store.reports import SqlCampaignResults
from shared.domain.attribution import Conversion, MessageResponse
from tests.conftest import T0


def _conversion(key: str, order: str, amount: str = "10.50") -> Conversion:
    return Conversion(key, "win-back-30d", "a", False, order, Decimal(amount), T0)


class CampaignResultsContract:
    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    async def results(self, url: str) -> AsyncIterator[SqlCampaignResults]:
        results = SqlCampaignResults(create_engine(url))
        async with results.engine.begin() as conn:
            await conn.execute(
                insert(schema.profiles),
                [
                    {"id": "a", "created_at": T0, "updated_at": T0, "merged_into": None},
                    {"id": "old-a", "created_at": T0, "updated_at": T0, "merged_into": "a"},
                    {"id": "b", "created_at": T0, "updated_at": T0, "merged_into": None},
                ],
            )
            await conn.execute(
                insert(schema.identifiers),
                [
                    {"kind": "email", "value": "a@example.com", "profile_id": "a"},
                    {"kind": "phone", "value": "+79000000001", "profile_id": "old-a"},
                    {"kind": "email", "value": "b@example.com", "profile_id": "b"},
                ],
            )
            await conn.execute(
                insert(schema.messages),
                [
                    {
                        "key": key,
                        "campaign": campaign,
                        "profile_id": buyer,
                        "channel": "email",
                        "occurrence_id": "o",
                        "status": "sent",
                        "created_at": T0 + timedelta(minutes=n),
                        "holdout": False,
                        "sent_at": T0,
                    }
                    for n, (key, campaign, buyer) in enumerate(
                        [
                            ("m-a", "win-back-30d", "a"),
                            ("m-old-a", "win-back-30d", "old-a"),
                            ("m-a-welcome", "welcome-lead", "a"),
                            ("m-b", "win-back-30d", "b"),
                        ]
                    )
                ],
            )
        yield results
        await results.close()

    async def test_a_buyers_messages_include_the_profiles_merged_into_theirs(
        self, results: SqlCampaignResults
    ) -> None:
        found = await results.buyers_messages(
            [{"phone": "+79000000001"}, {"email": "b@example.com"}, {"email": "x@example.com"}],
            ["win-back-30d"],
        )
        assert [[m.key for m in theirs] for theirs in found] == [["m-a", "m-old-a"], ["m-b"], []]
        assert found[0][0].sent_at == T0

    async def test_a_conversion_is_kept_once_per_message_and_order(
        self, results: SqlCampaignResults
    ) -> None:
        assert await results.record([_conversion("m-a", "o-1"), _conversion("m-b", "o-2")]) == 2
        assert await results.record([_conversion("m-a", "o-1"), _conversion("m-a", "o-3")]) == 1
        kept = await results.campaign_conversions("win-back-30d")
        assert [(c.message_key, c.order_id, c.amount) for c in kept] == [
            ("m-a", "o-1", Decimal("10.50")),
            ("m-b", "o-2", Decimal("10.50")),
            ("m-a", "o-3", Decimal("10.50")),
        ]
        assert await results.record([]) == 0

    async def test_a_delivery_report_is_kept_once_per_message_and_response(
        self, results: SqlCampaignResults
    ) -> None:
        later = T0 + timedelta(hours=1)
        first = [MessageResponse("m-a", "delivered", T0), MessageResponse("m-a", "opened", later)]
        assert await results.record_responses(first) == 2
        again = [
            MessageResponse("m-a", "delivered", later),
            MessageResponse("m-a-welcome", "clicked", later),
        ]
        assert await results.record_responses(again) == 1
        assert await results.campaign_responses("win-back-30d") == [
            MessageResponse("m-a", "delivered", T0),
            MessageResponse("m-a", "opened", later),
        ]
        assert await results.record_responses([]) == 0

    async def test_a_campaigns_messages_are_its_own_in_order(
        self, results: SqlCampaignResults
    ) -> None:
        messages = await results.campaign_messages("win-back-30d")
        assert [m.key for m in messages] == ["m-a", "m-old-a", "m-b"]
        assert await results.campaign_messages("nothing") == []


class TestSqliteCampaignResults(CampaignResultsContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresCampaignResults(CampaignResultsContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
