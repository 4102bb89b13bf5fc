"""The console's login, sessions, CSRF check and roles, as a marketer's browser meets them.

The console runs on a real SQLite database with real users (and the API keys of
``conftest.py``); a small router stands in for the console's JSON API, to check
what each role, and each key's scope, may do there.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI
from itsdangerous import TimestampSigner
from sqlalchemy import insert

from services.bootstrap import console_accounts
from services.console.app import (
    LIFECYCLE_SEGMENTS,
    SESSION_COOKIE,
    create_console_app,
    mount_console,
)
from services.console.logins import ADDRESS_BURST as LOGIN_BURST
from services.console.logins import (
    DEVICE_COOKIE,
    DEVICE_LIFETIME,
    USER_FAILURE_BURST,
    USER_FAILURE_RATE,
    DeviceCookies,
    LoginLimiter,
)
from services.console.security import Analyst, Marketer, disable_user, require_scope
from services.console.settings import console_config
from services.http.bodies import MAX_BODY_BYTES
from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema
from shared.adapters.store.api_keys import SqlApiKeys
from shared.adapters.store.console_queries import SqlConsoleQueries, open_console_queries
from shared.adapters.store.sessions import SqlSessions
from shared.adapters.store.users import SqlUsers, open_users
from shared.domain.segments import lifecycle_segments
from shared.settings import Settings
from tests.support.chunked import CHUNK, post_chunked, repeated

PASSWORD = "a long enough password"
HTML = {"Accept": "text/html"}


@pytest.fixture
async def users(sqlite_url: str) -> AsyncIterator[SqlUsers]:
    users = open_users(sqlite_url, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    await users.create("olga", PASSWORD, "marketer")
    await users.create("ivan", PASSWORD, "analyst")
    yield users
    await users.close()


@pytest.fixture
async def queries(sqlite_url: str) -> AsyncIterator[SqlConsoleQueries]:
    queries = open_console_queries(sqlite_url)
    now = datetime(2026, 3, 2, tzinfo=UTC)
    async with queries.engine.begin() as conn:
        await conn.execute(
            insert(schema.profiles),
            [{"id": f"p{i}", "created_at": now, "updated_at": now} for i in range(5)],
        )
        await conn.execute(
            insert(schema.memberships),
            [
                {"profile_id": "p0", "segment": "lifecycle-lead", "entered_at": now},
                {"profile_id": "p1", "segment": "lifecycle-loyal", "entered_at": now},
                {"profile_id": "p2", "segment": "lifecycle-loyal", "entered_at": now},
            ],
        )
    yield queries
    await queries.close()


def campaigns_router() -> APIRouter:
    """Stands in for the console's JSON API: a read for anyone, a write for marketers."""
    router = APIRouter()

    @router.get("/v1/campaigns")
    async def list_campaigns(user: Analyst) -> dict[str, str]:
        return {"read_by": user.username}

    @router.put("/v1/campaigns/{key}")
    async def save_campaign(key: str, user: Marketer) -> dict[str, str]:
        return {"saved": key, "by": user.username}

    @router.put("/v1/segments/{key}", dependencies=[Depends(require_scope("console:write"))])
    async def save_segment(key: str) -> dict[str, str]:
        return {"saved": key}

    return router


def console(
    tmp_path: Path,
    users: SqlUsers,
    queries: SqlConsoleQueries,
    api_keys: SqlApiKeys | None = None,
    logins: LoginLimiter | None = None,
    sessions: SqlSessions | None = None,
    **settings: str,
) -> FastAPI:
    return create_console_app(
        Settings(data_dir=tmp_path, **settings),
        users,
        queries,
        sessions=sessions or SqlSessions(users.engine),
        routers=[campaigns_router()],
        api_keys=api_keys,
        logins=logins,
    )


@pytest.fixture
def app(
    tmp_path: Path, users: SqlUsers, queries: SqlConsoleQueries, api_keys: SqlApiKeys
) -> FastAPI:
    return console(tmp_path, users, queries, api_keys)


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console", headers=HTML
    ) as client:
        yield client


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the page carries a CSRF token"
    return match.group(1)


async def log_in(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    """Log in through the form; the session's CSRF token, from the page after login."""
    form = await client.get("/login")
    answer = await client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(form)},
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(await client.get(answer.headers["location"]))


