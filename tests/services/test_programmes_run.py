"""Programmes run by the embedded pipeline (on SQLite and PostgreSQL): buyers enter by a
trigger, walk the steps on a simulated clock, get each step's message once, and leave at
the goal; held-out buyers are counted and sent nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.console.api import programmes
from services.console.api.problems import CONSOLE_PROBLEM_KINDS
from services.http.problems import install_problem_handlers
from services.tools.embedded import Pipeline
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.positions import SqlPositions
from shared.adapters.store.reports import SqlCampaignResults, open_campaign_results
from shared.ports.store import Activation, MessageRecord
from shared.settings import Settings
from tests.e2e.stacks import purchase
from tests.support.campaign_pipeline import STORES, on_store, pipeline_with

ANNA = {"id": "shop-anna", "email": "anna@example.com"}
BORIS = {"id": "shop-boris", "email": "boris@example.com"}

CART = {
    "name": "Abandoned cart in two steps",
    "status": "active",
    "trigger": {"event": "track", "name": "cart_updated"},
    "goal": {"event": "purchase", "within": "3d"},
    "priority": 80,
    "steps": [
        {"id": "hour", "wait": {"for": "1h"}},
        {
            "id": "first",
            "send": {
                "channels": ["email"],
                "variants": [
                    {"name": "a", "share": 0.5, "templates": {"email": "abandoned-cart-email"}},
                    {"name": "b", "share": 0.5, "templates": {"email": "win-back-email"}},
                ],
            },
        },
        {"id": "day", "wait": {"for": "23h"}},
        {
            "id": "second",
            "send": {"channels": ["email"], "templates": {"email": "abandoned-cart-email"}},
        },
    ],
}


def _cart(event_id: str, at: datetime, customer: dict[str, str]) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "track",
        "occurred_at": at.isoformat(),
        "customer": customer,
        "data": {"name": "cart_updated", "properties": {"total": 1999}},
    }


async def _messages(pipeline: Pipeline) -> list[MessageRecord]:
    async with pipeline.runtime.store.unit_of_work() as uow:
        return await uow.messages.all()


async def _counts(pipeline: Pipeline, key: str) -> dict[str, int]:
    async with pipeline.runtime.store.unit_of_work() as uow:
        return await uow.positions.count(key)


async def _store_programme(pipeline: Pipeline, key: str, document: dict[str, Any]) -> None:
    await pipeline.runtime.definitions.programmes.put(
        key, definition=document, status=document["status"], expected_version=None
    )


@pytest.fixture(params=STORES)
def embedded_settings(request: pytest.FixtureRequest, embedded_settings: Settings) -> Settings:
    return on_store(request, embedded_settings)


async def test_each_step_sends_once_in_order_and_a_buyer_who_orders_leaves(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    async for pipeline in pipeline_with(embedded_settings, clock, tmp_path / "mail", []):
        await _store_programme(pipeline, "cart-steps", CART)
        await pipeline.post_events(
            [_cart("cart-a", clock.now(), ANNA), _cart("cart-b", clock.now(), BORIS)]
        )
        await pipeline.settle()
        assert await _messages(pipeline) == []
        assert await _counts(pipeline, "cart-steps") == {"hour": 2, "holdout": 0}

        clock.advance(timedelta(hours=1))
        await pipeline.settle()
        await pipeline.settle()  # woken again at the same moment: nothing more
        first = await _messages(pipeline)
        assert sorted(m.campaign.rsplit(".", 1)[0] for m in first) == ["cart-steps.first"] * 2
        assert {m.status for m in first} == {"sent"}

        clock.advance(timedelta(hours=2))
        await pipeline.post_events([purchase("boris-order", clock.now(), customer=BORIS)])
        await pipeline.settle()

        clock.advance(timedelta(hours=21))
        await pipeline.settle()
        await pipeline.settle()
        messages = await _messages(pipeline)
        counts = await _counts(pipeline, "cart-steps")

    by_buyer: dict[str, list[str]] = {}
    for m in sorted(messages, key=lambda m: m.created_at):
        by_buyer.setdefault(m.profile_id, []).append(m.campaign.split(".")[1])
    assert sorted(by_buyer.values()) == [["first"], ["first", "second"]]
    assert len({m.key for m in messages}) == len(messages) == 3
    assert counts == {"exited:end": 1, "exited:goal": 1, "holdout": 0}


async def test_held_out_buyers_are_counted_and_sent_nothing(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    buyers = [{"id": f"shop-{n}", "email": f"b{n}@example.com"} for n in range(40)]
    async for pipeline in pipeline_with(embedded_settings, clock, tmp_path / "mail", []):
        await _store_programme(pipeline, "cart-steps", {**CART, "holdout": 0.5})
        await pipeline.post_events(
            [_cart(f"cart-{n}", clock.now(), b) for n, b in enumerate(buyers)]
        )
        await pipeline.settle()
        for wait in (timedelta(hours=1), timedelta(hours=23)):
            clock.advance(wait)
            await pipeline.settle()
        messages = await _messages(pipeline)
        counts = await _counts(pipeline, "cart-steps")

    held = counts["holdout"]
    assert 8 <= held <= 32
    assert counts.get("exited:end", 0) == 40 - held
    assert len(messages) == 2 * (40 - held)
    assert len({m.profile_id for m in messages}) == 40 - held


async def test_a_draft_programme_sends_nothing(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    async for pipeline in pipeline_with(embedded_settings, clock, tmp_path / "mail", []):
        await _store_programme(pipeline, "cart-steps", {**CART, "status": "draft"})
        await pipeline.post_events([_cart("cart-a", clock.now(), ANNA)])
        await pipeline.settle()
        clock.advance(timedelta(days=2))
        await pipeline.settle()
        assert await _messages(pipeline) == []
        assert await _counts(pipeline, "cart-steps") == {"holdout": 0}


EVERYONE = {
    "name": "Everyone who is a lead now",
    "status": "active",
    "trigger": {"everyone_in": "lifecycle-lead"},
    "steps": [
        {"id": "hello", "send": {"channels": ["email"], "templates": {"email": "win-back-email"}}},
    ],
}


async def _leads(pipeline: Pipeline, clock: SimulatedClock, n: int) -> list[str]:
    buyers = [{"id": f"shop-{i}", "email": f"lead{i}@example.com"} for i in range(n)]
    await pipeline.post_events([_cart(f"cart-{i}", clock.now(), b) for i, b in enumerate(buyers)])
    await pipeline.settle()
    async with pipeline.runtime.store.unit_of_work() as uow:
        members = await uow.memberships.members(
            "lifecycle-lead", entered_by=clock.now(), after=None, limit=1000
        )
    assert len(members) == n
    return members


async def test_everyone_in_a_segment_enters_once_at_activation(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    async for pipeline in pipeline_with(embedded_settings, clock, tmp_path / "mail", []):
        members = await _leads(pipeline, clock, 5)
        await _store_programme(pipeline, "hello-leads", EVERYONE)
        await pipeline.settle()
        await pipeline.settle()
        first = await _messages(pipeline)

        # Paused and activated again (two new versions), and a new lead since: nobody more.
        programmes = pipeline.runtime.definitions.programmes
        for status, version in (("paused", 1), ("active", 2)):
            await programmes.put(
                "hello-leads",
                definition={**EVERYONE, "status": status},
                status=status,
                expected_version=version,
            )
            await pipeline.settle()
        clock.advance(timedelta(minutes=5))
        await pipeline.post_events(
            [_cart("cart-late", clock.now(), {"id": "shop-late", "email": "l@example.com"})]
        )
        await pipeline.settle()
        await pipeline.settle()
        messages = await _messages(pipeline)
        counts = await _counts(pipeline, "hello-leads")

    assert sorted(m.profile_id for m in first) == sorted(members)
    assert {m.status for m in first} == {"sent"}
    assert messages == first
    assert counts == {"exited:end": 5, "holdout": 0}


async def test_a_crash_mid_activation_enters_nobody_twice_and_skips_nobody(
    embedded_settings: Settings,
    clock: SimulatedClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async for pipeline in pipeline_with(embedded_settings, clock, tmp_path / "mail", []):
        members = await _leads(pipeline, clock, 7)
        await _store_programme(pipeline, "hello-leads", EVERYONE)
        steps = pipeline.dispatcher.programmes
        await steps.catalogue.refresh_programmes()
        assert await steps.activate(batch=3) == 3

        class Killed(Exception):
            pass

        advance = SqlPositions.advance

        async def killed(
            self: SqlPositions, activation: Activation, advance: Any = advance
        ) -> None:
            await advance(self, activation)
            raise Killed  # the batch's entries and cursor written, never committed

        monkeypatch.setattr(SqlPositions, "advance", killed)
        with pytest.raises(Killed):
            await steps.activate(batch=3)
        monkeypatch.setattr(SqlPositions, "advance", advance)

        assert await steps.activate(batch=3) == 3
        assert await steps.activate(batch=3) == 1
        assert await steps.activate(batch=3) == 0
        await pipeline.settle()
        await pipeline.settle()
        messages = await _messages(pipeline)
        async with pipeline.runtime.store.unit_of_work() as uow:
            activation = await uow.positions.activation("hello-leads", clock.now())

    assert sorted(m.profile_id for m in messages) == sorted(members)
    assert activation is not None
    assert activation.entered == 7
    assert activation.finished_at is not None


def _console(pipeline: Pipeline, results: SqlCampaignResults, clock: SimulatedClock) -> Any:
    app = FastAPI()
    install_problem_handlers(app, CONSOLE_PROBLEM_KINDS)
    app.include_router(
        programmes.router(
            pipeline.runtime.definitions,
            require=lambda _scope: lambda: None,
            results=results,
            clock=clock,
        )
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console")


async def test_the_report_counts_each_step_and_variant_and_the_holdout_and_a_dry_run_saves_nothing(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    buyers = [{"id": f"shop-{n}", "email": f"b{n}@example.com"} for n in range(40)]
    assert embedded_settings.database_url is not None
    results = open_campaign_results(embedded_settings.database_url)
    async for pipeline in pipeline_with(embedded_settings, clock, tmp_path / "mail", []):
        await _store_programme(pipeline, "cart-steps", {**CART, "holdout": 0.5})
        await pipeline.post_events(
            [_cart(f"cart-{n}", clock.now(), b) for n, b in enumerate(buyers)]
        )
        await pipeline.settle()
        clock.advance(timedelta(hours=1))
        await pipeline.settle()
        clock.advance(timedelta(hours=2))
        await pipeline.post_events(
            [purchase(f"order-{n}", clock.now(), customer=b) for n, b in enumerate(buyers[:10])]
        )
        await pipeline.settle()
        clock.advance(timedelta(hours=21))
        await pipeline.settle()
        counts = await _counts(pipeline, "cart-steps")
        messages = await _messages(pipeline)
        async with _console(pipeline, results, clock) as console:
            report = (await console.get("/v1/programmes/cart-steps/report")).json()
            missing = await console.get("/v1/programmes/nope/report")
            dry = await console.put("/v1/programmes/hello-leads?dry_run=true", json=EVERYONE)
            bad = await console.put(
                "/v1/programmes/hello-leads?dry_run=true", json={**EVERYONE, "steps": []}
            )
            unsaved = await console.get("/v1/programmes/hello-leads")
    await results.close()

    held, treated = counts["holdout"], 40 - counts["holdout"]
    by_profile = {m.profile_id for m in messages}
    assert report["entered"] == {"treatment": treated, "holdout": held}
    assert sum(report["exited"].values()) == treated
    assert report["at_step"] == {}
    first, second = report["steps"]
    assert [v["name"] for v in first["variants"]] == ["a", "b"]
    assert sum(v["buyers"] for v in first["variants"]) == treated
    assert sum(v["sent"] for v in first["variants"]) == treated == len(by_profile)
    assert sum(v["converted"] for v in first["variants"]) == report["treatment"]["converted"]
    assert second["variants"][0]["sent"] == treated - report["exited"].get("goal", 0)
    assert report["treatment"]["converted"] + report["holdout"]["converted"] == 10
    assert report["holdout"]["buyers"] == held
    assert report["uplift"]["absolute"] is not None
    assert missing.status_code == 404
    assert dry.status_code == 200, dry.text
    assert dry.json() == {
        "key": "hello-leads",
        "dry_run": True,
        "valid": True,
        "would_enter": 30,
        "treatment": 30,
        "holdout": 0,
        "segment": "lifecycle-lead",
    }
    assert bad.status_code == 422
    assert unsaved.status_code == 404


ADAPTIVE = {
    "name": "Cart, with a split that learns",
    "status": "active",
    "trigger": {"event": "track", "name": "cart_updated"},
    "goal": {"event": "purchase", "within": "3d"},
    "steps": [
        {
            "id": "first",
            "send": {
                "channels": ["email"],
                "split": "adaptive",
                "adaptive": {"min_share": 0.05, "win_at": 0.95, "min_buyers": 5},
                "variants": [
                    {"name": "a", "templates": {"email": "abandoned-cart-email"}},
                    {"name": "b", "templates": {"email": "win-back-email"}},
                ],
            },
        },
    ],
}


async def test_an_adaptive_split_sends_every_new_buyer_the_variant_that_won(
    embedded_settings: Settings, clock: SimulatedClock, tmp_path: Path
) -> None:
    first = [{"id": f"shop-{n}", "email": f"b{n}@example.com"} for n in range(30)]
    later = [{"id": f"shop-late-{n}", "email": f"l{n}@example.com"} for n in range(30)]
    async for pipeline in pipeline_with(embedded_settings, clock, tmp_path / "mail", []):
        await _store_programme(pipeline, "learning", ADAPTIVE)
        await pipeline.post_events(
            [_cart(f"cart-{n}", clock.now(), b) for n, b in enumerate(first)]
        )
        await pipeline.settle()
        wave = await _messages(pipeline)
        variant_of = {m.profile_id: m.campaign.rsplit(".", 1)[1] for m in wave}
        async with pipeline.runtime.store.unit_of_work() as uow:
            found = {b["id"]: await uow.profiles.find("id", b["id"]) for b in first}
        ids = {shop: p.id for shop, p in found.items() if p is not None}
        bought = [b for b in first if variant_of[ids[b["id"]]] == "b"]
        clock.advance(timedelta(hours=1))
        await pipeline.post_events(
            [purchase(f"order-{n}", clock.now(), customer=b) for n, b in enumerate(bought)]
        )
        await pipeline.settle()
        clock.advance(timedelta(minutes=10))  # past the learnt shares' lifetime
        await pipeline.post_events(
            [_cart(f"cart-late-{n}", clock.now(), b) for n, b in enumerate(later)]
        )
        await pipeline.settle()
        messages = await _messages(pipeline)

    first_variants = sorted(variant_of.values())
    assert 5 <= first_variants.count("a") <= 25  # an even split while nothing is known
    late = [m for m in messages if m.profile_id not in variant_of]
    assert len(late) == 30
    assert {m.campaign for m in late} == {"learning.first.b"}
