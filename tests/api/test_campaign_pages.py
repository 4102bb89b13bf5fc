"""The campaign pages as a browser meets them: an analyst reads but cannot switch a
campaign on, a form without its CSRF token is refused, and a bad field is named beside it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from services.console.api import campaigns as campaigns_api
from services.console.app import create_console_app
from services.console.pages import campaigns as campaign_pages
from services.console.security import require_scope
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.console_queries import open_console_queries
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.reports import SqlCampaignResults
from shared.adapters.store.sessions import SqlSessions
from shared.adapters.store.users import open_users
from shared.settings import Settings

PASSWORD = "a long enough password"
HTML = {"Accept": "text/html"}


@pytest.fixture
async def app(sqlite_url: str, tmp_path: Path, clock: SimulatedClock) -> AsyncIterator[FastAPI]:
    users = open_users(sqlite_url, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    queries = open_console_queries(sqlite_url)
    await users.create("olga", PASSWORD, "marketer")
    await users.create("ivan", PASSWORD, "analyst")
    definitions = SqlDefinitions(queries.engine, clock=clock)
    results = SqlCampaignResults(queries.engine)
    yield create_console_app(
        Settings(data_dir=tmp_path),
        users,
        queries,
        sessions=SqlSessions(users.engine),
        routers=[
            campaigns_api.router(definitions, results, clock=clock, require=require_scope),
            campaign_pages.router(definitions, results, clock=clock),
        ],
    )
    await users.close()
    await queries.close()


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def _browser(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console", headers=HTML
    )


async def _logged_in(client: httpx.AsyncClient, username: str) -> str:
    form = await client.get("/login")
    answer = await client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(form)},
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(await client.get("/campaigns"))


async def test_an_analyst_sees_campaigns_read_only_and_cannot_activate_one(app: FastAPI) -> None:
    async with _browser(app) as client:
        csrf = await _logged_in(client, "ivan")
        listed = await client.get("/campaigns")
        assert listed.status_code == 200
        assert "Win-back after 30 days" in listed.text
        assert "Activate" not in listed.text
        assert "Start from this" not in listed.text
        form = await client.get("/campaigns/second-order/edit")
        assert "<fieldset disabled>" in form.text
        refused = await client.post(
            "/campaigns/second-order/activate", data={"csrf_token": csrf, "version": ""}
        )
        assert refused.status_code == 403
        assert (await client.get("/v1/campaigns/second-order")).json()["builtin"] is True


async def test_a_form_without_its_csrf_token_is_refused(app: FastAPI) -> None:
    async with _browser(app) as client:
        await _logged_in(client, "olga")
        refused = await client.post("/campaigns/second-order/activate", data={"version": ""})
        assert refused.status_code == 403
        assert (await client.get("/v1/campaigns/second-order")).json()["status"] == "draft"


async def test_a_bad_field_is_named_beside_it_and_nothing_is_saved(app: FastAPI) -> None:
    async with _browser(app) as client:
        csrf = await _logged_in(client, "olga")
        start = await client.get("/campaigns/new?from=welcome-lead")
        assert 'value="welcome-lead"' in start.text
        answer = await client.post(
            "/campaigns/save",
            data={
                "csrf_token": csrf,
                "key": "welcome-vip",
                "name": "Welcome, VIP",
                "trigger_kind": "segment",
                "trigger_segment": "lifecycle-lead",
                "trigger_on": "entered",
                "holdout": "0.7",
                "channels": "email",
                "templates_email": "welcome-email",
                "goal_event": "purchase",
                "goal_within": "30d",
                "priority": "50",
                "reentry": "once_per_buyer",
            },
        )
        assert answer.status_code == 422
        assert re.search(r'data-field="holdout">expected a share from 0 to 0.5<', answer.text)
        assert (await client.get("/v1/campaigns/welcome-vip")).status_code == 404


@pytest.mark.parametrize(
    ("pointer", "field"),
    [
        ("/trigger/segment", "trigger_segment"),
        ("/trigger/before", "trigger_offset"),
        ("/trigger/where/total", "trigger_where"),
        ("/trigger", "trigger_kind"),
        ("/goal/within", "goal_within"),
        ("/templates/sms", "templates_sms"),
        ("/channels/1", "channels"),
        ("/audience/between", "audience"),
        ("/active/from", ""),
        ("/", ""),
    ],
)
def test_a_campaign_pointer_names_its_form_field(pointer: str, field: str) -> None:
    assert campaign_pages.field_of(pointer) == field


async def test_the_report_of_a_campaign_with_no_holdout_says_no_control_group(
    app: FastAPI,
) -> None:
    # Seen: the win-back report (holdout 0) said "too few buyers".
    async with _browser(app) as client:
        await _logged_in(client, "ivan")
        page = await client.get("/campaigns/win-back-30d/report")
        assert page.status_code == 200
        assert re.search(r'id="verdict">No control group<', page.text)
        assert 'id="no-control"' in page.text
        assert "too few buyers" not in page.text
        assert 'data-arm="holdout"' not in page.text
        assert "no control group: no uplift to show" in page.text
        held = await client.get("/campaigns/second-order/report")
        assert re.search(r'id="verdict">Too few buyers<', held.text)
        assert 'data-arm="holdout"' in held.text


async def test_every_bad_field_is_named_beside_it_at_once_and_the_input_kept(
    app: FastAPI,
) -> None:
    # Seen: the form showed only the first error.
    async with _browser(app) as client:
        csrf = await _logged_in(client, "olga")
        answer = await client.post(
            "/campaigns/save",
            data={
                "csrf_token": csrf,
                "key": "welcome-vip",
                "name": "",
                "trigger_kind": "segment",
                "trigger_segment": "lifecycle-lead",
                "trigger_on": "entered",
                "delay": "soon",
                "holdout": "0.7",
                "audience": "{not json",
                "channels": "email",
                "templates_email": "welcome-email",
                "goal_event": "purchase",
                "goal_within": "3 days",
                "priority": "high",
                "reentry": "once_per_buyer",
            },
        )
        assert answer.status_code == 422
        shown = dict(re.findall(r'data-field="([a-z_]+)">([^<]+)<', answer.text))
        assert set(shown) == {"name", "delay", "holdout", "audience", "goal_within", "priority"}
        assert shown["holdout"] == "expected a share from 0 to 0.5"
        assert shown["priority"] == "expected a whole number"
        assert shown["audience"].startswith("not JSON")
        assert 'value="3 days"' in answer.text, "the marketer's input is kept"
        assert "{not json" in answer.text
        assert (await client.get("/v1/campaigns/welcome-vip")).status_code == 404
