"""A campaign's report from a fixed table of message rows and conversions: the figures the
test works out independently (scipy's Wilson interval, Newcombe by hand, scipy's Welch test)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from scipy import stats  # type: ignore[import-untyped]
from sqlalchemy import insert

from services.console.api import campaigns
from services.console.api.problems import CONSOLE_PROBLEM_KINDS
from services.http.auth import Guard
from services.http.problems import install_problem_handlers
from services.http.rate_limit import RateLimiter
from shared.adapters.clock import SimulatedClock
from shared.adapters.store import schema
from shared.adapters.store.api_keys import SqlApiKeys
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.reports import SqlCampaignResults, open_campaign_results
from shared.domain.campaigns import BUILTIN_CAMPAIGNS
from tests.api.definitions_app import definitions  # noqa: F401 - the fixture
from tests.conftest import T0

BUILTIN = {c.key: c for c in BUILTIN_CAMPAIGNS}

TREATED, SENT, HELD = 200, 180, 100
"""Win-back: 200 treated buyers (180 sent, 20 capped), 100 held out."""
RESPONSES = (
    [(f"t{i}", "delivered") for i in range(170)]
    + [(f"t{i}", "opened") for i in range(90)]
    + [(f"t{i}", "clicked") for i in range(90, 120)]
    + [("t0-again", "clicked"), ("h0", "opened"), ("t190", "delivered")]
)
"""170 delivered, 90 opened; 30 more clicked without an open reported (a click is an open):
120 opened, 31 clicked (t0's second message). A held-out or capped message has no say."""
TREATED_ORDERS = [Decimal(1000 + 10 * i) for i in range(40)]
"""The first 40 treated buyers each bought once in the window."""
HELD_ORDERS = [Decimal(900)] * 10
"""The first 10 held-out buyers each bought once."""


def _message(key: str, buyer: str, **fields: Any) -> dict[str, Any]:
    return {
        "key": key,
        "campaign": "win-back-30d",
        "profile_id": buyer,
        "channel": "email",
        "occurrence_id": "stay",
        "created_at": T0,
        "sent_at": None,
        "holdout": False,
        **fields,
    }


def _conversion(
    key: str, buyer: str, order: str, amount: Decimal, *, holdout: bool
) -> dict[str, Any]:
    return {
        "message_key": key,
        "order_id": order,
        "campaign": "win-back-30d",
        "profile_id": buyer,
        "holdout": holdout,
        "amount": amount,
        "converted_at": T0 + timedelta(days=2),
    }


@pytest.fixture
async def results(sqlite_url: str) -> AsyncIterator[SqlCampaignResults]:
    found = open_campaign_results(sqlite_url)
    messages = [
        _message(f"t{i}", f"t{i}", status="sent", reason="send_now", sent_at=T0)
        for i in range(SENT)
    ]
    messages += [
        _message(f"t{i}", f"t{i}", status="capped", reason="capped") for i in range(SENT, TREATED)
    ]
    messages += [
        _message(f"h{i}", f"h{i}", status="holdout", reason="holdout", holdout=True)
        for i in range(HELD)
    ]
    # Neither arm: dropped before the holdout draw, or still waiting for the delay.
    messages += [
        _message(f"x{i}", f"x{i}", status="no_address", reason="no_address") for i in range(7)
    ]
    messages.append(_message("w0", "w0", status="scheduled", reason="delay"))
    # Buyer t0 had a second message of the campaign (a later stay): one buyer still.
    messages.append(_message("t0-again", "t0", status="sent", reason="send_now", sent_at=T0))
    conversions = [
        _conversion(f"t{i}", f"t{i}", f"o-t{i}", amount, holdout=False)
        for i, amount in enumerate(TREATED_ORDERS)
    ]
    # The same order converts both of t0's messages: counted once.
    conversions.append(_conversion("t0-again", "t0", "o-t0", TREATED_ORDERS[0], holdout=False))
    conversions += [
        _conversion(f"h{i}", f"h{i}", f"o-h{i}", amount, holdout=True)
        for i, amount in enumerate(HELD_ORDERS)
    ]
    async with found.engine.begin() as conn:
        await conn.execute(insert(schema.messages), messages)
        await conn.execute(insert(schema.conversions), conversions)
        await conn.execute(
            insert(schema.message_responses),
            [{"message_key": k, "response": r, "at": T0} for k, r in RESPONSES],
        )
    yield found
    await found.close()


@pytest.fixture
async def reader(
    definitions: SqlDefinitions,  # noqa: F811 - the fixture
    results: SqlCampaignResults,
    api_keys: SqlApiKeys,
    clock: SimulatedClock,
) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app, CONSOLE_PROBLEM_KINDS)
    app.state.guard = Guard(api_keys, RateLimiter(1000.0, 1000))
    app.include_router(campaigns.router(definitions, results, clock=clock))
    _key, secret = await api_keys.create("analyst", ["console:read"])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://console",
        headers={"Authorization": f"Bearer {secret}"},
    ) as client:
        yield client


