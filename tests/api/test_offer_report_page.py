"""The campaign report page shows what the promo codes its messages carried did: issued,
redeemed, the redemption rate and the discount given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from services.console.app import create_console_app
from services.console.pages import campaigns as campaign_pages
from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema
from shared.adapters.store.console_queries import open_console_queries
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.engine import open_store
from shared.adapters.store.offers import SqlOffers
from shared.adapters.store.reports import SqlCampaignResults
from shared.adapters.store.sessions import SqlSessions
from shared.adapters.store.users import open_users
from shared.domain.offers import Redemption, parse_offer
from shared.settings import Settings
from tests.api.test_campaign_pages import HTML, PASSWORD, csrf_of
from tests.conftest import T0


@pytest.fixture
async def app(sqlite_url: str, tmp_path: Path, clock: SimulatedClock) -> AsyncIterator[FastAPI]:
    users = open_users(sqlite_url, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    queries = open_console_queries(sqlite_url)
    await users.create("ivan", PASSWORD, "analyst")
    definitions = SqlDefinitions(queries.engine, clock=clock)
    offers = SqlOffers(queries.engine, clock=clock, validate=lambda k, d: parse_offer(d, key=k))
    await _codes_issued_and_one_redeemed(sqlite_url, offers)
    yield create_console_app(
        Settings(data_dir=tmp_path),
        users,
        queries,
        sessions=SqlSessions(users.engine),
        routers=[
            campaign_pages.router(
                definitions, SqlCampaignResults(queries.engine), clock=clock, offers=offers
            )
        ],
    )
    await users.close()
    await queries.close()


async def _codes_issued_and_one_redeemed(url: str, offers: SqlOffers) -> None:
    definition = {"name": "10%", "kind": "percent", "value": 10, "valid": {"days_after_send": 14}}
    await offers.put("win-back-10", definition=definition, expected_version=None)
    await offers.add_codes("win-back-10", ["WB-1", "WB-2", "WB-3", "WB-4"], T0)
    store = open_store(url)
    async with store.engine.begin() as conn:
        for n in range(4):
            await conn.execute(
                schema.messages.insert().values(
                    key=f"m-{n}",
                    campaign="win-back-30d",
                    profile_id=f"p-{n}",
                    channel="email",
                    occurrence_id="o",
                    status="sent",
                    created_at=T0,
                    sent_at=T0,
                )
            )
    async with store.unit_of_work() as uow:
        for n in range(4):
            await uow.offer_codes.take("win-back-10", f"m-{n}", f"p-{n}", T0, None)
        await uow.commit()
    await store.close()
    code = (await offers.issued(["WB-1"]))[0]
    await offers.redeem(
        [
            Redemption(
                "win-back-10",
                code.code,
                code.message_key,
                "o-1",
                Decimal("3000.00"),
                Decimal("300.00"),
                T0,
            )
        ]
    )


async def test_the_report_page_shows_codes_issued_redeemed_and_the_discount(app: FastAPI) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console", headers=HTML
    ) as client:
        form = await client.get("/login")
        await client.post(
            "/login", data={"username": "ivan", "password": PASSWORD, "csrf_token": csrf_of(form)}
        )
        page = await client.get("/campaigns/win-back-30d/report")

    assert page.status_code == 200, page.text
    assert '<dd id="codes-issued">4</dd>' in page.text
    assert '<dd id="codes-redeemed">1</dd>' in page.text
    assert '<dd id="redemption-rate">25.0%</dd>' in page.text
    assert '<dd id="discount-given">300.00</dd>' in page.text
