"""The programme pages as a browser meets them: the list links each programme's report, and
the report shows who is at each step, who left and why, each variant's figures and the
programme against its holdout."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import insert

from services.console.api import programmes as programmes_api
from services.console.app import create_console_app
from services.console.pages import programmes as programme_pages
from services.console.security import require_scope
from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema
from shared.adapters.store.console_queries import open_console_queries
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.reports import SqlCampaignResults
from shared.adapters.store.sessions import SqlSessions
from shared.adapters.store.users import open_users
from shared.settings import Settings
from tests.api.test_programmes_api import WIN_BACK
from tests.conftest import T0

PASSWORD = "a long enough password"
HTML = {"Accept": "text/html"}


def _position(
    buyer: str, step: str, *, holdout: bool = False, exited: str | None = None
) -> dict[str, Any]:
    return {
        "programme": "ab-win-back",
        "profile_id": buyer,
        "entry": "stay",
        "version": 1,
        "step": step,
        "entered_at": T0,
        "arrived_at": T0,
        "due_at": None,
        "holdout": holdout,
        "exited_at": T0 if exited else None,
        "exit_reason": exited,
        "updated_at": T0,
    }


def _message(buyer: str, variant: str) -> dict[str, Any]:
    return {
        "key": f"m-{buyer}",
        "campaign": f"ab-win-back.email.{variant}",
        "profile_id": buyer,
        "channel": "email",
        "occurrence_id": "email:stay",
        "created_at": T0,
        "sent_at": T0,
        "status": "sent",
        "reason": "send_now",
        "holdout": False,
    }


@pytest.fixture
async def app(sqlite_url: str, tmp_path: Path, clock: SimulatedClock) -> AsyncIterator[FastAPI]:
    users = open_users(sqlite_url, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    queries = open_console_queries(sqlite_url)
    await users.create("ivan", PASSWORD, "analyst")
    definitions = SqlDefinitions(queries.engine, clock=clock)
    results = SqlCampaignResults(queries.engine)
    await definitions.programmes.put(
        "ab-win-back", definition=WIN_BACK, status="active", expected_version=None
    )
    positions = [_position(f"t{n}", "pause") for n in range(3)]
    positions += [_position(f"g{n}", "email", exited="goal") for n in range(2)]
    positions += [_position(f"h{n}", "email", holdout=True, exited="holdout") for n in range(2)]
    messages = [_message(b, v) for b, v in (("t0", "a"), ("t1", "b"), ("t2", "a"), ("g0", "b"))]
    async with queries.engine.begin() as conn:
        await conn.execute(insert(schema.programme_positions), positions)
        await conn.execute(insert(schema.messages), messages)
    yield create_console_app(
        Settings(data_dir=tmp_path),
        users,
        queries,
        sessions=SqlSessions(users.engine),
        routers=[
            programmes_api.router(definitions, require=require_scope, results=results, clock=clock),
            programme_pages.router(definitions, results, clock=clock),
        ],
    )
    await users.close()
    await queries.close()


def _csrf(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the page carries a CSRF token"
    return match.group(1)


@pytest.fixture
async def analyst(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console", headers=HTML
    ) as client:
        form = await client.get("/login")
        answer = await client.post(
            "/login", data={"username": "ivan", "password": PASSWORD, "csrf_token": _csrf(form)}
        )
        assert answer.status_code == 303, answer.text
        yield client


async def test_the_list_links_each_programme_to_its_report(analyst: httpx.AsyncClient) -> None:
    listed = await analyst.get("/programmes")
    assert listed.status_code == 200
    assert 'href="/programmes/ab-win-back/report"' in listed.text
    assert 'href="/programmes/win-back/report"' in listed.text  # a ready-made one


async def test_the_report_page_shows_steps_exits_variants_and_the_holdout(
    analyst: httpx.AsyncClient,
) -> None:
    page = await analyst.get("/programmes/ab-win-back/report")
    assert page.status_code == 200, page.text
    text = page.text
    assert re.search(r'id="entered">5<', text)
    assert re.search(r'id="held-out">2<', text)
    assert re.search(r'data-at="pause"><td>pause</td><td class="num">3<', text)
    assert re.search(r'data-exited="goal"><td>goal</td><td class="num">2<', text)
    variant_a = re.search(r'data-variant="a">\s*<th>a</th>\s*<td class="num">(\d+)</td>', text)
    assert variant_a is not None
    assert variant_a.group(1) == "2"
    assert 'data-arm="holdout"' in text
    assert (await analyst.get("/programmes/nope/report")).status_code == 404
    ready_made = await analyst.get("/programmes/win-back/report")
    assert ready_made.status_code == 200
