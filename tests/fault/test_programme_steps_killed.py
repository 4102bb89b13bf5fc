"""A programme's steps through the dispatcher's crashes, as production runs it (``nudge
dispatcher`` processes on Kafka and PostgreSQL, real SMTP and SMS servers on 127.0.0.1):
killed (SIGKILL) while it walks the first step of many buyers, and again while it walks
the second, no buyer's step is walked twice or skipped: each has one message per step,
the SMS step is delivered exactly once per buyer, and the email step at most once (SMTP has
no idempotency key: an email committed ``sending`` when the process died is marked
``outcome_unknown`` and not sent again, docs/dispatcher.md; the test counts those).

The kills land on a condition, never a guessed time: the providers hold their answers,
and the test kills once a provider holds a message of the step. The dispatcher runs on the
real clock, so the week's wait and the in-flight guards (ten minutes) pass by moving their
``due_at`` to now, as ``test_dispatcher_killed_mid_send`` does for a guard.
"""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select, update

from shared.adapters.store import schema
from shared.domain.programmes import split_step_campaign_key
from shared.ports.store import MessageRecord
from tests.e2e.stacks import RunningStack
from tests.fault.test_dispatcher_killed_mid_send import (  # the fixtures and the steps
    Dispatchers,
    HeldReplies,
    dispatchers,
    environment,
    kill,
    mailbox,
    shop,
    sign_up,
    twilio,
)
from tests.support.providers import FakeProvider
from tests.support.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.fault]

__all__ = ["dispatchers", "environment", "mailbox", "shop", "twilio"]  # fixtures in use

KEY = "two-steps"
BUYERS = [
    {"id": f"shop-{n:02}", "email": f"buyer{n:02}@example.com", "phone": f"+7916123{n:04}"}
    for n in range(40)
]
TWO_STEPS = {
    "name": "Welcome, then an SMS a week later",
    "status": "active",
    "trigger": {"segment": "lifecycle-lead", "on": "entered"},
    "holdout": 0,
    "steps": [
        {"id": "email", "send": {"channels": ["email"], "templates": {"email": "welcome-email"}}},
        {"id": "week", "wait": {"for": "7d"}},
        {"id": "sms", "send": {"channels": ["sms"], "templates": {"sms": "welcome-sms"}}},
    ],
}


async def step_messages(shop: RunningStack, step: str) -> list[MessageRecord]:
    async with shop.runtime.store.unit_of_work() as uow:
        found = []
        for m in await uow.messages.all():
            parts = split_step_campaign_key(m.campaign)
            if parts is not None and parts[0] == KEY and parts[1] == step:
                found.append(m)
        return found


async def guards_pass(shop: RunningStack, step: str) -> None:
    """The in-flight guards of the step's messages still ``sending`` are due now, as ten
    real minutes would make them."""
    keys = [m.key for m in await step_messages(shop, step) if m.status == "sending"]
    async with shop.runtime.store.engine.begin() as conn:
        await conn.execute(
            update(schema.scheduled_sends)
            .where(schema.scheduled_sends.c.key.in_(keys))
            .values(due_at=shop.runtime.clock.now())
        )


async def the_week_passes(shop: RunningStack) -> int:
    """Every position waiting in the programme is due now; return how many."""
    async with shop.runtime.store.engine.begin() as conn:
        moved = await conn.execute(
            update(schema.programme_positions)
            .where(
                schema.programme_positions.c.programme == KEY,
                schema.programme_positions.c.due_at.is_not(None),
            )
            .values(due_at=shop.runtime.clock.now())
        )
    return int(moved.rowcount)


async def settled(shop: RunningStack, step: str, *, finished: set[str]) -> None:
    """Wait until every buyer has the step's message in one of ``finished``, making the
    guards of those still in flight due each time round."""

    async def there() -> bool:
        rows = await step_messages(shop, step)
        if len(rows) == len(BUYERS) and all(
            m.status in finished or m.reason == "outcome_unknown" for m in rows
        ):
            return True
        await guards_pass(shop, step)
        return False

    await eventually(there, timeout=60, what=f"every buyer's {step} message to settle")


