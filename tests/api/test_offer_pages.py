"""The offers pages as a browser meets them: a marketer creates an offer from the form
and sees it listed with its pool; a bad field is named beside the form, nothing saved;
an analyst reads but cannot create."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from services.console.app import create_console_app
from services.console.pages import offers as offer_pages
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.console_queries import open_console_queries
from shared.adapters.store.engine import create_engine
from shared.adapters.store.offers import SqlOffers
from shared.adapters.store.sessions import SqlSessions
from shared.adapters.store.users import open_users
from shared.domain.offers import parse_offer
from shared.settings import Settings
from tests.api.test_campaign_pages import HTML, PASSWORD, csrf_of

FORM = {
    "key": "win-back-10",
    "name": "10% to come back",
    "kind": "percent",
    "value": "10",
    "days_after_send": "14",
    "source": "generated",
    "prefix": "WB10",
}


@pytest.fixture
async def offers(sqlite_url: str, clock: SimulatedClock) -> AsyncIterator[SqlOffers]:
    found = SqlOffers(
        create_engine(sqlite_url), clock=clock, validate=lambda k, d: parse_offer(d, key=k)
    )
    yield found
    await found.close()


@pytest.fixture
async def app(sqlite_url: str, tmp_path: Path, offers: SqlOffers) -> AsyncIterator[FastAPI]:
    users = open_users(sqlite_url, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    queries = open_console_queries(sqlite_url)
    await users.create("olga", PASSWORD, "marketer")
    await users.create("ivan", PASSWORD, "analyst")
    yield create_console_app(
        Settings(data_dir=tmp_path),
        users,
        queries,
        sessions=SqlSessions(users.engine),
        routers=[offer_pages.router(offers)],
    )
    await users.close()
    await queries.close()


@asynccontextmanager
async def _browser(app: FastAPI, username: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console", headers=HTML
    ) as client:
        form = await client.get("/login")
        await client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(form)},
        )
        yield client, csrf_of(await client.get("/offers"))


async def test_a_marketer_creates_an_offer_and_sees_it_listed(
    app: FastAPI, offers: SqlOffers
) -> None:
    async with _browser(app, "olga") as (client, csrf):
        created = await client.post("/offers", data={**FORM, "csrf_token": csrf})
        listed = await client.get("/offers")

    assert created.status_code == 303, created.text
    assert 'data-offer="win-back-10"' in listed.text
    assert "WB10-" in listed.text
    stored = await offers.get("win-back-10")
    assert stored is not None
    assert stored.definition["codes"] == {"source": "generated", "prefix": "WB10"}


async def test_a_bad_field_is_named_beside_the_form_and_nothing_is_saved(
    app: FastAPI, offers: SqlOffers
) -> None:
    async with _browser(app, "olga") as (client, csrf):
        refused = await client.post("/offers", data={**FORM, "value": "120", "csrf_token": csrf})

    assert refused.status_code == 422
    assert 'data-pointer="/value"' in refused.text
    assert "expected a percentage above 0, at most 100" in refused.text
    assert 'value="120"' in refused.text
    assert await offers.list() == []


async def test_an_analyst_reads_the_offers_but_cannot_create_one(
    app: FastAPI, offers: SqlOffers
) -> None:
    async with _browser(app, "ivan") as (client, csrf):
        page = await client.get("/offers")
        refused = await client.post("/offers", data={**FORM, "csrf_token": csrf})

    assert page.status_code == 200
    assert 'id="new-offer"' not in page.text
    assert refused.status_code == 403
    assert await offers.list() == []
