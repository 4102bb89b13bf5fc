"""The ready-made programmes: the ready-made campaigns as sequences a shop switches on.

Each is a draft (nothing sends until the shop activates it) on the ready-made
segments and templates. A purchase after entry exits a buyer at any step, so a
later step reaches only those who have not ordered since they entered: "if no
order, an SMS offer" is the step after the wait.
"""

from __future__ import annotations

from typing import Any

from shared.domain.programmes.model import Programme
from shared.domain.programmes.parsing import parse_programme

__all__ = ["BUILTIN_PROGRAMMES"]

_READY_MADE: tuple[dict[str, Any], ...] = (
    {
        "key": "welcome",
        "name": "Welcome: an email, then an SMS offer two days later",
        "trigger": {"segment": "lifecycle-lead", "on": "entered"},
        "holdout": 0.1,
        "goal": {"event": "purchase", "within": "30d"},
        "priority": 50,
        "steps": [
            {
                "id": "email",
                "send": {"channels": ["email"], "templates": {"email": "welcome-email"}},
            },
            {"id": "pause", "wait": {"for": "2d"}},
            {"id": "sms", "send": {"channels": ["sms"], "templates": {"sms": "welcome-sms"}}},
        ],
    },
    {
        "key": "second-order",
        "name": "Second order: an email at day 14, a push or SMS offer a week later",
        "trigger": {"segment": "lifecycle-new", "on": "entered"},
        "holdout": 0.1,
        "goal": {"event": "purchase", "within": "14d"},
        "priority": 60,
        "steps": [
            {"id": "two-weeks", "wait": {"for": "14d"}},
            {
                "id": "email",
                "send": {"channels": ["email"], "templates": {"email": "second-order-email"}},
            },
            {"id": "pause", "wait": {"for": "7d"}},
            {
                "id": "offer",
                "send": {
                    "channels": ["push", "sms"],
                    "templates": {"push": "second-order-push", "sms": "second-order-sms"},
                },
            },
        ],
    },
    {
        "key": "win-back",
        "name": "Win-back: an email at 30 days, a stronger SMS offer a week later, sunset at 60",
        "trigger": {"segment": "no-order-30d", "on": "entered"},
        "holdout": 0.1,
        "goal": {"event": "purchase", "within": "30d"},
        "priority": 40,
        "steps": [
            {
                "id": "email",
                "send": {"channels": ["email"], "templates": {"email": "win-back-email"}},
            },
            {"id": "pause", "wait": {"for": "7d"}},
            {"id": "sms", "send": {"channels": ["sms"], "templates": {"sms": "win-back-sms"}}},
            {"id": "until-60", "wait": {"for": "23d"}},
            {"id": "sunset", "exit": {"reason": "sunset"}},
        ],
    },
    {
        "key": "monthly-basket",
        "name": "Monthly basket: a reminder 3 days before the next order is due",
        "trigger": {"moment": "expected_next_order_at", "before": "3d"},
        "audience": {"rhythm": "median_days_between_orders", "between": [20, 40]},
        "holdout": 0.1,
        "goal": {"event": "purchase", "within": "7d"},
        "priority": 30,
        "steps": [
            {"id": "hour", "wait": {"best_hour": True}},
            {
                "id": "reminder",
                "send": {
                    "channels": "best",
                    "templates": {
                        "email": "monthly-basket-email",
                        "sms": "monthly-basket-sms",
                        "push": "monthly-basket-push",
                    },
                },
            },
        ],
    },
    {
        "key": "pre-churn",
        "name": "Pre-churn rescue: the best channel, then an SMS offer five days later",
        "trigger": {"segment": "lifecycle-pre-churn", "on": "entered"},
        "holdout": 0.1,
        "goal": {"event": "purchase", "within": "21d"},
        "priority": 70,
        "steps": [
            {
                "id": "rescue",
                "send": {
                    "channels": "best",
                    "templates": {"email": "pre-churn-email", "push": "pre-churn-push"},
                },
            },
            {"id": "pause", "wait": {"for": "5d"}},
            {"id": "sms", "send": {"channels": ["sms"], "templates": {"sms": "pre-churn-sms"}}},
        ],
    },
    {
        "key": "abandoned-cart",
        "name": "Abandoned cart: an email after 1 hour, a push after 24",
        "trigger": {"event": "track", "name": "cart_updated"},
        "holdout": 0.1,
        "goal": {"event": "purchase", "within": "3d"},
        "priority": 80,
        "steps": [
            {"id": "hour", "wait": {"for": "1h"}},
            {
                "id": "email",
                "send": {"channels": ["email"], "templates": {"email": "abandoned-cart-email"}},
            },
            {"id": "day", "wait": {"for": "23h"}},
            {
                "id": "push",
                "send": {"channels": ["push"], "templates": {"push": "abandoned-cart-push"}},
            },
        ],
    },
)

BUILTIN_PROGRAMMES: tuple[Programme, ...] = tuple(parse_programme(p) for p in _READY_MADE)
"""Programmes every shop has, as drafts: the ready-made campaigns in sequence."""