async def test_a_marketer_logs_in_and_sees_buyers_by_lifecycle_stage(
    browser: httpx.AsyncClient,
) -> None:
    form = await browser.get("/login")
    assert form.status_code == 200
    answer = await browser.post(
        "/login", data={"username": "Olga", "password": PASSWORD, "csrf_token": csrf_of(form)}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    cookies = answer.headers.get_list("set-cookie")
    (cookie,) = [c.lower() for c in cookies if c.startswith(f"{SESSION_COOKIE}=")]
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie, "plain http here: a Secure cookie would never come back"
    page = await browser.get("/")
    assert page.status_code == 200
    assert "olga" in page.text
    assert re.search(r'<strong id="buyers">5</strong>', page.text)
    loyal = re.search(r'data-stage="loyal">\s*<td>loyal</td>\s*<td class="num">(\d+)', page.text)
    assert loyal
    assert loyal.group(1) == "2"
    assert page.headers["x-frame-options"] == "DENY"
    assert "htmx.min.js" in page.text
    script = await browser.get("/static/vendor/htmx.min.js")
    assert script.status_code == 200
    assert script.text.startswith("var htmx=")


async def test_a_wrong_password_is_refused_and_opens_nothing(browser: httpx.AsyncClient) -> None:
    form = await browser.get("/login")
    for username, password in (("olga", "not the password"), ("nobody", PASSWORD)):
        answer = await browser.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": csrf_of(form)},
        )
        assert answer.status_code == 401
        assert "Wrong username or password." in answer.text, "the same words for both"
    page = await browser.get("/")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/"


async def test_guessing_passwords_is_slowed_down_to_one_try_every_few_seconds(
    browser: httpx.AsyncClient,
) -> None:
    form = await browser.get("/login")
    answers = [
        await browser.post(
            "/login",
            data={"username": "olga", "password": f"guess {n}", "csrf_token": csrf_of(form)},
        )
        for n in range(LOGIN_BURST + 1)
    ]
    assert [a.status_code for a in answers] == [401] * LOGIN_BURST + [429]
    refused = answers[-1]
    assert "Too Many Requests" in refused.text or "too many login attempts" in refused.text
    assert int(refused.headers["retry-after"]) >= 1


async def test_the_session_cookie_is_secure_when_the_console_is_on_https(
    tmp_path: Path, users: SqlUsers, queries: SqlConsoleQueries
) -> None:
    app = console(tmp_path, users, queries, public_url="https://crm.shop.example")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://crm.shop.example"
    ) as client:
        await log_in(client, "olga")
        (cookie,) = [c for c in client.cookies.jar if c.name == SESSION_COOKIE]
        assert cookie.secure
        (device,) = [c for c in client.cookies.jar if c.name == DEVICE_COOKIE]
        assert device.secure
        assert (await client.get("/")).status_code == 200


