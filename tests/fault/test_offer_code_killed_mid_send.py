"""Promo codes through the dispatcher's crashes and replicas, as production runs it
(``nudge dispatcher`` processes on Kafka and PostgreSQL): killed (SIGKILL) while a provider
holds a message with a code, the resend carries the same code and the pool counts it once;
two processes sharing the partitions never send one code twice."""

from __future__ import annotations

import re

import pytest

from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.offers import SqlOffers
from shared.domain.campaigns import BUILTIN_CAMPAIGNS
from shared.domain.offers import parse_offer
from shared.ports.offers import PoolCounts
from tests.e2e.stacks import RunningStack
from tests.fault.test_dispatcher_killed_mid_send import (  # the fixtures and the steps
    BUYERS,
    Dispatchers,
    dispatchers,
    environment,
    kill,
    mailbox,
    rows_become,
    shop,
    sign_up,
    the_in_flight_timeout_passes,
    twilio,
    welcome_messages,
)
from tests.support.providers import FakeProvider
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.fault]

__all__ = ["dispatchers", "environment", "mailbox", "shop", "twilio"]  # fixtures in use

POOL = [f"WELCOME-{n}" for n in range(5)]
_CODE = re.compile(r"code (WELCOME-\d)")


async def welcome_with_a_code(shop: RunningStack) -> SqlOffers:
    """The ready-made welcome campaign, active with no holdout, on SMS, carrying a code of
    a pool of five."""
    (welcome,) = [c for c in BUILTIN_CAMPAIGNS if c.key == "welcome-lead"]
    engine = shop.runtime.store.engine
    definitions = SqlDefinitions(engine)
    offers = SqlOffers(engine, validate=lambda k, d: parse_offer(d, key=k))
    await offers.put(
        "welcome-5",
        definition={
            "name": "5% off the first order",
            "kind": "percent",
            "value": 5,
            "valid": {"days_after_send": 30},
        },
        expected_version=None,
    )
    await offers.add_codes("welcome-5", POOL, shop.runtime.clock.now())
    await definitions.templates.put(
        "welcome-sms",
        channel="sms",
        content={"text": "Welcome! {{ offer.value }} off your first order: code {{ offer.code }}"},
        expected_version=None,
    )
    definition = {
        **welcome.to_dict(),
        "holdout": 0,
        "channels": ["sms"],
        "templates": {"sms": "welcome-sms"},
        "offer": "welcome-5",
    }
    await definitions.campaigns.put(
        "welcome-lead", definition=definition, status="active", expected_version=None
    )
    return offers


async def test_a_code_in_flight_when_the_dispatcher_is_killed_is_issued_once(
    shop: RunningStack, dispatchers: Dispatchers, twilio: FakeProvider
) -> None:
    first_buyer, *others = BUYERS
    offers = await welcome_with_a_code(shop)
    twilio.hang()
    first = await dispatchers.start()
    await sign_up(shop, [first_buyer])

    async def provider_has_it() -> bool:
        return len(twilio.requests) == 1

    await eventually(provider_has_it, timeout=60, what="the provider to receive the SMS")
    await kill(first)
    (in_flight,) = await welcome_messages(shop)
    assert in_flight.status == "sending"

    twilio.release()
    await dispatchers.start()
    await sign_up(shop, others)
    await rows_become(shop, len(others), status="sent")
    await the_in_flight_timeout_passes(shop, in_flight.key)
    await rows_become(shop, len(BUYERS), status="sent")

    codes: dict[str | None, set[str]] = {}
    for seen in twilio.requests:
        found = _CODE.search(seen.payload["Body"])
        assert found is not None, seen.payload["Body"]
        codes.setdefault(seen.key, set()).add(found.group(1))
    assert len(codes[in_flight.key]) == 1, "the resend carries the code the first try had"
    assert len([r for r in twilio.requests if r.key == in_flight.key]) == 2
    each = [next(iter(c)) for c in codes.values()]
    assert len(each) == len(set(each)) == len(BUYERS), "a code of their own for each buyer"
    assert await offers.pool("welcome-5") == PoolCounts(
        free=len(POOL) - len(BUYERS), issued=len(BUYERS)
    )


async def test_two_dispatcher_processes_on_kafka_never_give_one_code_twice(
    shop: RunningStack, dispatchers: Dispatchers, twilio: FakeProvider
) -> None:
    """Two ``nudge dispatcher`` replicas in one consumer group share the partitions; more
    buyers sign up than the pool has codes."""
    offers = await welcome_with_a_code(shop)
    await dispatchers.start()
    await dispatchers.start()
    buyers = [
        {"id": f"shop-{n}", "email": f"buyer{n}@example.com", "phone": f"+791612345{n:02}"}
        for n in range(8)
    ]
    await sign_up(shop, buyers)

    await rows_become(shop, len(POOL), status="sent")
    await rows_become(shop, len(buyers) - len(POOL), status="no_code")

    codes = []
    for seen in twilio.requests:
        found = _CODE.search(seen.payload["Body"])
        assert found is not None, seen.payload["Body"]
        codes.append(found.group(1))
    assert sorted(codes) == sorted(POOL), "each code of the pool sent once"
    assert await offers.pool("welcome-5") == PoolCounts(free=0, issued=len(POOL))
