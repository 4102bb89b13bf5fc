"""An event id reused by another buyer, on both stacks, through real HTTP: refused with 409,
and what the segmenter applied is the first buyer's event and nothing of the refused
request; the same event sent again is applied once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from shared.adapters.clock import SimulatedClock
from shared.adapters.providers.email import EmlFolderProvider
from shared.adapters.store import schema
from shared.settings import Settings
from tests.conftest import T0
from tests.e2e.stacks import RunningStack, purchase, running_stack


@pytest.fixture(
    params=["embedded", pytest.param("production", marks=[pytest.mark.kafka, pytest.mark.postgres])]
)
def settings(request: pytest.FixtureRequest) -> Settings:
    name = "embedded_settings" if request.param == "embedded" else "kafka_settings"
    settings: Settings = request.getfixturevalue(name)
    return settings


@pytest.fixture
async def stack(settings: Settings, clock: SimulatedClock) -> AsyncIterator[RunningStack]:
    email = EmlFolderProvider(settings.data_dir / "mail", settings.smtp_sender)
    async with running_stack(settings, clock, email) as stack:
        yield stack


async def applied_event_ids(stack: RunningStack) -> set[str]:
    async with stack.runtime.store.engine.connect() as conn:
        return set((await conn.scalars(select(schema.processed_events.c.event_id))).all())


async def test_an_event_id_reused_by_another_buyer_is_refused_and_nothing_of_it_applied(
    stack: RunningStack,
) -> None:
    anna = purchase("e-0001", T0, customer={"id": "anna"})
    assert (await stack.post(anna)).status_code == 202
    await stack.wait_for_profile("id", "anna", orders_count=1)

    response = await stack.post(
        purchase("e-0002", T0, customer={"id": "bob"}),
        purchase("e-0001", T0, customer={"id": "zed"}),
    )

    assert response.status_code == 409, response.text
    assert response.json()["type"] == "/problems/event-id-conflict"
    assert [e["index"] for e in response.json()["errors"]] == [1]
    # bob's next event is applied after anything of bob's the refused request published
    assert (await stack.post(purchase("e-0003", T0, customer={"id": "bob"}))).status_code == 202
    await stack.wait_for_profile("id", "bob", orders_count=1)
    assert await applied_event_ids(stack) == {"e-0001", "e-0003"}
    assert await stack.profile("id", "zed") is None


async def test_the_same_event_sent_again_is_applied_once(stack: RunningStack) -> None:
    anna = purchase("e-0001", T0, customer={"id": "anna"})
    for _ in range(2):
        response = await stack.post(anna)
        assert response.json() == {"accepted": 1, "duplicates": 0}
    # anna's next event is applied after both copies of the first
    assert (await stack.post(purchase("e-0002", T0, customer={"id": "anna"}))).status_code == 202

    await stack.wait_for_profile("id", "anna", orders_count=2)
    assert await applied_event_ids(stack) == {"e-0001", "e-0002"}


async def test_two_stores_may_use_one_event_id_for_two_events_and_both_are_applied(
    stack: RunningStack,
) -> None:
    keys = {}
    for store in ("A", "B"):
        _, keys[store] = await stack.runtime.api_keys.create(
            f"till {store}", ["events:write"], ["A"] if store == "A" else ["B"]
        )
    for store, buyer in (("A", "anna"), ("B", "zed")):
        order = {**purchase("order-1001", T0, customer={"id": buyer}), "store_id": store}
        response = await stack.http.post(
            "/v1/events", json=order, headers={"Authorization": f"Bearer {keys[store]}"}
        )
        assert response.status_code == 202, response.text

    await stack.wait_for_profile("id", "anna", orders_count=1)
    await stack.wait_for_profile("id", "zed", orders_count=1)
