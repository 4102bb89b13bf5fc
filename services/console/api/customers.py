"""The customers API: one buyer as nudge sees them, and why each message went or not.

- ``GET /v1/customers/{id}``: the buyer with nudge's profile id ``id`` (a profile merged
  into another answers as the buyer it joined).
- ``GET /v1/customers?phone=...``: the buyer known by one identifier (``phone``,
  ``email``, ``loyalty_card``, ``id``, ``app_install_id`` or ``profile_id``), spelled
  any way a shop would: it is normalised as ingest normalises it.

Either answers the profile (identifiers, traits, consents, order facts), its lifecycle
stage, its segments, its predictions (RFM, probability alive, expected purchases and
spend, CLV, expected next order), its standard basket and its latest messages, each
with the decision behind it. Phones and emails (and any inside traits) are masked
unless the caller is an admin or holds the ``admin`` scope.

Needs the ``console:read`` scope; ``404 not-found`` when there is no such buyer.

(No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations,
which name the caller's dependency made in :func:`router`.)
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from services.http.auth import require as require_key
from services.http.problems import Problem
from shared.domain.identifiers import normalise_identifier
from shared.domain.lifecycle import DEFAULT_POLICY, LifecyclePolicy, stage
from shared.domain.masking import mask_email, mask_phone, mask_traits
from shared.domain.profile import Profile
from shared.ports.api_keys import ApiKey, Scope
from shared.ports.clock import Clock
from shared.ports.console import BuyerMessage, ConsoleQueries
from shared.ports.users import ConsoleUser

__all__ = ["LOOKUP_KINDS", "customer_json", "find_customer", "router", "sees_identifiers"]

LOOKUP_KINDS = ("phone", "email", "loyalty_card", "id", "app_install_id", "profile_id")
"""The identifiers a buyer can be looked up by, as the events' ``customer`` names them."""
MESSAGE_HISTORY = 50
"""How many of the buyer's latest messages are shown."""
Requirement = Callable[[Scope], Callable[..., Any]]
Identifier = Annotated[str | None, Query(min_length=1, max_length=320)]


def sees_identifiers(caller: object) -> bool:
    """Whether ``caller`` may see full phones and emails: an admin, or a key with ``admin``."""
    if isinstance(caller, ApiKey):
        return "admin" in caller.scopes
    return isinstance(caller, ConsoleUser) and caller.has("admin")


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat()


def _money(value: Any) -> str | None:
    return None if value is None else str(value)


def _message(message: BuyerMessage) -> dict[str, Any]:
    return {
        "key": message.key,
        "campaign": message.campaign,
        "channel": message.channel,
        "status": message.status,
        "reason": message.reason,
        "holdout": message.holdout,
        "created_at": _iso(message.created_at),
        "scheduled_for": _iso(message.scheduled_for),
        "sent_at": _iso(message.sent_at),
        "finished_at": _iso(message.finished_at),
        "error": message.error,
        "decision": [dict(step) for step in message.decision],
    }


def _traits(profile: Profile, unmasked: bool) -> dict[str, Any]:
    return dict(profile.traits) if unmasked else mask_traits(profile.traits)


async def find_customer(
    queries: ConsoleQueries, kind: str, raw: str, *, default_region: str | None
) -> Profile | None:
    """The buyer known by identifier ``kind`` spelled ``raw`` (normalised first); a value
    that cannot be such an identifier is ``422 invalid-request`` naming the parameter."""
    try:
        value = normalise_identifier(kind, raw, default_region=default_region)
    except ValueError as exc:
        raise Problem(
            "invalid-request", f"{kind}: {exc}", [{"pointer": f"/{kind}", "detail": str(exc)}]
        ) from None
    return await queries.find_buyer_by(kind, value)


