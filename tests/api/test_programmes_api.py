"""The programmes API as a marketer's tool sees it: write a programme of steps, read it
back with its version, start from a ready-made one, and be told the bad step exactly."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.console.api import programmes
from shared.adapters.store.definitions import SqlDefinitions
from tests.api.definitions_app import *  # noqa: F403 - the fixtures

WIN_BACK = {
    "name": "Win-back with an A/B email",
    "trigger": {"segment": "no-order-30d", "on": "entered"},
    "holdout": 0.1,
    "goal": {"event": "purchase", "within": "30d"},
    "priority": 45,
    "steps": [
        {
            "id": "email",
            "send": {
                "channels": ["email"],
                "variants": [
                    {"name": "a", "share": 0.5, "templates": {"email": "win-back-email"}},
                    {"name": "b", "share": 0.5, "templates": {"email": "pre-churn-email"}},
                ],
            },
        },
        {"id": "pause", "wait": {"for": "7d"}},
        {"id": "sms", "send": {"channels": ["sms"], "templates": {"sms": "win-back-sms"}}},
    ],
}


@pytest.fixture(autouse=True)
def programmes_routes(definitions_app: FastAPI, definitions: SqlDefinitions) -> None:
    definitions_app.include_router(programmes.router(definitions))


def problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{kind}"
    return body


async def test_a_new_programme_is_a_draft_read_back_with_its_steps_and_etag(
    writer: httpx.AsyncClient,
) -> None:
    created = await writer.put("/v1/programmes/ab-win-back", json=WIN_BACK)
    assert created.status_code == 201, created.text
    assert created.headers["etag"] == '"1"'
    read = await writer.get("/v1/programmes/ab-win-back")
    assert read.headers["etag"] == '"1"'
    body = read.json()
    assert (body["key"], body["status"], body["version"], body["builtin"]) == (
        "ab-win-back",
        "draft",
        1,
        False,
    )
    assert body["steps"] == WIN_BACK["steps"]


async def test_every_change_is_a_new_version_and_the_store_keeps_the_old_one(
    writer: httpx.AsyncClient, definitions: SqlDefinitions
) -> None:
    await writer.put("/v1/programmes/ab-win-back", json=WIN_BACK)
    missing = await writer.put("/v1/programmes/ab-win-back", json=WIN_BACK)
    problem(missing, 428, "precondition-required")
    shorter = {**WIN_BACK, "steps": WIN_BACK["steps"][:1]}
    changed = await writer.put(
        "/v1/programmes/ab-win-back", json=shorter, headers={"If-Match": '"1"'}
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["etag"] == '"2"'
    stale = await writer.put(
        "/v1/programmes/ab-win-back", json=WIN_BACK, headers={"If-Match": '"1"'}
    )
    problem(stale, 412, "stale-version")
    first = await definitions.programmes.version("ab-win-back", 1)
    assert first is not None
    assert len(first.definition["steps"]) == 3


async def test_the_list_has_the_stored_programmes_and_the_ready_made_ones(
    reader: httpx.AsyncClient, writer: httpx.AsyncClient
) -> None:
    await writer.put("/v1/programmes/ab-win-back", json=WIN_BACK)
    listed = await reader.get("/v1/programmes")
    assert listed.status_code == 200, listed.text
    found = {p["key"]: p for p in listed.json()["programmes"]}
    assert {"ab-win-back", "welcome", "win-back", "abandoned-cart"} <= set(found)
    assert found["win-back"]["builtin"] is True
    assert found["win-back"]["status"] == "draft"
    assert [s["id"] for s in found["win-back"]["steps"]] == [
        "email",
        "pause",
        "sms",
        "until-60",
        "sunset",
    ]
    ready = await reader.get("/v1/programmes/welcome")
    assert ready.status_code == 200, ready.text
    assert "etag" not in ready.headers


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"steps": [{"id": "email", "send": {"channels": ["fax"]}}]}, "/steps/0/send/channels/0"),
        (
            {"steps": [{"id": "e", "send": {"channels": ["email"], "templates": {"email": "x"}}}]},
            "/steps/0/send/templates/email",
        ),
        ({"trigger": {"segment": "no-such-segment"}}, "/trigger/segment"),
        ({"steps": [{"id": "w", "wait": {"for": "7d"}, "next": "w"}]}, "/steps/0/next"),
    ],
)
async def test_a_bad_programme_is_refused_at_the_bad_field_and_nothing_is_saved(
    writer: httpx.AsyncClient, change: dict[str, Any], pointer: str
) -> None:
    refused = await writer.put("/v1/programmes/broken", json={**WIN_BACK, **change})
    body = problem(refused, 422, "invalid-programme")
    assert body["errors"][0]["pointer"] == pointer
    problem(await writer.get("/v1/programmes/broken"), 404, "not-found")


async def test_reading_needs_the_read_scope_and_writing_the_write_scope(
    reader: httpx.AsyncClient, nobody: httpx.AsyncClient
) -> None:
    assert (await nobody.get("/v1/programmes")).status_code == 401
    denied = await reader.put("/v1/programmes/ab-win-back", json=WIN_BACK)
    assert denied.status_code == 403


async def test_a_shop_switches_a_ready_made_programme_on_and_off(
    writer: httpx.AsyncClient,
) -> None:
    on = await writer.post("/v1/programmes/win-back/activate")
    assert on.status_code == 201, on.text
    assert (on.json()["status"], on.headers["etag"]) == ("active", '"1"')
    assert [s["id"] for s in on.json()["steps"]][:2] == ["email", "pause"]
    stale = await writer.post("/v1/programmes/win-back/pause")
    assert stale.status_code == 428
    off = await writer.post("/v1/programmes/win-back/pause", headers={"If-Match": '"1"'})
    assert (off.status_code, off.json()["status"], off.headers["etag"]) == (200, "paused", '"2"')
    assert (await writer.post("/v1/programmes/nope/activate")).status_code == 404