async def test_logging_out_ends_the_session(browser: httpx.AsyncClient) -> None:
    token = await log_in(browser, "olga")
    answer = await browser.post("/logout", data={"csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    assert (await browser.get("/")).status_code == 303


@pytest.mark.parametrize("token", [None, "forged-token"], ids=["no-token", "wrong-token"])
async def test_a_form_without_the_session_token_is_refused(
    browser: httpx.AsyncClient, token: str | None
) -> None:
    await log_in(browser, "olga")
    data = {} if token is None else {"csrf_token": token}
    page = await browser.post("/logout", data=data)
    assert page.status_code == 403
    assert "CSRF token" in page.text
    assert page.headers["content-type"].startswith("text/html"), "a browser gets a page"
    api = await browser.put(
        "/v1/campaigns/win-back",
        headers={"Accept": "application/json", **({"X-CSRF-Token": token} if token else {})},
    )
    assert api.status_code == 403
    assert api.headers["content-type"] == "application/problem+json"
    assert api.json()["type"] == "/problems/forbidden"
    assert (await browser.get("/")).status_code == 200, "still logged in: nothing was done"


async def test_the_login_form_needs_its_token_too(browser: httpx.AsyncClient) -> None:
    await browser.get("/login")
    answer = await browser.post("/login", data={"username": "olga", "password": PASSWORD})
    assert answer.status_code == 403
    fresh = httpx.AsyncClient(transport=browser._transport, base_url="http://console")
    async with fresh:
        no_session = await fresh.post("/login", data={"username": "olga", "password": PASSWORD})
    assert no_session.status_code == 403


async def test_an_analyst_reads_but_may_not_write(browser: httpx.AsyncClient) -> None:
    token = await log_in(browser, "ivan")
    read = await browser.get("/v1/campaigns", headers={"Accept": "application/json"})
    assert read.json() == {"read_by": "ivan"}
    write = await browser.put(
        "/v1/campaigns/win-back",
        headers={"Accept": "application/json", "X-CSRF-Token": token},
    )
    assert write.status_code == 403
    assert write.json()["detail"] == "this needs the marketer role; ivan is analyst"


async def test_a_marketer_may_write(browser: httpx.AsyncClient) -> None:
    token = await log_in(browser, "olga")
    write = await browser.put(
        "/v1/campaigns/win-back",
        headers={"Accept": "application/json", "X-CSRF-Token": token},
    )
    assert write.status_code == 200
    assert write.json() == {"saved": "win-back", "by": "olga"}


async def test_without_a_session_a_browser_is_sent_to_login_and_an_api_client_gets_401(
    browser: httpx.AsyncClient,
) -> None:
    page = await browser.get("/v1/campaigns?page=2")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/v1/campaigns%3Fpage%3D2"
    api = await browser.get("/v1/campaigns", headers={"Accept": "application/json"})
    assert api.status_code == 401
    assert api.json()["type"] == "/problems/unauthorized"


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("/v1/campaigns?page=2", "/v1/campaigns?page=2"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil", "/"),
    ],
    ids=["page-asked-for", "other-host", "other-site", "backslash"],
)
async def test_login_returns_to_the_page_asked_for_and_never_to_another_site(
    browser: httpx.AsyncClient, target: str, landing: str
) -> None:
    form = await browser.get("/login", params={"next": target})
    fields = {"username": "olga", "password": PASSWORD, "csrf_token": csrf_of(form)}
    answer = await browser.post("/login", data={**fields, "next": target})
    assert answer.headers["location"] == landing


async def test_a_disabled_user_is_logged_out_at_their_next_request(
    browser: httpx.AsyncClient, users: SqlUsers
) -> None:
    await log_in(browser, "olga")
    assert await users.disable("olga")
    assert (await browser.get("/")).status_code == 303


async def test_disabling_a_user_ends_every_session_of_theirs_on_the_server(
    app: FastAPI, browser: httpx.AsyncClient, users: SqlUsers
) -> None:
    await log_in(browser, "olga")
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://console", headers=HTML
        ) as laptop,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://console", headers=HTML
        ) as his,
    ):
        await log_in(laptop, "olga")
        await log_in(his, "ivan")
        accounts = console_accounts(users.engine)
        assert await disable_user(accounts.users, accounts.sessions, "Olga") == 2
        olga = await users.find("olga")
        assert olga is not None
        assert not olga.active
        assert await accounts.sessions.end_all(olga.id) == 0, "none of hers was left live"
        assert (await laptop.get("/")).status_code == 303
        assert (await his.get("/")).status_code == 200, "ivan stays logged in"
    assert await disable_user(accounts.users, accounts.sessions, "nobody") is None


async def test_beside_ingest_the_console_answers_every_path_ingest_does_not(
    tmp_path: Path, users: SqlUsers, queries: SqlConsoleQueries
) -> None:
    ingest = FastAPI()

    @ingest.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    mount_console(ingest, console(tmp_path, users, queries))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ingest), base_url="http://nudge"
    ) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert "set-cookie" not in (await client.get("/healthz")).headers
        await log_in(client, "olga")
        assert (await client.get("/v1/campaigns")).json() == {"read_by": "olga"}


def test_the_dashboard_counts_the_lifecycle_segments_the_segmenter_keeps() -> None:
    assert [key for _stage, key in LIFECYCLE_SEGMENTS] == [s.key for s in lifecycle_segments()]


async def test_the_json_api_admits_a_script_by_its_api_key_or_a_user_by_role(
    app: FastAPI, browser: httpx.AsyncClient, api_keys: SqlApiKeys
) -> None:
    _key, writer = await api_keys.create("campaign script", ["console:write"])
    _key, reader = await api_keys.create("report script", ["console:read"])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console"
    ) as script:
        saved = await script.put("/v1/segments/vip", headers={"Authorization": f"Bearer {writer}"})
        assert saved.json() == {"saved": "vip"}, "no session, so no CSRF token to send"
        refused = await script.put(
            "/v1/segments/vip", headers={"Authorization": f"Bearer {reader}"}
        )
        assert refused.status_code == 403
        unknown = await script.put("/v1/segments/vip", headers={"Authorization": "Bearer nk_x"})
        assert unknown.status_code == 401
    token = await log_in(browser, "ivan")
    analyst = await browser.put(
        "/v1/segments/vip", headers={"Accept": "application/json", "X-CSRF-Token": token}
    )
    assert analyst.status_code == 403
    await browser.post("/logout", data={"csrf_token": token})
    token = await log_in(browser, "olga")
    marketer = await browser.put(
        "/v1/segments/vip", headers={"Accept": "application/json", "X-CSRF-Token": token}
    )
    assert marketer.json() == {"saved": "vip"}