def _wilson(x: int, n: int) -> tuple[float, float]:
    ci = stats.binomtest(x, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def _close(estimate: dict[str, float], value: float, low: float, high: float) -> None:
    assert estimate["value"] == pytest.approx(value, abs=1e-9)
    assert estimate["low"] == pytest.approx(low, abs=1e-9)
    assert estimate["high"] == pytest.approx(high, abs=1e-9)


async def test_the_report_counts_buyers_per_arm_and_states_the_uplift_with_its_intervals(
    reader: httpx.AsyncClient,
) -> None:
    response = await reader.get("/v1/campaigns/win-back-30d/report")
    assert response.status_code == 200, response.text
    report = response.json()

    assert report["funnel"] == {
        "audience": 300,
        "treatment": 200,
        "holdout": 100,
        "sent": 180,
        "delivered": 170,
        "opened": 120,
        "clicked": 31,
        "converted": 40,
        "revenue": "47800.00",  # 40 orders of 1000 + 10 i
    }
    assert (report["holdout"]["buyers"], report["holdout"]["converted"]) == (100, 10)
    assert report["holdout"]["revenue"] == "9000.00"

    p1, p2 = 40 / 200, 10 / 100
    l1, u1 = _wilson(40, 200)
    l2, u2 = _wilson(10, 100)
    _close(report["treatment"]["conversion"], p1, l1, u1)
    _close(report["holdout"]["conversion"], p2, l2, u2)
    d = p1 - p2
    _close(
        report["uplift"]["absolute"],
        d,
        d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )
    se = math.sqrt(1 / 40 - 1 / 200 + 1 / 10 - 1 / 100)
    _close(
        report["uplift"]["relative"],
        p1 / p2 - 1,
        math.exp(math.log(p1 / p2) - 1.959963984540054 * se) - 1,
        math.exp(math.log(p1 / p2) + 1.959963984540054 * se) - 1,
    )

    treated = np.array([float(a) for a in TREATED_ORDERS] + [0.0] * 160)
    held = np.array([float(a) for a in HELD_ORDERS] + [0.0] * 90)
    welch = stats.ttest_ind(treated, held, equal_var=False).confidence_interval(0.95)
    rpb = treated.mean() - held.mean()
    _close(report["uplift"]["revenue_per_buyer"], rpb, welch.low, welch.high)
    _close(report["uplift"]["incremental_revenue"], rpb * 200, welch.low * 200, welch.high * 200)
    assert report["treatment"]["revenue_per_buyer"] == pytest.approx(treated.mean())
    assert report["holdout"]["revenue_per_buyer"] == pytest.approx(90.0)

    # 20% against 10%: the absolute uplift's interval lies above zero, just.
    assert 0 < report["uplift"]["absolute"]["low"] < 0.02
    assert report["verdict"] == "treatment ahead, significant at 95%"
    assert report["verdict_code"] == "treatment_ahead"


async def test_a_campaign_with_no_messages_yet_has_too_few_buyers(
    reader: httpx.AsyncClient,
) -> None:
    report = (await reader.get("/v1/campaigns/welcome-lead/report")).json()
    assert report["funnel"]["audience"] == 0
    assert report["uplift"]["absolute"] is None
    assert report["verdict"] == "too few buyers"


async def test_a_campaign_with_no_holdout_reports_no_control_group(
    results: SqlCampaignResults,
    reader: httpx.AsyncClient,
    definitions: SqlDefinitions,  # noqa: F811 - the fixture
) -> None:
    # Seen: the win-back report (holdout 0) said "too few buyers".
    flash = {**BUILTIN["win-back-30d"].to_dict(), "key": "flash", "holdout": 0}
    await definitions.campaigns.put(
        "flash", definition=flash, status="active", expected_version=None
    )
    rows = [
        {**_message(f"{c}-{i}", f"f{i}", status="sent", reason="send_now", sent_at=T0)}
        | {"campaign": c}
        for c in ("flash", "pre-churn-rescue")
        for i in range(50)
    ]
    async with results.engine.begin() as conn:
        await conn.execute(insert(schema.messages), rows)
    report = (await reader.get("/v1/campaigns/flash/report")).json()
    assert (report["verdict"], report["verdict_code"]) == ("no control group", "no_control_group")
    assert report["revenue_verdict"] == "no control group"
    assert report["treatment"]["buyers"] == 50
    assert report["holdout"]["buyers"] == 0
    assert report["uplift"] == {
        "absolute": None,
        "relative": None,
        "revenue_per_buyer": None,
        "incremental_revenue": None,
    }
    held = (await reader.get("/v1/campaigns/pre-churn-rescue/report")).json()
    assert held["verdict"] == "too few buyers", "a holdout of 10%, none held out yet"
