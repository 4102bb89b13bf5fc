"""A campaign that names an offer gives each message it sends exactly one promo code: taken
from the pool in the transaction that writes the message, or generated and signed; an
empty pool is a recorded outcome, and a message never sent gives its code back."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.bootstrap import offer_code_key
from services.console.api.campaigns import build_report
from services.tools.embedded import Pipeline
from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema as t
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.offers import SqlOffers
from shared.domain.campaigns import parse_campaign
from shared.domain.offers import parse_offer, verify_code
from shared.ports.offers import PoolCounts
from shared.settings import Settings
from tests.conftest import T0
from tests.e2e.stacks import identify, purchase
from tests.services.test_stored_campaigns import _DownRenderer
from tests.support.campaign_pipeline import STORES, on_store

THANKS = {
    "name": "Thanks for the first order, with a code",
    "trigger": {"segment": "lifecycle-new", "on": "entered"},
    "channels": ["email"],
    "templates": {"email": "first-order-code"},
    "holdout": 0,
    "priority": 50,
    "offer": "second-order-10",
}
TEMPLATE = {
    "subject": "Your code {{ offer.code }}",
    "html": "<p>{{ offer.value }} off with {{ offer.code }} until {{ offer.expires_at }}. "
    "<a href='{{ unsubscribe_url }}'>Unsubscribe</a></p>",
    "text": "{{ offer.value }} off with {{ offer.code }} until {{ offer.expires_at }}; "
    "you buy {{ offer.category }}. Unsubscribe: {{ unsubscribe_url }}",
}
POOL_OFFER: dict[str, Any] = {
    "name": "10% off the second order",
    "kind": "percent",
    "value": 10,
    "valid": {"days_after_send": 14},
    "codes": {"source": "pool", "low_at": 1},
}


@pytest.fixture(params=STORES)
def pipeline_settings(request: pytest.FixtureRequest, embedded_settings: Settings) -> Settings:
    return on_store(request, embedded_settings)


async def _set_up(pipeline: Pipeline, offer: dict[str, Any], codes: list[str]) -> SqlOffers:
    engine = pipeline.runtime.store.engine
    definitions = SqlDefinitions(engine)
    offers = SqlOffers(engine, validate=lambda k, d: parse_offer(d, key=k))
    await definitions.templates.put(
        "first-order-code", channel="email", content=TEMPLATE, expected_version=None
    )
    await definitions.campaigns.put(
        "first-order-code", definition=THANKS, status="active", expected_version=None
    )
    await offers.put("second-order-10", definition=offer, expected_version=None)
    if codes:
        await offers.add_codes("second-order-10", codes, T0)
    return offers


def _subjects(mail: Path) -> list[str]:
    found = []
    for eml in sorted(mail.glob("*.eml")) if mail.exists() else []:
        for line in eml.read_text().splitlines():
            if line.startswith("Subject: "):
                found.append(line.removeprefix("Subject: "))
    return found


async def _codes(pipeline: Pipeline) -> list[tuple[str, str, str | None]]:
    c = t.offer_codes
    async with pipeline.runtime.store.engine.connect() as conn:
        rows = await conn.execute(select(c.c.code, c.c.state, c.c.message_key).order_by(c.c.code))
        return [(r.code, r.state, r.message_key) for r in rows]


async def _messages(pipeline: Pipeline) -> dict[str, tuple[str, str]]:
    m = t.messages
    async with pipeline.runtime.store.engine.connect() as conn:
        rows = await conn.execute(select(m.c.key, m.c.profile_id, m.c.status))
        return {r.key: (r.profile_id, r.status) for r in rows}


async def test_each_message_carries_one_code_of_the_pool_and_an_empty_pool_is_an_outcome(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    offers = await _set_up(pipeline, POOL_OFFER, ["SECOND-A", "SECOND-B"])
    buyers = [{"id": f"buyer-{n}", "email": f"buyer{n}@shop.ru"} for n in range(3)]

    await pipeline.post_events(
        [
            purchase(f"p{n}", T0 - timedelta(hours=3 - n), customer=buyer)
            for n, buyer in enumerate(buyers)
        ]
    )
    await pipeline.settle()

    subjects = _subjects(tmp_path / "mail")
    assert sorted(subjects) == ["Your code SECOND-A", "Your code SECOND-B"]
    issued = await _codes(pipeline)
    messages = await _messages(pipeline)
    assert [state for _, state, _ in issued] == ["issued", "issued"]
    assert {messages[key][1] for _, _, key in issued if key} == {"sent"}
    assert len({key for _, _, key in issued}) == 2
    statuses = sorted(status for _, status in messages.values())
    assert statuses == ["no_code", "sent", "sent"]
    assert await offers.pool("second-order-10") == PoolCounts(free=0, issued=2)


async def test_the_template_sees_the_code_its_value_and_when_it_expires(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    await _set_up(pipeline, POOL_OFFER, ["SECOND-A"])

    await pipeline.post_events(
        [purchase("p1", T0 - timedelta(hours=1), customer={"id": "b1", "email": "b1@shop.ru"})]
    )
    await pipeline.settle()

    (eml,) = (tmp_path / "mail").glob("*.eml")
    text = eml.read_text()
    assert "10% off with SECOND-A until" in text
    assert "you buy pet-food" in text
    ((_, _, key),) = await _codes(pipeline)
    assert key is not None


async def test_a_generated_code_is_the_messages_own_and_the_checkout_verifies_it(
    pipeline: Pipeline, pipeline_settings: Settings, tmp_path: Path
) -> None:
    generated = {**POOL_OFFER, "codes": {"source": "generated", "prefix": "SO10"}}
    offers = await _set_up(pipeline, generated, [])

    await pipeline.post_events(
        [purchase("p1", T0 - timedelta(hours=1), customer={"id": "b1", "email": "b1@shop.ru"})]
    )
    await pipeline.settle()

    (subject,) = _subjects(tmp_path / "mail")
    code = subject.removeprefix("Your code ")
    assert re.fullmatch(r"SO10(-[0-9A-Z]{6}){4}", code)
    checked = verify_code(
        offer_code_key(pipeline_settings),
        code,
        offer="second-order-10",
        prefix="SO10",
        today=T0.date() + timedelta(days=13),
    )
    assert checked.last_valid_day >= T0.date() + timedelta(days=13)
    assert checked.last_valid_day <= date(2100, 1, 1)
    assert await offers.pool("second-order-10") == PoolCounts(free=0, issued=1)


async def test_a_message_whose_render_fails_gives_its_code_back(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    offers = await _set_up(pipeline, POOL_OFFER, ["SECOND-A"])
    definitions = SqlDefinitions(pipeline.runtime.store.engine)
    broken = {**TEMPLATE, "text": "{{ offer.code }} {{ customer.nothing.here }}"}
    current = await definitions.templates.get("first-order-code")
    assert current is not None
    await definitions.templates.put(
        "first-order-code", channel="email", content=broken, expected_version=current.version
    )

    await pipeline.post_events(
        [purchase("p1", T0 - timedelta(hours=1), customer={"id": "b1", "email": "b1@shop.ru"})]
    )
    await pipeline.settle()

    assert [status for _, status in (await _messages(pipeline)).values()] == ["render_failed"]
    assert await offers.pool("second-order-10") == PoolCounts(free=1, issued=0)


async def test_a_code_redeemed_by_a_buyer_merged_since_counts_on_the_campaign_report(
    pipeline: Pipeline, clock: SimulatedClock, tmp_path: Path
) -> None:
    offers = await _set_up(pipeline, POOL_OFFER, ["SECOND-A", "SECOND-B"])
    web = {"id": "web-olga", "email": "olga@shop.ru"}
    till = {"loyalty_card": "LC-0001", "email": "olga.work@shop.ru"}
    await pipeline.post_events(
        [
            purchase("p1", T0 - timedelta(hours=2), customer=web),
            purchase("p2", T0 - timedelta(hours=1), customer=till),
        ]
    )
    await pipeline.settle()
    sent = {
        eml.read_text().split("To: ")[1].split()[0]: re.search(
            r"^Subject: Your code (\S+)$", eml.read_text(), re.MULTILINE
        )
        for eml in (tmp_path / "mail").glob("*.eml")
    }
    web_match = sent["olga@shop.ru"]
    assert web_match is not None
    web_code = web_match.group(1)

    # the two profiles are one buyer; she shops at the till with the code the web one got
    await pipeline.post_events(
        [identify("link", T0, customer={"email": "olga@shop.ru", "loyalty_card": "LC-0001"})]
    )
    at_till = purchase("p3", T0 + timedelta(days=2), customer={"loyalty_card": "LC-0001"})
    at_till["data"]["promo_codes"] = [web_code, "NOT-OURS"]
    again = purchase("p4", T0 + timedelta(days=3), customer={"loyalty_card": "LC-0001"})
    again["data"]["promo_codes"] = [web_code]  # single use: the first purchase counts
    clock.advance(timedelta(days=3))
    await pipeline.post_events([at_till, again])
    await pipeline.settle()

    campaign = parse_campaign({**THANKS, "key": "first-order-code"})
    report = await build_report(campaign, pipeline.runtime.results, T0, offers)

    assert report["offer"] == {
        "offer": "second-order-10",
        "offers": ["second-order-10"],
        "issued": 2,
        "redeemed": 1,
        "redemption_rate": 0.5,
        "discount": "250.00",
    }


async def test_a_message_that_waits_for_a_render_worker_keeps_its_code_and_sends_it(
    pipeline: Pipeline, clock: SimulatedClock, tmp_path: Path
) -> None:
    offers = await _set_up(pipeline, POOL_OFFER, ["SECOND-A", "SECOND-B"])
    composer = pipeline.dispatcher.composer
    down = _DownRenderer(composer.renderer)
    composer.renderer = down
    await pipeline.post_events(
        [purchase("p1", T0 - timedelta(hours=1), customer={"id": "b1", "email": "b1@shop.ru"})]
    )
    await pipeline.settle()
    assert [status for _, status in (await _messages(pipeline)).values()] == ["scheduled"]
    assert await offers.pool("second-order-10") == PoolCounts(free=1, issued=1)

    down.down = False
    clock.advance(pipeline.dispatcher.timing.retry_after)
    await pipeline.settle()

    assert _subjects(tmp_path / "mail") == ["Your code SECOND-A"]  # the code it had
    assert await offers.pool("second-order-10") == PoolCounts(free=1, issued=1)


async def test_a_waiting_message_dropped_once_its_campaign_is_paused_gives_its_code_back(
    pipeline: Pipeline, clock: SimulatedClock, tmp_path: Path
) -> None:
    offers = await _set_up(pipeline, POOL_OFFER, ["SECOND-A"])
    composer = pipeline.dispatcher.composer
    composer.renderer = _DownRenderer(composer.renderer)
    await pipeline.post_events(
        [purchase("p1", T0 - timedelta(hours=1), customer={"id": "b1", "email": "b1@shop.ru"})]
    )
    await pipeline.settle()
    assert await offers.pool("second-order-10") == PoolCounts(free=0, issued=1)
    definitions = SqlDefinitions(pipeline.runtime.store.engine)
    stored = await definitions.campaigns.get("first-order-code")
    assert stored is not None
    await definitions.campaigns.put(
        "first-order-code", definition=THANKS, status="paused", expected_version=stored.version
    )

    clock.advance(pipeline.dispatcher.timing.retry_after)
    await pipeline.settle()

    assert [status for _, status in (await _messages(pipeline)).values()] == ["campaign_not_live"]
    assert not _subjects(tmp_path / "mail")
    assert await offers.pool("second-order-10") == PoolCounts(free=1, issued=0)