async def customer_json(
    queries: ConsoleQueries,
    profile: Profile,
    *,
    clock: Clock,
    unmasked: bool,
    policy: LifecyclePolicy = DEFAULT_POLICY,
) -> dict[str, Any]:
    """Everything the console shows of ``profile``, identifiers masked unless ``unmasked``."""
    now = clock.now()
    segments = await queries.buyer_segments(profile.id)
    messages = await queries.buyer_messages(profile.id, limit=MESSAGE_HISTORY)
    recorded = next(
        (key.removeprefix("lifecycle-") for key, _ in segments if key.startswith("lifecycle-")),
        None,
    )
    email, phone = profile.email, profile.phone
    if not unmasked:
        email = mask_email(email) if email else None
        phone = mask_phone(phone) if phone else None
    return {
        "id": profile.id,
        "identifiers_masked": not unmasked,
        "email": email,
        "phone": phone,
        "traits": _traits(profile, unmasked),
        "consents": dict(profile.consents),
        "suppressions": sorted(profile.suppressions),
        "orders": {
            "count": profile.orders_count,
            "revenue_total": _money(profile.revenue_total),
            "refunds_count": profile.refunds_count,
            "refunds_total": _money(profile.refunds_total),
            "avg_check": _money(profile.avg_check),
            "first_order_at": _iso(profile.first_order_at),
            "last_order_at": _iso(profile.last_order_at),
            "median_days_between_orders": profile.median_days_between_orders,
        },
        "stores": {name: p.orders for name, p in sorted(profile.stores.items())},
        "categories": {name: p.orders for name, p in sorted(profile.categories.items())},
        "lifecycle": {
            "stage": recorded or stage(profile, now, policy),
            "recorded": recorded is not None,
        },
        "segments": [{"key": key, "entered_at": _iso(at)} for key, at in segments],
        "predictions": {
            "rfm": {
                "r": profile.rfm_r,
                "f": profile.rfm_f,
                "m": profile.rfm_m,
                "segment": profile.rfm_segment,
            },
            "p_alive": profile.p_alive,
            "expected_purchases": profile.expected_purchases,
            "expected_spend": _money(profile.expected_spend),
            "clv": _money(profile.clv),
            "clv_share": profile.clv_share,
            "clv_interval": (
                None
                if profile.clv_low is None or profile.clv_high is None
                else {"low": _money(profile.clv_low), "high": _money(profile.clv_high)}
            ),
            "scored_at": _iso(profile.scored_at),
            "expected_next_order_at": _iso(profile.expected_next_order_at),
        },
        "standard_basket": [
            {"sku": sku, "quantity": quantity} for sku, quantity in profile.standard_basket
        ],
        "messages": [_message(message) for message in messages],
    }


def router(
    queries: ConsoleQueries,
    *,
    clock: Clock,
    default_region: str | None = None,
    require: Requirement = require_key,
    policy: LifecyclePolicy = DEFAULT_POLICY,
) -> APIRouter:
    """The customers routes on ``queries``; ``default_region`` reads phones written
    without a country code (the setting ``default_region``, as ingest reads them)."""
    api = APIRouter(prefix="/v1/customers", tags=["customers"])
    Reader = Annotated[ConsoleUser | ApiKey, Depends(require("console:read"))]

    async def answer(profile: Profile | None, asked: str, caller: object) -> dict[str, Any]:
        if profile is None:
            raise Problem("not-found", f"no buyer {asked}")
        return await customer_json(
            queries, profile, clock=clock, unmasked=sees_identifiers(caller), policy=policy
        )

    @api.get(
        "",
        summary="The buyer known by one identifier (phone, email, loyalty card, ...)",
        responses={404: {"description": "no such buyer"}},
    )
    async def look_up(
        *,
        caller: Reader,
        phone: Identifier = None,
        email: Identifier = None,
        loyalty_card: Identifier = None,
        id: Identifier = None,
        app_install_id: Identifier = None,
        profile_id: Identifier = None,
    ) -> dict[str, Any]:
        given = {
            kind: value
            for kind, value in zip(
                LOOKUP_KINDS,
                (phone, email, loyalty_card, id, app_install_id, profile_id),
                strict=True,
            )
            if value is not None
        }
        if len(given) != 1:
            raise Problem(
                "invalid-request",
                f"name the buyer by exactly one of {', '.join(LOOKUP_KINDS)}",
                [{"pointer": "/", "detail": f"{len(given)} identifiers given"}],
            )
        ((kind, raw),) = given.items()
        found = await find_customer(queries, kind, raw, default_region=default_region)
        return await answer(found, f"with that {kind}", caller)

    @api.get(
        "/{profile_id}",
        summary="One buyer by nudge's profile id",
        responses={404: {"description": "no such buyer"}},
    )
    async def get_customer(
        caller: Reader,
        profile_id: Annotated[str, Path(max_length=64, description="nudge's profile id")],
    ) -> dict[str, Any]:
        return await answer(await queries.find_buyer(profile_id), profile_id, caller)

    return api
