"""The campaigns every shop has, ready-made, and the templates they send."""

from __future__ import annotations

from typing import Any

from shared.domain.campaigns.model import Campaign
from shared.domain.campaigns.parsing import parse_campaign
from shared.domain.rendering import EmailTemplate, PushTemplate, SmsTemplate

__all__ = [
    "BUILTIN_CAMPAIGNS",
    "BUILTIN_PUSH_TEMPLATES",
    "BUILTIN_SMS_TEMPLATES",
    "BUILTIN_TEMPLATES",
]

_UNSUBSCRIBE_HTML = (
    '<p style="font-size: small"><a href="{{ unsubscribe_url }}">Unsubscribe</a> '
    "from these emails.</p>"
)
_UNSUBSCRIBE_TEXT = "\nUnsubscribe from these emails: {{ unsubscribe_url }}\n"
_SMS_STOP = " Stop: {{ unsubscribe_url }}"


def _email(subject: str, body_html: str, body_text: str) -> EmailTemplate:
    return EmailTemplate(
        subject=subject,
        html=f"<p>Hello!</p>{body_html}{_UNSUBSCRIBE_HTML}",
        text=f"Hello!\n\n{body_text}\n{_UNSUBSCRIBE_TEXT}",
    )


BUILTIN_TEMPLATES: dict[str, EmailTemplate] = {
    "win-back-email": EmailTemplate(
        subject="We miss you: 10% off your next order",
        html=(
            "<p>Hello!</p><p>It has been a while since your last order"
            "{% if customer.last_order_at %} on {{ customer.last_order_at.strftime('%d %B') }}"
            "{% endif %}. Here is 10% off your next one with the code <b>COMEBACK10</b>.</p>"
            '<p style="font-size: small"><a href="{{ unsubscribe_url }}">Unsubscribe</a> '
            "from these emails.</p>"
        ),
        text=(
            "Hello!\n\nIt has been a while since your last order"
            "{% if customer.last_order_at %} on {{ customer.last_order_at.strftime('%d %B') }}"
            "{% endif %}. Here is 10% off your next one with the code COMEBACK10.\n"
            "\nUnsubscribe from these emails: {{ unsubscribe_url }}\n"
        ),
    ),
    "welcome-email": _email(
        "Welcome! 5% off your first order",
        "<p>Thank you for joining us. Your first order is 5% cheaper with the code "
        "<b>WELCOME5</b>.</p>",
        "Thank you for joining us. Your first order is 5% cheaper with the code WELCOME5.",
    ),
    "second-order-email": _email(
        "Thank you for your first order: a gift for the second",
        "<p>We hope you enjoyed your first order"
        "{% if customer.last_order_at %} of {{ customer.last_order_at.strftime('%d %B') }}"
        "{% endif %}. Your second one comes with free delivery: use the code "
        "<b>SECOND</b>.</p>",
        "We hope you enjoyed your first order"
        "{% if customer.last_order_at %} of {{ customer.last_order_at.strftime('%d %B') }}"
        "{% endif %}. Your second one comes with free delivery: use the code SECOND.",
    ),
    "monthly-basket-email": _email(
        "Time to restock your usual basket?",
        "<p>By your usual rhythm your next order is due in a few days. Your usual basket "
        "is one click away:</p>"
        "{% if basket %}<ul>{% for item in basket %}<li>{{ item.sku }} &times; {{ item.quantity }}"
        "</li>{% endfor %}</ul>{% endif %}",
        "By your usual rhythm your next order is due in a few days. Your usual basket is one "
        "click away:"
        "{% for item in basket %}\n- {{ item.sku }} x {{ item.quantity }}{% endfor %}",
    ),
    "pre-churn-email": _email(
        "Is everything all right? 15% off to welcome you back",
        "<p>We have not seen you for longer than usual. Here is 15% off your next order with "
        "the code <b>STAY15</b>, valid for two weeks.</p>",
        "We have not seen you for longer than usual. Here is 15% off your next order with the "
        "code STAY15, valid for two weeks.",
    ),
    "abandoned-cart-email": _email(
        "You left something in your cart",
        "<p>Your cart is waiting for you"
        "{% if trigger.total is defined %}: {{ trigger.total }} in all{% endif %}. "
        "Complete your order before the items run out.</p>",
        "Your cart is waiting for you"
        "{% if trigger.total is defined %}: {{ trigger.total }} in all{% endif %}. "
        "Complete your order before the items run out.",
    ),
}
"""Email templates of the ready-made campaigns, by key."""

