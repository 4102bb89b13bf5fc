"""Building the SMS and push providers from plain settings, each behind its own breaker.

The composition root (``services/bootstrap.py``) calls these with values from
the settings; ``resilient()`` wraps any provider, the email one included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypedDict, TypeVar, Unpack

from shared.adapters.providers.folder import PushFolderProvider, SmsFolderProvider
from shared.adapters.providers.metrics import ProviderMetrics
from shared.adapters.providers.push import FcmPushProvider
from shared.adapters.providers.resilience import BreakerPolicy, ResilientProvider, RetryPolicy
from shared.adapters.providers.sms import TwilioSmsProvider
from shared.ports.clock import Clock
from shared.ports.providers import Provider, PushMessage, SmsMessage

__all__ = ["Resilience", "build_push_provider", "build_sms_provider", "resilient"]

MessageT = TypeVar("MessageT")


class Resilience(TypedDict, total=False):
    """What a provider's retries and breaker may be told (:func:`resilient`'s defaults
    otherwise); the call timeout is the provider's own ``timeout``."""

    attempts: int
    total_seconds: float
    breaker_threshold: int
    breaker_cool_down: float
    metrics: ProviderMetrics | None


def resilient(
    inner: Provider[MessageT],
    *,
    name: str,
    clock: Clock,
    metrics: ProviderMetrics | None = None,
    attempts: int = 3,
    call_timeout: float = 10.0,
    total_seconds: float = 30.0,
    initial_backoff: float = 0.2,
    max_backoff: float = 5.0,
    breaker_threshold: int = 5,
    breaker_cool_down: float = 30.0,
) -> ResilientProvider[MessageT]:
    """``inner`` with retries, a call timeout and a circuit breaker of its own."""
    return ResilientProvider(
        inner,
        name=name,
        clock=clock,
        retry=RetryPolicy(
            attempts=attempts,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
            total_seconds=total_seconds,
            call_timeout=call_timeout,
        ),
        breaker=BreakerPolicy(threshold=breaker_threshold, cool_down=breaker_cool_down),
        metrics=metrics,
    )


def build_sms_provider(
    *,
    kind: Literal["http", "folder"],
    clock: Clock,
    sender: str,
    base_url: str = "https://api.twilio.com",
    account_sid: str = "",
    auth_token: str = "",
    folder: Path | None = None,
    timeout: float = 10.0,
    connect_timeout: float = 3.0,
    connections: int = 16,
    idle_timeout: float = 30.0,
    **resilience: Unpack[Resilience],
) -> ResilientProvider[SmsMessage]:
    """``http``: the Twilio-shaped API at ``base_url``; ``folder``: JSON files in ``folder``."""
    inner: Provider[SmsMessage]
    if kind == "folder":
        if folder is None:
            raise ValueError("the folder SMS provider needs a folder")
        inner = SmsFolderProvider(folder, sender)
    else:
        if not account_sid or not auth_token:
            raise ValueError("the SMS provider needs an account sid and an auth token")
        inner = TwilioSmsProvider(
            base_url,
            account_sid,
            auth_token,
            sender,
            timeout=timeout,
            connect_timeout=connect_timeout,
            connections=connections,
            idle_timeout=idle_timeout,
        )
    return resilient(inner, name="sms", clock=clock, call_timeout=timeout, **resilience)


def build_push_provider(
    *,
    kind: Literal["http", "folder"],
    clock: Clock,
    base_url: str = "https://fcm.googleapis.com",
    project_id: str = "",
    access_token: str = "",
    folder: Path | None = None,
    timeout: float = 10.0,
    connect_timeout: float = 3.0,
    connections: int = 16,
    idle_timeout: float = 30.0,
    **resilience: Unpack[Resilience],
) -> ResilientProvider[PushMessage]:
    """``http``: the FCM-shaped API at ``base_url``; ``folder``: JSON files in ``folder``."""
    inner: Provider[PushMessage]
    if kind == "folder":
        if folder is None:
            raise ValueError("the folder push provider needs a folder")
        inner = PushFolderProvider(folder)
    else:
        if not project_id or not access_token:
            raise ValueError("the push provider needs a project id and an access token")
        inner = FcmPushProvider(
            base_url,
            project_id,
            access_token,
            timeout=timeout,
            connect_timeout=connect_timeout,
            connections=connections,
            idle_timeout=idle_timeout,
        )
    return resilient(inner, name="push", clock=clock, call_timeout=timeout, **resilience)
