"""The customers API as a support agent's script and a marketer's console meet it: one
buyer, found by any identifier, with phones and emails masked unless the caller may see
them, and every message with the decision behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from shared.adapters.store.api_keys import SqlApiKeys
from shared.ports.api_keys import Scope
from tests.api.console_fixtures import *  # noqa: F403 - the fixtures
from tests.support.console_app import (
    ANNA,
    Base,
    session_client,
)


async def key_client(app: FastAPI, keys: SqlApiKeys, *scopes: Scope) -> httpx.AsyncClient:
    _key, secret = await keys.create("support script", scopes)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://console",
        headers={"Authorization": f"Bearer {secret}"},
    )


@pytest.fixture
async def reader(app: FastAPI, api_keys: SqlApiKeys) -> AsyncIterator[httpx.AsyncClient]:
    async with await key_client(app, api_keys, "console:read") as client:
        yield client


async def test_a_buyer_is_read_by_profile_id_with_everything_the_console_knows(
    reader: httpx.AsyncClient, base: Base
) -> None:
    answer = await reader.get(f"/v1/customers/{base.anna}")
    assert answer.status_code == 200, answer.text
    anna = answer.json()
    assert anna["id"] == base.anna
    assert anna["orders"]["count"] == 4
    assert anna["orders"]["revenue_total"] == "12400.00"
    assert anna["lifecycle"] == {"stage": "loyal", "recorded": True}
    assert [s["key"] for s in anna["segments"]] == ["lifecycle-loyal", "repeat-buyers"]
    assert anna["predictions"]["rfm"] == {"r": 5, "f": 4, "m": 5, "segment": "champions"}
    assert anna["predictions"]["clv"] == "25000.00"
    assert anna["predictions"]["clv_interval"] == {"low": "21000.00", "high": "29500.00"}
    assert anna["predictions"]["p_alive"] == pytest.approx(0.93)
    assert anna["standard_basket"] == [
        {"sku": "bread", "quantity": 1},
        {"sku": "milk-1l", "quantity": 2},
    ]
    assert anna["stores"] == {"st-1": 4}


async def test_every_message_comes_with_the_decision_behind_it(
    reader: httpx.AsyncClient, base: Base
) -> None:
    messages = (await reader.get(f"/v1/customers/{base.anna}")).json()["messages"]
    assert [(m["campaign"], m["status"], m["reason"], m["holdout"]) for m in messages] == [
        ("win-back", "skipped", "holdout", True),
        ("welcome", "delivered", "sent", False),
    ]
    assert [step["code"] for step in messages[0]["decision"]] == ["in_audience", "holdout"]
    assert messages[1]["sent_at"] is not None


@pytest.mark.parametrize(
    ("kind", "spelled"),
    [
        ("phone", "8 (916) 123-45-67"),
        ("phone", "+7 916 123 45 67"),
        ("email", "Anna@Shop.RU"),
        ("loyalty_card", " LC-1001 "),
        ("id", "shop-1"),
        ("app_install_id", "app-1"),
    ],
)
async def test_a_buyer_is_found_by_any_identifier_spelled_as_a_shop_would(
    reader: httpx.AsyncClient, base: Base, kind: str, spelled: str
) -> None:
    answer = await reader.get("/v1/customers", params={kind: spelled})
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == base.anna


async def test_a_buyer_is_found_by_profile_id_too(reader: httpx.AsyncClient, base: Base) -> None:
    answer = await reader.get("/v1/customers", params={"profile_id": base.anna.upper()})
    assert answer.status_code == 200
    assert answer.json()["id"] == base.anna


async def test_identifiers_are_masked_for_a_reader(reader: httpx.AsyncClient, base: Base) -> None:
    anna = (await reader.get(f"/v1/customers/{base.anna}")).json()
    assert anna["identifiers_masked"] is True
    assert anna["phone"] == "+7*******67"
    assert anna["email"] == "a***@shop.ru"
    assert "+79161234567" not in str(anna), "not even inside a trait"
    assert anna["traits"]["region"] == "north"


async def test_a_key_with_the_admin_scope_sees_full_identifiers(
    app: FastAPI, api_keys: SqlApiKeys, base: Base
) -> None:
    async with await key_client(app, api_keys, "admin") as admin:
        anna = (await admin.get(f"/v1/customers/{base.anna}")).json()
    assert anna["identifiers_masked"] is False
    assert (anna["phone"], anna["email"]) == (ANNA["phone"], ANNA["email"])
    assert anna["traits"]["note"] == "call +79161234567 after 18:00"


@pytest.mark.parametrize(("username", "masked"), [("ivan", True), ("olga", True), ("root", False)])
async def test_only_an_admin_user_sees_full_identifiers(
    app: FastAPI, base: Base, username: str, masked: bool
) -> None:
    async with session_client(app, username) as client:
        anna = (await client.get(f"/v1/customers/{base.anna}")).json()
    assert anna["identifiers_masked"] is masked
    assert (anna["phone"] == ANNA["phone"]) is not masked


async def test_an_unknown_buyer_is_a_404_problem(reader: httpx.AsyncClient) -> None:
    for answer in (
        await reader.get("/v1/customers/7d1c1ec4-0000-4000-8000-000000000000"),
        await reader.get("/v1/customers", params={"phone": "+79990000000"}),
    ):
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == "/problems/not-found"
        assert "+7999" not in answer.text, "the problem does not repeat the identifier"


async def test_a_lookup_names_exactly_one_valid_identifier(reader: httpx.AsyncClient) -> None:
    none = await reader.get("/v1/customers")
    two = await reader.get("/v1/customers", params={"phone": "+79161234567", "id": "shop-1"})
    bad = await reader.get("/v1/customers", params={"email": "not an email"})
    for answer in (none, two, bad):
        assert answer.status_code == 422
        assert answer.json()["type"] == "/problems/invalid-request"
    assert bad.json()["errors"][0]["pointer"] == "/email"


async def test_reading_a_buyer_needs_the_console_read_scope(
    app: FastAPI, api_keys: SqlApiKeys, base: Base
) -> None:
    async with await key_client(app, api_keys, "events:write") as shop:
        assert (await shop.get(f"/v1/customers/{base.anna}")).status_code == 403
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console"
    ) as nobody:
        assert (await nobody.get(f"/v1/customers/{base.anna}")).status_code == 401
