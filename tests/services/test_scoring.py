"""Scoring the base (RFM, predictions, CLV) on the embedded pipeline: the scores land on
every buyer with an order, segments that read them move, and a second run on the same
base changes nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np

from services.tools.embedded import Pipeline
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.definitions import SqlDefinitions
from shared.domain.rfm import RFM_SEGMENTS
from tests.conftest import T0
from tests.e2e.stacks import identify, purchase

BUYERS = 60


def history() -> list[dict[str, object]]:
    """Buyers with 1 to 6 orders over the last 300 days, a few leads with none."""
    events: list[dict[str, object]] = []
    for n in range(BUYERS):
        customer = {"id": f"buyer-{n:03d}"}
        orders = 1 + n % 6
        for k in range(orders):
            at = T0 - timedelta(days=300 - n * 4 - k * (n % 7 + 3))
            total = f"{500 + 37 * n + 11 * k}.00"
            events.append(purchase(f"p-{n}-{k}", at, customer=customer, total=total))
    events += [
        identify(f"lead-{n}", T0 - timedelta(days=9), customer={"id": f"lead-{n}"})
        for n in range(5)
    ]
    return events


async def members(pipeline: Pipeline, segment: str) -> set[str]:
    async with pipeline.runtime.store.unit_of_work() as uow:
        ids = [f"buyer-{n:03d}" for n in range(BUYERS)]
        found = [await uow.profiles.find("id", i) for i in ids]
        stays = await uow.memberships.of([p.id for p in found if p is not None])
    return {pid for pid, segments in stays.items() if segment in segments}


async def test_scoring_sets_every_buyers_scores_and_moves_segments_that_read_them(
    pipeline: Pipeline,
) -> None:
    await SqlDefinitions(pipeline.runtime.store.engine).segments.put(
        "best-buyers",
        name="Champions",
        description="",
        rule={"rfm": "champions"},
        expected_version=None,
    )
    await pipeline.post_events(history())
    await pipeline.settle()
    assert await members(pipeline, "best-buyers") == set()

    run = await pipeline.segmenter.score()
    await pipeline.settle()

    assert run is not None
    assert (run.buyers, run.scored) == (BUYERS + 5, BUYERS)
    assert run.models is not None, run.notes
    async with pipeline.runtime.store.unit_of_work() as uow:
        buyer = await uow.profiles.find("id", "buyer-005")
        lead = await uow.profiles.find("id", "lead-0")
    assert buyer is not None
    assert lead is not None
    assert buyer.rfm_segment in RFM_SEGMENTS
    assert {buyer.rfm_r, buyer.rfm_f, buyer.rfm_m} <= {1, 2, 3, 4, 5}
    assert buyer.p_alive is not None
    assert 0 <= buyer.p_alive <= 1
    assert buyer.clv is not None
    # buyer-005 ordered every 8 days and has been silent for 240: worth little, not less.
    assert buyer.clv >= Decimal(0)
    assert run.notes[0].startswith("purchase model "), "the model chosen on the holdout"
    assert buyer.scored_at == T0
    assert (lead.rfm_segment, lead.p_alive, lead.clv) == (None, None, None)
    assert lead.scored_at == T0
    assert run.customer_equity > 0

    champions = await members(pipeline, "best-buyers")
    async with pipeline.runtime.store.unit_of_work() as uow:
        everyone = await uow.profiles.get_many(
            [
                p.id
                for p in [await uow.profiles.find("id", f"buyer-{n:03d}") for n in range(BUYERS)]
                if p
            ]
        )
    assert champions == {p.id for p in everyone.values() if p.rfm_segment == "champions"}
    assert champions, "a base this varied has champions"


async def test_scoring_the_same_base_at_the_same_moment_again_changes_nothing(
    pipeline: Pipeline,
) -> None:
    await pipeline.post_events(history())
    await pipeline.settle()
    first = await pipeline.segmenter.score()
    await pipeline.settle()
    again = await pipeline.segmenter.score()
    assert first is not None
    assert again is not None
    assert first.changed == BUYERS
    assert again.changed == 0
    assert await pipeline.settle() == 0


def plain_history() -> list[dict[str, object]]:
    """Issue 15's base: 60 buyers, 2-6 orders 10-30 days apart, order values 500 or 10000
    give or take 20%: BG/NBD lands on its bounds on it."""
    events: list[dict[str, object]] = []
    for n in range(60):
        customer = {"id": f"plain-{n:03d}"}
        orders = 2 + n % 5
        level = 500 if n % 2 else 10_000
        for k in range(orders):
            at = T0 - timedelta(days=150 - k * (10 + (n * 7 + k * 3) % 21))
            total = f"{level * (0.8 + ((n + k) % 5) / 10):.2f}"
            events.append(purchase(f"q-{n}-{k}", at, customer=customer, total=total))
    return events


async def test_a_degenerate_fit_falls_back_and_is_counted_stored_finite(
    pipeline: Pipeline,
) -> None:
    await pipeline.post_events(plain_history())
    await pipeline.settle()

    run = await pipeline.segmenter.score()
    await pipeline.settle()

    assert run is not None
    assert run.models is not None
    assert "purchases" in run.models.fallbacks, run.notes
    assert any(note.endswith("orders scored with the empirical rate") for note in run.notes)
    async with pipeline.runtime.store.unit_of_work() as uow:
        stored = [await uow.profiles.find("id", f"plain-{n:03d}") for n in range(60)]
    for profile in stored:
        assert profile is not None
        assert profile.clv is not None
        assert profile.clv.is_finite()
        assert profile.clv > 0
        assert profile.p_alive is not None
        assert 0 <= profile.p_alive <= 1
        assert profile.expected_purchases is not None
    recorded = await pipeline.runtime.scoring_base.last_run()
    assert recorded is not None, "the console says how the scores were made"
    assert recorded.fallbacks == run.models.fallbacks
    assert recorded.purchase_model == run.models.purchase_model
    assert recorded.notes == run.notes
    (registry,) = pipeline.segmenter.metrics_registries
    assert registry.get_sample_value("nudge_scoring_fallback_total", {"model": "purchases"}) == 1
    assert (
        registry.get_sample_value("nudge_scoring_runs_total", {"purchase_model": "empirical"}) == 1
    )


async def stored_scores(pipeline: Pipeline, ids: list[str]) -> dict[str, tuple[object, ...]]:
    async with pipeline.runtime.store.unit_of_work() as uow:
        found = {i: await uow.profiles.find("id", i) for i in ids}
    return {
        i: (p.rfm_segment, p.p_alive, p.expected_purchases, p.clv, p.clv_share, p.scored_at)
        for i, p in found.items()
        if p is not None
    }


async def test_scoring_as_of_a_moment_counts_only_the_orders_before_it_whatever_the_clock(
    pipeline: Pipeline, clock: SimulatedClock
) -> None:
    await pipeline.post_events(history())
    await pipeline.settle()
    as_of = T0 - timedelta(days=100)
    ids = [f"buyer-{n:03d}" for n in range(BUYERS)]

    first = await pipeline.segmenter.score(as_of=as_of)
    scores = await stored_scores(pipeline, ids)
    clock.advance(timedelta(days=3 * 365))
    again = await pipeline.segmenter.score(as_of=as_of)

    assert first is not None
    assert again is not None
    assert first.scored_at == as_of
    assert again.changed == 0
    assert await stored_scores(pipeline, ids) == scores
    assert all(row[-1] == as_of for row in scores.values())
    # buyer-059's first order is 64 days before T0: no order by as_of, so no scores.
    assert scores["buyer-059"][:4] == (None, None, None, None)
    # buyer-000 ordered first 300 days before T0, every 3 days: all before as_of.
    assert scores["buyer-000"][0] is not None
    # Only buyers with an order before as_of were scored.
    assert first.scored < BUYERS
    now = await pipeline.segmenter.score()
    assert now is not None
    assert now.scored_at == clock.now()
    assert now.scored == BUYERS


def varied_history() -> list[dict[str, object]]:
    """history()'s order moments with order values that vary within and across buyers,
    so that Gamma-Gamma fits and the CLV has an interval."""
    events = history()
    rng = np.random.default_rng(3)
    # Gamma-Gamma's own draws: each buyer's nu ~ Gamma(q=3, v=1), each order Gamma(p=4, nu).
    nu = rng.gamma(3.0, 1.0, BUYERS)
    for event in events:
        if event["type"] == "purchase":
            data = event["data"]
            assert isinstance(data, dict)
            n = int(str(event["event_id"]).split("-")[1])
            total = f"{100 * rng.gamma(4.0, 1.0 / nu[n]) + 1:.2f}"
            data["total"] = total
            data["items"][0]["price"] = total
    return events


async def test_each_buyers_clv_interval_is_stored_around_the_clv(pipeline: Pipeline) -> None:
    await pipeline.post_events(varied_history())
    await pipeline.settle()

    run = await pipeline.segmenter.score()

    assert run is not None
    assert run.models is not None
    assert run.models.fallbacks == (), run.notes
    async with pipeline.runtime.store.unit_of_work() as uow:
        found = [await uow.profiles.find("id", f"buyer-{n:03d}") for n in range(BUYERS)]
    for profile in found:
        assert profile is not None
        assert profile.clv is not None
        assert profile.clv_low is not None
        assert profile.clv_high is not None
        assert profile.clv_low <= profile.clv <= profile.clv_high
    assert any(p.clv_low < p.clv_high for p in found if p is not None)
