"""Adaptive variant splits on simulated buyers whose true conversion rates are known:
the chances of being best agree with sampling, the better variant wins and takes the
traffic, a worse one never wins, every variant keeps its exploration share until then,
and a buyer's variant is fixed given the posterior state."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from shared.domain.programmes import (
    Adaptive,
    Learning,
    ProgrammeError,
    Send,
    chances_best,
    learn,
    variant_for,
    walk,
)
from tests.unit.builders import T0
from tests.unit.test_programmes import UTC_ZONE, buyer, programme, start

NAMES = ("a", "b", "c")


def adaptive_email(**send: Any) -> dict[str, Any]:
    return {
        "id": "email",
        "send": {
            "channels": ["email"],
            "split": "adaptive",
            "variants": [{"name": n, "templates": {"email": "win-back-email"}} for n in NAMES],
            **send,
        },
    }


def test_the_chances_of_being_best_agree_with_sampling_the_posteriors() -> None:
    buyers, converted = (400, 380, 420), (22, 30, 25)
    rng = np.random.default_rng(7)
    draws = np.stack(
        [rng.beta(1 + c, 1 + n - c, 400_000) for n, c in zip(buyers, converted, strict=True)]
    )
    sampled = np.bincount(draws.argmax(axis=0), minlength=3) / draws.shape[1]
    assert chances_best(buyers, converted) == pytest.approx(tuple(sampled), abs=0.005)
    assert chances_best((50, 50), (5, 5)) == pytest.approx((0.5, 0.5))


def _simulate(
    truth: tuple[float, ...], seed: int, *, rounds: int = 40, per_round: int = 300
) -> tuple[Learning, list[Learning], dict[str, int]]:
    """Buyers arriving in rounds, each given a variant by the split of the state before the
    round, converting with their variant's true rate; until a variant wins."""
    p = programme(adaptive_email(), key=f"sim-{seed}")
    step = p.steps["email"]
    assert isinstance(step, Send)
    assert step.adaptive is not None
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(NAMES, (0, 0))
    given = dict.fromkeys(NAMES, 0)
    states = []
    state = learn(NAMES, counts, step.adaptive)
    for r in range(rounds):
        states.append(state)
        if state.winner is not None:
            break
        for i in range(per_round):
            chosen = variant_for(p, step, f"buyer-{r}-{i}", state.shares).name
            given[chosen] += 1
            n, c = counts[chosen]
            counts[chosen] = (n + 1, c + int(rng.random() < truth[NAMES.index(chosen)]))
        state = learn(NAMES, counts, step.adaptive)
    return state, states, given


def test_the_better_variant_wins_with_its_probability_and_takes_most_buyers() -> None:
    final, states, given = _simulate((0.04, 0.09, 0.04), seed=1)
    assert final.winner == "b"
    assert final.winner_probability is not None
    assert final.winner_probability >= 0.95
    assert given["b"] > given["a"] + given["c"]
    assert final.shares == (0.0, 1.0, 0.0)
    for state in states[:-1]:
        assert min(state.shares) >= Adaptive().min_share - 1e-12
        assert sum(state.shares) == pytest.approx(1.0)


def test_a_worse_variant_never_wins() -> None:
    for seed in range(12):
        final, _states, _given = _simulate((0.05, 0.08, 0.05), seed=100 + seed, rounds=25)
        assert final.winner in (None, "b"), seed


def test_no_variant_wins_before_each_has_its_least_buyers() -> None:
    rules = Adaptive(min_buyers=500)
    state = learn(NAMES, {"a": (400, 0), "b": (400, 80), "c": (600, 0)}, rules)
    assert state.winner is None
    assert state.best[1] > 0.999
    assert state.shares[0] == pytest.approx(0.05, abs=1e-6)
    assert learn(NAMES, {"a": (500, 0), "b": (500, 80), "c": (600, 0)}, rules).winner == "b"


def test_a_buyers_variant_is_fixed_given_the_posterior_state() -> None:
    p = programme(adaptive_email())
    step = p.steps["email"]
    assert isinstance(step, Send)
    state = learn(NAMES, {"a": (100, 5), "b": (100, 9), "c": (100, 4)}, Adaptive())
    first = [variant_for(p, step, f"p-{n}", state.shares).name for n in range(200)]
    again = [variant_for(p, step, f"p-{n}", state.shares).name for n in range(200)]
    assert first == again
    position = start(p)
    walked = walk(p, position, buyer(), T0, zone=UTC_ZONE, splits={"email": (0.0, 0.0, 1.0)})
    assert [s.variant.name for s in walked.sends] == ["c"]


def test_an_adaptive_split_is_read_with_its_rules_or_refused_at_the_bad_field() -> None:
    step = programme(adaptive_email(adaptive={"min_share": 0.1, "win_at": 0.99})).steps["email"]
    assert isinstance(step, Send)
    assert step.adaptive == Adaptive(0.1, 0.99, 100)
    assert [v.share for v in step.variants] == pytest.approx([1 / 3] * 3)
    refusals = [
        (adaptive_email(adaptive={"min_share": 0.4}), "/steps/0/send/adaptive/min_share"),
        (adaptive_email(adaptive={"win_at": 1.2}), "/steps/0/send/adaptive/win_at"),
        (adaptive_email(split="sometimes"), "/steps/0/send/split"),
        (
            {
                "id": "email",
                "send": {
                    "channels": ["email"],
                    "adaptive": {"min_share": 0.1},
                    "templates": {"email": "win-back-email"},
                },
            },
            "/steps/0/send/adaptive",
        ),
    ]
    for written, pointer in refusals:
        with pytest.raises(ProgrammeError) as refused:
            programme(written)
        assert refused.value.pointer == pointer