class Seconds:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def seconds() -> Seconds:
    return Seconds()


@pytest.fixture
def limited(
    tmp_path: Path, users: SqlUsers, queries: SqlConsoleQueries, seconds: Seconds
) -> FastAPI:
    """The console counting login attempts on :class:`Seconds`."""
    return console(tmp_path, users, queries, logins=LoginLimiter(clock=seconds))


@asynccontextmanager
async def browser_at(
    app: FastAPI, address: str, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser whose requests come from ``address``."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 50000)),
        base_url="http://console",
        headers={**HTML, **(headers or {})},
    ) as client:
        yield client


async def login_answer(
    client: httpx.AsyncClient, password: str, username: str = "olga"
) -> httpx.Response:
    form = await client.get("/login")
    return await client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(form)},
    )


async def try_login(client: httpx.AsyncClient, password: str, username: str = "olga") -> int:
    return (await login_answer(client, password, username)).status_code


def retry_after(answer: httpx.Response) -> int:
    assert answer.status_code == 429, answer.text
    return int(answer.headers["retry-after"])


async def test_twelve_wrong_passwords_from_one_address_do_not_lock_the_user_out(
    limited: FastAPI, seconds: Seconds
) -> None:
    async with browser_at(limited, "198.51.100.20") as olga:
        assert await try_login(olga, PASSWORD) == 303, "her own browser, known from then on"
        async with browser_at(limited, "203.0.113.7") as guesser:
            answers = [await try_login(guesser, f"guess {n}") for n in range(12)]
            assert answers == [401] * LOGIN_BURST + [429] * (12 - LOGIN_BURST)
            waited = retry_after(await login_answer(guesser, PASSWORD))
            assert await try_login(olga, PASSWORD) == 303, "from her own browser olga logs in"
            assert (await olga.get("/")).status_code == 200
            seconds.now += waited
            assert await try_login(guesser, PASSWORD) == 303, "after Retry-After, from anywhere"


async def test_guesses_from_many_addresses_share_the_users_failure_budget(
    limited: FastAPI, seconds: Seconds
) -> None:
    async with browser_at(limited, "198.51.100.20") as olga:
        assert await try_login(olga, PASSWORD) == 303  # before the attack: a known browser
        for n in range(USER_FAILURE_BURST):
            async with browser_at(limited, f"203.0.113.{n}") as guesser:
                assert await try_login(guesser, f"guess {n}") == 401
        for n in range(30):  # a botnet: one fresh address per guess, each with its burst
            async with browser_at(limited, f"192.0.2.{n}") as guesser:
                answer = await login_answer(guesser, f"botnet guess {n}")
                assert 1 <= retry_after(answer) <= 1 / USER_FAILURE_RATE
        seconds.now += 1 / USER_FAILURE_RATE
        async with browser_at(limited, "192.0.2.200") as guesser:
            assert await try_login(guesser, "one a minute") == 401
        async with browser_at(limited, "192.0.2.201") as guesser:
            assert await try_login(guesser, "and no more") == 429
        assert await try_login(olga, PASSWORD) == 303, "her own browser is never kept waiting"
        async with browser_at(limited, "198.51.100.21") as ivan:
            assert await try_login(ivan, "ivan's typo", "ivan") == 401, "other users: unslowed"
            assert await try_login(ivan, PASSWORD, "ivan") == 303
            answer = await login_answer(ivan, PASSWORD, "olga")
            assert retry_after(answer) >= 1, "a device cookie names one user: ivan's is not olga's"
        async with browser_at(limited, "198.51.100.22") as new_laptop:
            waited = retry_after(await login_answer(new_laptop, PASSWORD))
            seconds.now += waited
            assert await try_login(new_laptop, PASSWORD) == 303, "slowed, never locked"


