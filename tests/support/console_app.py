"""The whole marketer's console on a real SQLite database, and a small base to show in it.

Used by the API tests of the pages and the customers API, and by the browser tests:
:func:`seed_base` writes the buyers through the store (identifiers, facts, segments)
and their messages; :func:`marketer_console` is the console app with every page and
JSON router, as ``nudge serve`` would mount it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import insert

from services.console.api import customers, kpis, segments, templates
from services.console.app import create_console_app
from services.console.pages import page_routers
from services.console.security import require_scope
from shared.adapters.clock import SimulatedClock
from shared.adapters.rendering import ProcessRenderer
from shared.adapters.store import schema
from shared.adapters.store.api_keys import SqlApiKeys
from shared.adapters.store.console_queries import SqlConsoleQueries, open_console_queries
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.engine import create_engine, open_store
from shared.adapters.store.orders import SqlOrderHistory
from shared.adapters.store.scoring import SqlScoringBase
from shared.adapters.store.sessions import SqlSessions
from shared.adapters.store.users import SqlUsers, open_users
from shared.domain.profile import Basket, Purchases
from shared.domain.segments import MembershipChange
from shared.settings import Settings

__all__ = [
    "ANNA",
    "PASSWORD",
    "Base",
    "console_users",
    "marketer_console",
    "seed_base",
    "seed_messages",
    "served_console",
    "session_client",
]

PASSWORD = "a long enough password"
ANNA = {
    "phone": "+79161234567",
    "email": "anna@shop.ru",
    "loyalty_card": "LC-1001",
    "id": "shop-1",
    "app_install_id": "app-1",
}
"""Every identifier of the buyer the tests look up, as ingest stores them."""


@dataclass(frozen=True)
class Base:
    anna: str
    """Anna's profile id."""
    others: tuple[str, ...]


def _at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 10, 0, tzinfo=UTC)


