"""The offers API as a marketer's tool sees it: save an offer, read it back, upload its pool
of codes, and never have a bad upload half taken."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.console.api import campaigns, offers, programmes
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.engine import create_engine
from shared.adapters.store.offers import SqlOffers
from shared.adapters.store.reports import SqlCampaignResults, open_campaign_results
from shared.domain.offers import parse_offer
from tests.api.definitions_app import *  # noqa: F403 - the fixtures

WIN_BACK: dict[str, Any] = {
    "name": "10% to come back",
    "kind": "percent",
    "value": 10,
    "valid": {"days_after_send": 14},
    "min_order": 1500,
}


@pytest.fixture
async def offer_store(sqlite_url: str, clock: SimulatedClock) -> AsyncIterator[SqlOffers]:
    found = SqlOffers(
        create_engine(sqlite_url), clock=clock, validate=lambda k, d: parse_offer(d, key=k)
    )
    yield found
    await found.close()


@pytest.fixture
async def results(sqlite_url: str) -> AsyncIterator[SqlCampaignResults]:
    found = open_campaign_results(sqlite_url)
    yield found
    await found.close()


@pytest.fixture(autouse=True)
def offers_routes(
    definitions_app: FastAPI,
    definitions: SqlDefinitions,
    offer_store: SqlOffers,
    results: SqlCampaignResults,
    clock: SimulatedClock,
) -> None:
    definitions_app.include_router(offers.router(offer_store, clock=clock))
    definitions_app.include_router(
        campaigns.router(definitions, results, clock=clock, offers=offer_store)
    )
    definitions_app.include_router(programmes.router(definitions, offers=offer_store))


def problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{kind}"
    return body


async def test_a_new_offer_is_saved_and_read_back_with_its_etag(
    writer: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    created = await writer.put("/v1/offers/win-back-10", json=WIN_BACK)

    assert created.status_code == 201, created.text
    assert created.headers["etag"] == '"1"'
    read = await reader.get("/v1/offers/win-back-10")
    body = read.json()
    assert read.headers["etag"] == '"1"'
    assert (body["key"], body["kind"], body["value"], body["min_order"]) == (
        "win-back-10",
        "percent",
        "10",
        "1500.00",
    )
    assert body["codes"] == {"source": "pool", "low_at": 100}
    assert body["pool"] == {"free": 0, "issued": 0}
    listed = (await reader.get("/v1/offers")).json()
    assert [o["key"] for o in listed["offers"]] == ["win-back-10"]


async def test_a_change_needs_the_version_it_was_made_against(writer: httpx.AsyncClient) -> None:
    await writer.put("/v1/offers/win-back-10", json=WIN_BACK)

    unversioned = await writer.put("/v1/offers/win-back-10", json={**WIN_BACK, "value": 15})
    stale = await writer.put(
        "/v1/offers/win-back-10", json={**WIN_BACK, "value": 15}, headers={"If-Match": '"7"'}
    )
    changed = await writer.put(
        "/v1/offers/win-back-10", json={**WIN_BACK, "value": 15}, headers={"If-Match": '"1"'}
    )

    problem(unversioned, 428, "precondition-required")
    problem(stale, 412, "stale-version")
    assert changed.status_code == 200
    assert (changed.json()["value"], changed.headers["etag"]) == ("15", '"2"')


async def test_a_bad_offer_is_refused_at_its_field_and_nothing_is_saved(
    writer: httpx.AsyncClient,
) -> None:
    refused = await writer.put("/v1/offers/win-back-10", json={**WIN_BACK, "value": 120})

    body = problem(refused, 422, "invalid-offer")
    assert body["errors"] == [
        {"pointer": "/value", "detail": "expected a percentage above 0, at most 100"}
    ]
    problem(await writer.get("/v1/offers/win-back-10"), 404, "not-found")


async def test_reading_needs_console_read_and_changing_console_write(
    reader: httpx.AsyncClient, events_only: httpx.AsyncClient, nobody: httpx.AsyncClient
) -> None:
    problem(await reader.put("/v1/offers/x", json=WIN_BACK), 403, "forbidden")
    problem(await events_only.get("/v1/offers"), 403, "forbidden")
    problem(await nobody.get("/v1/offers"), 401, "unauthorized")
    problem(await reader.post("/v1/offers/x/codes", content=b"A-1\n"), 403, "forbidden")


async def test_an_uploaded_pool_is_counted_free(writer: httpx.AsyncClient) -> None:
    await writer.put("/v1/offers/win-back-10", json=WIN_BACK)

    uploaded = await writer.post(
        "/v1/offers/win-back-10/codes",
        content=b"code\nWB-0001\nWB-0002\nWB-0003\n",
        headers={"Content-Type": "text/csv"},
    )

    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json() == {
        "offer": "win-back-10",
        "added": 3,
        "pool": {"free": 3, "issued": 0},
    }
    assert (await writer.get("/v1/offers/win-back-10")).json()["pool"]["free"] == 3


async def test_a_bad_upload_is_refused_at_its_line_with_nothing_taken(
    writer: httpx.AsyncClient,
) -> None:
    await writer.put("/v1/offers/win-back-10", json=WIN_BACK)

    bad_line = await writer.post(
        "/v1/offers/win-back-10/codes", content=b"WB-1\nWB-2\nnot a code\n"
    )
    not_text = await writer.post("/v1/offers/win-back-10/codes", content=b"\xff\xfe\x00A")

    assert problem(bad_line, 422, "invalid-codes")["errors"] == [
        {
            "line": 3,
            "detail": "expected a code of 1 to 64 letters, digits, '-' or '_' in the first column",
        }
    ]
    assert problem(not_text, 422, "invalid-codes")["errors"][0]["line"] == 0
    assert (await writer.get("/v1/offers/win-back-10")).json()["pool"]["free"] == 0


async def test_an_upload_naming_codes_already_there_takes_none_of_it(
    writer: httpx.AsyncClient,
) -> None:
    await writer.put("/v1/offers/win-back-10", json=WIN_BACK)
    await writer.post("/v1/offers/win-back-10/codes", content=b"WB-1\nWB-2\n")

    again = await writer.post("/v1/offers/win-back-10/codes", content=b"WB-3\nWB-2\nWB-4\n")

    body = problem(again, 409, "codes-taken")
    assert body["errors"] == [{"code": "WB-2", "detail": "in the pool already"}]
    assert (await writer.get("/v1/offers/win-back-10")).json()["pool"]["free"] == 2


async def test_an_offer_with_generated_codes_takes_no_upload(writer: httpx.AsyncClient) -> None:
    generated = {**WIN_BACK, "codes": {"source": "generated", "prefix": "WB10"}}
    await writer.put("/v1/offers/win-back-10", json=generated)

    problem(await writer.post("/v1/offers/win-back-10/codes", content=b"WB-1\n"), 409, "not-a-pool")
    problem(await writer.post("/v1/offers/nothing/codes", content=b"WB-1\n"), 404, "not-found")


async def test_an_offers_codes_are_listed_for_export_as_csv(
    writer: httpx.AsyncClient, reader: httpx.AsyncClient, offer_store: SqlOffers
) -> None:
    await writer.put("/v1/offers/win-back-10", json=WIN_BACK)
    await writer.post("/v1/offers/win-back-10/codes", content=b"WB-2\nWB-1\n")

    exported = await reader.get("/v1/offers/win-back-10/codes")

    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.text == (
        "code,state,issued_at,expires_at,redeemed_at\nWB-1,free,,,\nWB-2,free,,,\n"
    )
    problem(await reader.get("/v1/offers/nothing/codes"), 404, "not-found")


async def test_a_campaign_may_name_only_an_offer_that_exists(writer: httpx.AsyncClient) -> None:
    campaign = {
        "name": "Second order, 10% off",
        "trigger": {"segment": "lifecycle-new"},
        "channels": ["email"],
        "templates": {"email": "second-order-email"},
        "offer": "win-back-10",
    }

    refused = await writer.put("/v1/campaigns/second-10", json=campaign)
    await writer.put("/v1/offers/win-back-10", json=WIN_BACK)
    saved = await writer.put("/v1/campaigns/second-10", json=campaign)

    assert problem(refused, 422, "invalid-campaign")["errors"] == [
        {"pointer": "/offer", "detail": "no offer 'win-back-10'"}
    ]
    assert saved.status_code == 201, saved.text
    assert saved.json()["offer"] == "win-back-10"


async def test_a_programme_variant_may_name_only_an_offer_that_exists(
    writer: httpx.AsyncClient,
) -> None:
    variants = [
        {
            "name": "ten",
            "share": 0.5,
            "templates": {"email": "win-back-email"},
            "offer": "win-back-10",
        },
        {
            "name": "fifteen",
            "share": 0.5,
            "templates": {"email": "win-back-email"},
            "offer": "wb-15",
        },
    ]
    programme = {
        "name": "Win back, 10% or 15%",
        "trigger": {"segment": "no-order-30d"},
        "steps": [{"id": "email", "send": {"channels": ["email"], "variants": variants}}],
    }
    await writer.put("/v1/offers/win-back-10", json=WIN_BACK)

    refused = await writer.put("/v1/programmes/win-back-ab", json=programme)
    await writer.put("/v1/offers/wb-15", json={**WIN_BACK, "value": 15})
    saved = await writer.put("/v1/programmes/win-back-ab", json=programme)

    assert problem(refused, 422, "invalid-programme")["errors"] == [
        {"pointer": "/steps/0/send/variants/1/offer", "detail": "no offer 'wb-15'"}
    ]
    assert saved.status_code == 201, saved.text