async def test_a_dispatcher_killed_in_each_step_sends_each_step_once_and_skips_none(
    shop: RunningStack,
    dispatchers: Dispatchers,
    twilio: FakeProvider,
    mailbox: tuple[HeldReplies, int],
) -> None:
    held, _port = mailbox
    await shop.runtime.definitions.programmes.put(
        KEY, definition=TWO_STEPS, status="active", expected_version=None
    )

    # Step one: killed while the SMTP server holds a welcome email.
    first = await dispatchers.start()
    await sign_up(shop, BUYERS)

    async def server_has_one() -> bool:
        return held.count() >= 1

    await eventually(server_has_one, timeout=60, what="the SMTP server to take an email")
    await kill(first)
    held.released.set()
    twilio.hang()
    await dispatchers.start()
    await settled(shop, "email", finished={"sent"})

    # Step two: the week passes; killed while the SMS provider holds a message.
    assert await the_week_passes(shop) == len(BUYERS), "every buyer waits, none skipped on"

    async def provider_has_one() -> bool:
        return len(twilio.requests) >= 1

    await eventually(provider_has_one, timeout=60, what="the SMS provider to receive one")
    await kill(dispatchers.processes[-1])
    twilio.release()
    await dispatchers.start()
    await settled(shop, "sms", finished={"sent"})

    email_rows = await step_messages(shop, "email")
    sent = [m for m in email_rows if m.status == "sent"]
    unknown = [m for m in email_rows if m.reason == "outcome_unknown"]
    assert len(sent) + len(unknown) == len(BUYERS), "no email step skipped"
    emails = Counter(str(m["To"]) for m in held.messages)
    assert set(emails) <= {b["email"] for b in BUYERS}
    assert max(emails.values()) == 1, "no buyer's email twice"
    assert len(sent) <= len(emails) <= len(BUYERS)
    texts = Counter(str(p["To"]) for p in twilio.delivered.values())
    assert texts == Counter(b["phone"] for b in BUYERS), "each buyer's SMS delivered once"
    for step in ("email", "sms"):
        rows = await step_messages(shop, step)
        assert len({m.profile_id for m in rows}) == len(rows) == len(BUYERS), step
    async with shop.runtime.store.unit_of_work() as uow:
        counts = await uow.positions.count(KEY)
    assert counts.get("exited:end") == len(BUYERS), counts


LEADS = [{"id": f"lead-{n:04}", "email": f"lead{n:04}@example.com"} for n in range(1100)]
EVERYONE = {
    "name": "Every lead now, then a week",
    "status": "active",
    "trigger": {"everyone_in": "lifecycle-lead"},
    "holdout": 0,
    "steps": [{"id": "week", "wait": {"for": "7d"}}],
}


async def leads(shop: RunningStack) -> list[str]:
    """The members of lifecycle-lead now, in id order."""
    async with shop.runtime.store.unit_of_work() as uow:
        return await uow.memberships.members(
            "lifecycle-lead", entered_by=shop.runtime.clock.now(), after=None, limit=5000
        )


async def test_a_dispatcher_killed_between_activation_batches_enters_every_member_once(
    shop: RunningStack, dispatchers: Dispatchers
) -> None:
    """More members than a batch (1000): the kill lands while the second batch waits on
    an entry the test holds uncommitted (a row lock), after the first batch committed."""
    for start in range(0, len(LEADS), 100):
        await sign_up(shop, LEADS[start : start + 100])

    async def all_in() -> bool:
        return len(await leads(shop)) == len(LEADS)

    await eventually(all_in, timeout=60, what="every lead in lifecycle-lead")
    members = await leads(shop)
    now = shop.runtime.clock.now()
    P, A = schema.programme_positions, schema.programme_activations
    async with shop.runtime.store.engine.connect() as holding:
        blocker = await holding.begin()
        await holding.execute(
            P.insert().values(
                programme=KEY,
                profile_id=members[1000],
                entry="activation",
                version=1,
                step="week",
                entered_at=now,
                arrived_at=now,
                due_at=None,
                holdout=False,
                updated_at=now,
            )
        )
        await shop.runtime.definitions.programmes.put(
            KEY, definition=EVERYONE, status="active", expected_version=None
        )
        first = await dispatchers.start()

        async def first_batch_in() -> bool:
            async with shop.runtime.store.engine.connect() as conn:
                entered = await conn.scalar(select(A.c.entered).where(A.c.programme == KEY))
            return entered == 1000

        await eventually(first_batch_in, timeout=60, what="the first batch of 1000 entered")
        await kill(first)
        await blocker.rollback()

    await dispatchers.start()

    async def every_member_waits() -> bool:
        async with shop.runtime.store.unit_of_work() as uow:
            counts = await uow.positions.count(KEY)
        return counts == {"week": len(LEADS), "holdout": 0}

    await eventually(every_member_waits, timeout=60, what="every member at the week's wait")
    async with shop.runtime.store.engine.connect() as conn:
        entered = [
            row.profile_id
            for row in await conn.execute(select(P.c.profile_id).where(P.c.programme == KEY))
        ]
        activation = (await conn.execute(select(A).where(A.c.programme == KEY))).one()
    assert sorted(entered) == sorted(members), "every member entered once, none skipped"
    assert activation.entered == len(LEADS)
    assert activation.finished_at is not None