BUILTIN_SMS_TEMPLATES: dict[str, SmsTemplate] = {
    "monthly-basket-sms": SmsTemplate(
        "Your usual basket is due in a few days: order it in one click." + _SMS_STOP
    ),
    "pre-churn-sms": SmsTemplate("We miss you! 15% off your next order: code STAY15." + _SMS_STOP),
    "welcome-sms": SmsTemplate("Welcome! 5% off your first order: code WELCOME5." + _SMS_STOP),
    "second-order-sms": SmsTemplate("Free delivery on your second order: code SECOND." + _SMS_STOP),
    "win-back-sms": SmsTemplate(
        "Still thinking of us? 20% off today: code COMEBACK20." + _SMS_STOP
    ),
}
"""SMS templates of the ready-made campaigns (GSM-7 text, so one segment costs less)."""

BUILTIN_PUSH_TEMPLATES: dict[str, PushTemplate] = {
    "second-order-push": PushTemplate(
        title="Free delivery on your second order", body="Use the code SECOND at checkout."
    ),
    "monthly-basket-push": PushTemplate(
        title="Time to restock?", body="Your usual basket is due in a few days."
    ),
    "pre-churn-push": PushTemplate(title="We miss you", body="15% off your next order: STAY15."),
    "abandoned-cart-push": PushTemplate(
        title="Your cart is waiting", body="Complete your order before the items run out."
    ),
}
"""Push templates of the ready-made campaigns."""

_READY_MADE: tuple[dict[str, Any], ...] = (
    {
        "key": "win-back-30d",
        "name": "Win-back after 30 days without an order",
        "status": "active",
        "trigger": {"segment": "no-order-30d", "on": "entered"},
        "channels": ["email"],
        "templates": {"email": "win-back-email"},
        "goal": {"event": "purchase", "within": "30d"},
        "priority": 40,
    },
    {
        "key": "welcome-lead",
        "name": "Welcome for new leads",
        "trigger": {"segment": "lifecycle-lead", "on": "entered"},
        "holdout": 0.1,
        "channels": ["email"],
        "templates": {"email": "welcome-email"},
        "goal": {"event": "purchase", "within": "30d"},
        "priority": 50,
        "reentry": "once_per_buyer",
    },
    {
        "key": "second-order",
        "name": "Second order, two weeks after the first",
        "trigger": {"segment": "lifecycle-new", "on": "entered"},
        "delay": "14d",
        "holdout": 0.1,
        "channels": ["email", "push"],
        "templates": {"email": "second-order-email", "push": "second-order-push"},
        "goal": {"event": "purchase", "within": "14d"},
        "priority": 60,
        "reentry": "once_per_buyer",
    },
    {
        "key": "monthly-basket",
        "name": "Monthly basket reminder, 3 days before the expected next order",
        "trigger": {"moment": "expected_next_order_at", "before": "3d"},
        "audience": {"rhythm": "median_days_between_orders", "between": [20, 40]},
        "holdout": 0.1,
        "channels": "best",
        "templates": {
            "email": "monthly-basket-email",
            "sms": "monthly-basket-sms",
            "push": "monthly-basket-push",
        },
        "goal": {"event": "purchase", "within": "7d"},
        "priority": 30,
    },
    {
        "key": "pre-churn-rescue",
        "name": "Pre-churn rescue: overdue against their own rhythm",
        "trigger": {"segment": "lifecycle-pre-churn", "on": "entered"},
        "holdout": 0.1,
        "channels": "best",
        "templates": {
            "email": "pre-churn-email",
            "sms": "pre-churn-sms",
            "push": "pre-churn-push",
        },
        "goal": {"event": "purchase", "within": "21d"},
        "priority": 70,
    },
    {
        "key": "abandoned-cart",
        "name": "Abandoned cart: no order 2 hours after the cart changed",
        "trigger": {"event": "track", "name": "cart_updated"},
        "delay": "2h",
        "holdout": 0.1,
        "channels": ["email", "push"],
        "templates": {"email": "abandoned-cart-email", "push": "abandoned-cart-push"},
        "goal": {"event": "purchase", "within": "3d"},
        "priority": 80,
    },
)

BUILTIN_CAMPAIGNS: tuple[Campaign, ...] = tuple(parse_campaign(c) for c in _READY_MADE)
"""Campaigns every shop has: win-back is active, the others are drafts a shop switches on."""