async def test_a_known_browser_that_keeps_failing_counts_as_unknown(limited: FastAPI) -> None:
    async with browser_at(limited, "198.51.100.20") as stolen:
        assert await try_login(stolen, PASSWORD) == 303
        for n in range(USER_FAILURE_BURST):
            assert await try_login(stolen, f"guess {n}") == 401, "its own budget first"
        for n in range(LOGIN_BURST - 1):  # its first login, still unknown, took one
            assert await try_login(stolen, f"more {n}") == 401, "then the user's and address's"
        assert await try_login(stolen, PASSWORD) == 429, "now as slow as any unknown browser"
    async with browser_at(limited, "198.51.100.21") as laptop:  # the user's budget: 9 spent
        assert await try_login(laptop, "a typo") == 401
        assert await try_login(laptop, PASSWORD) == 429, "now olga is under attack"


async def test_a_forged_or_expired_device_cookie_is_no_known_browser(
    tmp_path: Path, users: SqlUsers, queries: SqlConsoleQueries, seconds: Seconds
) -> None:
    app = console(tmp_path, users, queries, logins=LoginLimiter(clock=seconds))
    key = console_config(Settings(data_dir=tmp_path)).session_key
    expired = DeviceCookies(key, clock=lambda: time.time() - DEVICE_LIFETIME.total_seconds() - 1)
    for n in range(USER_FAILURE_BURST):  # olga is under attack
        async with browser_at(app, f"203.0.113.{n}") as guesser:
            assert await try_login(guesser, f"guess {n}") == 401
    cookies = {
        "forged": "eyJ1c2VyIjoib2xnYSJ9.forged",
        "other key": DeviceCookies(b"k" * 32).issue("olga"),
        "expired": expired.issue("olga"),
        "live": DeviceCookies(key).issue("olga"),
    }
    answers = {}
    for name, cookie in cookies.items():
        async with browser_at(app, "198.51.100.30") as browser:
            browser.cookies.set(DEVICE_COOKIE, cookie, path="/login")
            answers[name] = await try_login(browser, PASSWORD)
    assert answers == {"forged": 429, "other key": 429, "expired": 429, "live": 303}


async def test_the_device_cookie_is_sent_to_the_login_form_only(
    browser: httpx.AsyncClient,
) -> None:
    form = await browser.get("/login")
    answer = await browser.post(
        "/login", data={"username": "olga", "password": PASSWORD, "csrf_token": csrf_of(form)}
    )
    (device,) = [c for c in answer.headers.get_list("set-cookie") if c.startswith(DEVICE_COOKIE)]
    attributes = device.lower()
    assert "path=/login" in attributes
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert f"max-age={int(DEVICE_LIFETIME.total_seconds())}" in attributes


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", True),
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("::ffff:203.0.113.7", "203.0.113.7", True),
    ],
    ids=["same-ipv6-64", "another-ipv6-64", "ipv4-mapped"],
)
async def test_ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4(
    limited: FastAPI, first: str, second: str, shared: bool
) -> None:
    async with browser_at(limited, first) as guesser:
        for n in range(LOGIN_BURST):
            assert await try_login(guesser, f"guess {n}", "ivan") == 401
    async with browser_at(limited, second) as neighbour:
        assert await try_login(neighbour, PASSWORD, "olga") == (429 if shared else 303)


async def test_behind_a_trusted_proxy_each_forwarded_client_is_counted_on_its_own(
    tmp_path: Path, users: SqlUsers, queries: SqlConsoleQueries, seconds: Seconds
) -> None:
    trusted = Settings(trusted_proxies="10.9.0.0/24").trusted_proxies
    app = console(tmp_path, users, queries, logins=LoginLimiter(trusted, clock=seconds))
    spoofed = {"X-Forwarded-For": "192.0.2.99, 203.0.113.7"}  # the client wrote the first
    async with browser_at(app, "10.9.0.3", spoofed) as guesser:  # guessing at ivan here
        answers = [await try_login(guesser, f"guess {n}", "ivan") for n in range(LOGIN_BURST + 1)]
        assert answers[-1] == 429
    async with browser_at(app, "10.9.0.3", {"X-Forwarded-For": "192.0.2.99"}) as olga:
        assert await try_login(olga, PASSWORD) == 303, "another client behind the same proxy"
    async with browser_at(app, "203.0.113.7", {"X-Forwarded-For": "198.51.100.1"}) as direct:
        assert await try_login(direct, PASSWORD) == 429, "X-Forwarded-For of no proxy: ignored"


def session_cookie(client: httpx.AsyncClient) -> str:
    (cookie,) = [c.value for c in client.cookies.jar if c.name == SESSION_COOKIE]
    assert cookie is not None
    return cookie