async def seed_base(url: str, now: datetime) -> Base:
    """Anna, a regular of store ``st-1`` in the north with a standard basket, a CLV, RFM
    scores and two messages (one held out); and 12 other buyers over three cohorts."""
    store = open_store(url)
    try:
        async with store.unit_of_work() as uow:
            others = [{"id": f"shop-{n}", "email": f"buyer{n}@shop.ru"} for n in range(2, 14)]
            resolution = await uow.profiles.resolve([ANNA, *others], now)
            anna, *rest = resolution.profiles
            anna.email, anna.phone = ANNA["email"], ANNA["phone"]
            moments = [_at(2025, 12, 5), _at(2025, 12, 20), _at(2026, 1, 18), _at(2026, 2, 20)]
            anna.order_moments = moments
            anna.orders_count, anna.revenue_total = 4, Decimal("12400.00")
            anna.first_order_at, anna.last_order_at = moments[0], moments[-1]
            anna.baskets = [Basket(m, {"milk-1l": 2, "bread": 1}) for m in moments]
            anna.stores = {"st-1": Purchases(orders=4, last_at=moments[-1])}
            anna.traits = {"region": "north", "note": "call +79161234567 after 18:00"}
            anna.rfm_r, anna.rfm_f, anna.rfm_m, anna.rfm_segment = 5, 4, 5, "champions"
            anna.p_alive, anna.clv = 0.93, Decimal("25000.00")
            anna.clv_low, anna.clv_high = Decimal("21000.00"), Decimal("29500.00")
            for n, profile in enumerate(rest):
                month = (_at(2025, 12, 3), _at(2026, 1, 5), _at(2026, 2, 2))[n // 4]
                first = month + timedelta(days=n % 4)
                again = first + timedelta(days=25 if n < 8 else 10)
                profile.order_moments = [first, again] if n % 2 == 0 else [first]
                profile.orders_count = len(profile.order_moments)
                profile.first_order_at = profile.order_moments[0]
                profile.last_order_at = profile.order_moments[-1]
                profile.revenue_total = Decimal(1500 * profile.orders_count)
                store_id = "st-1" if n % 3 == 0 else "st-2"
                profile.stores = {store_id: Purchases(orders=profile.orders_count)}
                profile.traits = {"region": "north" if n % 2 else "south"}
                profile.rfm_r, profile.rfm_f, profile.rfm_m = 1 + n % 5, 1 + n % 3, 2
                profile.clv = Decimal(1000 + 100 * n)
            await uow.profiles.save(resolution.profiles, now)
            await uow.memberships.apply(
                [
                    MembershipChange("entered", "lifecycle-loyal", anna.id, now, "seed"),
                    MembershipChange("entered", "repeat-buyers", anna.id, now, "seed"),
                ]
            )
            await uow.commit()
            anna_id, other_ids = anna.id, tuple(p.id for p in rest)
    finally:
        await store.close()
    return Base(anna_id, other_ids)


async def seed_messages(queries: SqlConsoleQueries, anna: str, now: datetime) -> None:
    """Two of Anna's messages: a welcome email sent, a win-back SMS held out."""
    held_out = [
        {"step": "audience", "code": "in_audience", "detail": "lifecycle-loyal"},
        {"step": "holdout", "code": "holdout", "detail": "in the 10% control group"},
    ]
    async with queries.engine.begin() as conn:
        await conn.execute(
            insert(schema.messages),
            [
                {
                    "key": "welcome:anna",
                    "campaign": "welcome",
                    "profile_id": anna,
                    "channel": "email",
                    "occurrence_id": "o-1",
                    "status": "delivered",
                    "reason": "sent",
                    "holdout": False,
                    "decision": None,
                    "created_at": now - timedelta(days=2),
                    "sent_at": now - timedelta(days=2),
                },
                {
                    "key": "win-back:anna",
                    "campaign": "win-back",
                    "profile_id": anna,
                    "channel": "sms",
                    "occurrence_id": "o-2",
                    "status": "skipped",
                    "reason": "holdout",
                    "holdout": True,
                    "decision": held_out,
                    "created_at": now - timedelta(days=1),
                    "sent_at": None,
                },
            ],
        )


async def console_users(url: str) -> SqlUsers:
    """olga (marketer), ivan (analyst) and root (admin), with :data:`PASSWORD`."""
    users = open_users(url, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    await users.create("olga", PASSWORD, "marketer")
    await users.create("ivan", PASSWORD, "analyst")
    await users.create("root", PASSWORD, "admin")
    return users


def marketer_console(
    data_dir: Path,
    users: SqlUsers,
    queries: SqlConsoleQueries,
    definitions: SqlDefinitions,
    clock: SimulatedClock,
    api_keys: SqlApiKeys | None = None,
) -> FastAPI:
    """The console with every page and JSON router, sessions and (with ``api_keys``) keys;
    templates render in worker processes with the default limits, as in a deployment."""
    renderer = ProcessRenderer()
    return create_console_app(
        Settings(data_dir=data_dir),
        users,
        queries,
        sessions=SqlSessions(users.engine),
        api_keys=api_keys,
        routers=[
            *page_routers(
                definitions,
                queries,
                queries,
                clock=clock,
                renderer=renderer,
                default_region="RU",
                orders=SqlOrderHistory(users.engine),
                scoring=SqlScoringBase(users.engine),
            ),
            segments.router(definitions, clock=clock, require=require_scope),
            templates.router(definitions, renderer=renderer, require=require_scope),
            customers.router(queries, clock=clock, default_region="RU", require=require_scope),
            kpis.router(queries, clock=clock, require=require_scope),
        ],
    )


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the page carries a CSRF token"
    return found.group(1)


@asynccontextmanager
async def session_client(app: FastAPI, username: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client logged in as ``username``, sending the session's CSRF token
    (``X-CSRF-Token``) with every request, as the console's htmx does."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console"
    ) as client:
        answer = await client.post(
            "/login",
            data={
                "username": username,
                "password": PASSWORD,
                "csrf_token": _csrf(await client.get("/login")),
            },
        )
        assert answer.status_code == 303, answer.text
        client.headers["X-CSRF-Token"] = _csrf(await client.get("/login"))
        yield client


@asynccontextmanager
async def served_console(url: str, data_dir: Path, clock: SimulatedClock) -> AsyncIterator[str]:
    """The whole console on the database at ``url`` with the seeded base, served over
    HTTP for a real browser; yields its base URL."""
    from tests.support.http import serving  # noqa: PLC0415 - uvicorn only where served

    base = await seed_base(url, clock.now())
    users = await console_users(url)
    queries = open_console_queries(url)
    definitions = SqlDefinitions(create_engine(url), clock=clock)
    try:
        await seed_messages(queries, base.anna, clock.now())
        app = marketer_console(data_dir, users, queries, definitions, clock)
        async with serving(app) as served:
            yield served
    finally:
        await users.close()
        await queries.close()
        await definitions.close()