async def with_cookie(app: FastAPI, cookie: str, path: str = "/") -> httpx.Response:
    """``path`` asked for by another browser holding a copy of the session cookie."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://console",
        headers={"Accept": "application/json"},
        cookies={SESSION_COOKIE: cookie},
    ) as copy:
        return await copy.get(path)


async def test_a_copy_of_the_cookie_is_refused_after_logout(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    token = await log_in(browser, "olga")
    copied = session_cookie(browser)
    assert (await with_cookie(app, copied, "/v1/campaigns")).json() == {"read_by": "olga"}

    await browser.post("/logout", data={"csrf_token": token})

    refused = await with_cookie(app, copied, "/v1/campaigns")
    assert refused.status_code == 401
    assert refused.json()["type"] == "/problems/unauthorized"


async def test_logging_in_again_ends_the_session_the_browser_held(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    await log_in(browser, "olga")
    copied = session_cookie(browser)
    await log_in(browser, "ivan")
    refused = await with_cookie(app, copied, "/v1/campaigns")
    assert refused.status_code == 401, "the first login's session ended on the server"
    assert (await with_cookie(app, session_cookie(browser), "/v1/campaigns")).json() == {
        "read_by": "ivan"
    }


async def test_logging_out_ends_that_session_only(app: FastAPI, browser: httpx.AsyncClient) -> None:
    await log_in(browser, "olga")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console", headers=HTML
    ) as laptop:
        token = await log_in(laptop, "olga")
        await laptop.post("/logout", data={"csrf_token": token})
        assert (await laptop.get("/")).status_code == 303
    assert (await browser.get("/")).status_code == 200, "her other browser stays logged in"


async def test_a_session_ends_on_the_server_after_its_hours(
    tmp_path: Path, users: SqlUsers, queries: SqlConsoleQueries, clock: SimulatedClock
) -> None:
    app = console(tmp_path, users, queries, sessions=SqlSessions(users.engine, clock=clock))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console", headers=HTML
    ) as client:
        await log_in(client, "olga")
        copied = session_cookie(client)
        clock.advance(timedelta(hours=8) - timedelta(seconds=1))
        assert (await with_cookie(app, copied, "/v1/campaigns")).status_code == 200
        clock.advance(timedelta(seconds=1))
        assert (await with_cookie(app, copied, "/v1/campaigns")).status_code == 401


def signed_session(tmp_path: Path, session: dict[str, str]) -> str:
    """A session cookie holding ``session``, signed as the console signs them: with its
    real key (kept under ``tmp_path``), the way Starlette's ``SessionMiddleware`` does."""
    key = console_config(Settings(data_dir=tmp_path)).session_key
    data = base64.b64encode(json.dumps(session).encode())
    return TimestampSigner(key.decode()).sign(data).decode()


async def test_a_cookie_with_a_forged_session_id_opens_nothing(
    app: FastAPI, tmp_path: Path, users: SqlUsers
) -> None:
    olga = await users.find("olga")
    assert olga is not None
    badly_signed = "eyJzZXNzaW9uIjogIngifQ==.forged.signature"
    unknown_id = signed_session(tmp_path, {"session": secrets.token_urlsafe(32), "csrf": "t"})
    before_0013 = signed_session(tmp_path, {"user": olga.id, "csrf": "t"})
    for cookie in (badly_signed, unknown_id, before_0013):
        assert (await with_cookie(app, cookie, "/v1/campaigns")).status_code == 401, cookie
    live = await SqlSessions(users.engine).start(olga.id, timedelta(hours=1))
    signed = signed_session(tmp_path, {"session": live, "csrf": "t"})
    opened = await with_cookie(app, signed, "/v1/campaigns")
    assert opened.json() == {"read_by": "olga"}, "signed like this, a live session opens"


async def test_a_huge_chunked_login_form_is_cut_off_at_the_limit(app: FastAPI) -> None:
    answer = await post_chunked(
        app,
        "/login",
        {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"},
        itertools.chain.from_iterable(  # fields under the form's own 1 MiB bound
            itertools.chain([f"&f{n}=".encode()], repeated(b"o", 1024 * 1024 - CHUNK))
            for n in range(200)
        ),
    )
    assert answer.status == 413
    assert answer.problem()["type"] == "/problems/body-too-large"
    assert answer.pulled <= MAX_BODY_BYTES + CHUNK
