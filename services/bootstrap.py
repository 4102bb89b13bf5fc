"""The composition root: settings in, adapters built, handed to the services.

Nothing connects at import; :func:`bootstrap` is called once per process (or per
test) and :meth:`Runtime.close` releases what it opened.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from argon2 import PasswordHasher
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.adapters.bus.kafka import KafkaBus
from shared.adapters.bus.sqlite import SqliteBus
from shared.adapters.clock import SystemClock
from shared.adapters.files import private_dir
from shared.adapters.providers.email import EmlFolderProvider, SmtpProvider
from shared.adapters.providers.factories import build_push_provider, build_sms_provider
from shared.adapters.providers.metrics import ProviderMetrics
from shared.adapters.providers.resilience import ResilientProvider
from shared.adapters.rendering import ProcessRenderer
from shared.adapters.store.api_keys import SqlApiKeys
from shared.adapters.store.engine import create_engine, open_store
from shared.adapters.store.event_ids import SqlEventIds
from shared.adapters.store.migrate import upgrade_async
from shared.adapters.store.sessions import SqlSessions
from shared.adapters.store.sql import SqlStore
from shared.adapters.store.users import SqlUsers
from shared.domain.campaigns import BUILTIN_CAMPAIGNS, BUILTIN_TEMPLATES, Campaign
from shared.domain.channels import ChannelEconomics
from shared.domain.decisions import (
    DEFAULT_POLICY,
    FrequencyCaps,
    QuietHours,
    SendingPolicy,
    SunsetPolicy,
)
from shared.domain.rendering import EmailTemplate, RenderLimits
from shared.domain.segments import BUILTIN_SEGMENTS, Segment
from shared.logging import get_logger
from shared.ports.bus import Bus
from shared.ports.clock import Clock
from shared.ports.providers import EmailProvider, PushMessage, SmsMessage
from shared.ports.rendering import Renderer
from shared.settings import Settings

__all__ = [
    "HASH_KEY_FILE",
    "TOPICS",
    "UNSUBSCRIBE_KEY_FILE",
    "ConsoleAccounts",
    "Runtime",
    "bootstrap",
    "build_bus",
    "build_email",
    "build_renderer",
    "console_accounts",
    "kept_key",
    "open_event_ids",
    "sqlite_path",
    "token_hmac_key",
    "unsubscribe_key",
]

TOPICS = ("events", "events.dlq", "segment-changes", "segment-changes.dlq")
HASH_KEY_FILE = "token_hmac.key"
"""Where, under ``data_dir``, the generated bank card token key is kept."""
UNSUBSCRIBE_KEY_FILE = "unsubscribe.key"
"""Where, under ``data_dir``, the generated unsubscribe link key is kept."""

log = get_logger(__name__)


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    bus: Bus
    store: SqlStore
    email: EmailProvider
    api_keys: SqlApiKeys
    """The HTTP API's keys, on the store's engine (closed with it)."""
    event_ids: SqlEventIds
    """The event ids ingest accepted, on the store's engine (closed with it)."""
    sms: ResilientProvider[SmsMessage]
    push: ResilientProvider[PushMessage]
    provider_metrics: ProviderMetrics
    """The providers' latency, failures and breaker states, for ``/metrics``."""
    renderer: Renderer
    """Where the dispatcher renders its messages: worker processes, bounded in time."""
    sending_policy: SendingPolicy = DEFAULT_POLICY
    """Caps, sunset, quiet hours and channel costs: what every campaign's sends obey."""
    segments: Sequence[Segment] = BUILTIN_SEGMENTS
    campaigns: Sequence[Campaign] = BUILTIN_CAMPAIGNS
    templates: Mapping[str, EmailTemplate] = field(default_factory=lambda: dict(BUILTIN_TEMPLATES))

    async def close(self) -> None:
        await self.renderer.aclose()
        await self.sms.aclose()
        await self.push.aclose()
        await self.bus.close()
        await self.store.close()


def build_bus(settings: Settings) -> Bus:
    if settings.bus == "kafka":
        return KafkaBus(
            settings.kafka_bootstrap,
            partitions=settings.kafka_partitions,
            publish_timeout=settings.publish_timeout,
        )
    return SqliteBus(
        sqlite_path(settings.db_url),
        partitions=settings.kafka_partitions,
        publish_timeout=settings.publish_timeout,
        retention=settings.bus_retention_hours * 3600,
    )


def sqlite_path(url: str) -> Path:
    """The file of an SQLite database URL: where the embedded bus keeps its records."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        raise ValueError(
            "the embedded bus keeps its records in the embedded SQLite database, and the "
            "database is not an SQLite file: set NUDGE_BUS=kafka, or a sqlite+aiosqlite:/// URL"
        )
    return Path(parsed.database)


def build_sms(
    settings: Settings, clock: Clock, metrics: ProviderMetrics
) -> ResilientProvider[SmsMessage]:
    token = settings.sms_auth_token
    return build_sms_provider(
        kind=settings.sms,
        sender=settings.sms_sender,
        base_url=settings.sms_base_url,
        account_sid=settings.sms_account_sid or "",
        auth_token=token.get_secret_value() if token else "",
        folder=settings.data_dir / "sms",
        timeout=settings.sms_timeout,
        **_resilience(settings, clock, metrics),
    )


def build_push(
    settings: Settings, clock: Clock, metrics: ProviderMetrics
) -> ResilientProvider[PushMessage]:
    token = settings.push_access_token
    return build_push_provider(
        kind=settings.push,
        base_url=settings.push_base_url,
        project_id=settings.push_project_id or "",
        access_token=token.get_secret_value() if token else "",
        folder=settings.data_dir / "push",
        timeout=settings.push_timeout,
        **_resilience(settings, clock, metrics),
    )


class _Resilience(TypedDict):
    clock: Clock
    connect_timeout: float
    attempts: int
    total_seconds: float
    breaker_threshold: int
    breaker_cool_down: float
    metrics: ProviderMetrics


def _resilience(settings: Settings, clock: Clock, metrics: ProviderMetrics) -> _Resilience:
    """What every HTTP provider shares: its clock, retries, breaker and metrics."""
    return _Resilience(
        clock=clock,
        connect_timeout=settings.provider_connect_timeout,
        attempts=settings.provider_attempts,
        total_seconds=settings.provider_retry_total,
        breaker_threshold=settings.breaker_threshold,
        breaker_cool_down=settings.breaker_cool_down,
        metrics=metrics,
    )


def sending_policy(settings: Settings) -> SendingPolicy:
    """The sending rules from the settings (see docs/campaigns.md)."""
    return SendingPolicy(
        caps=FrequencyCaps(
            per_day=settings.cap_per_day,
            per_week=settings.cap_per_week,
            per_campaign_per_week=settings.cap_per_campaign_per_week,
        ),
        sunset=SunsetPolicy(
            reduce_after=settings.sunset_reduce_after,
            reduced_min_priority=settings.sunset_min_priority,
            stop_after=settings.sunset_stop_after,
        ),
        quiet_hours=QuietHours(start=settings.quiet_hours_start, end=settings.quiet_hours_end),
        default_timezone=settings.default_timezone,
        channels=ChannelEconomics(
            costs={
                "email": settings.cost_email,
                "sms": settings.cost_sms,
                "push": settings.cost_push,
            },
            response_value=settings.response_value,
        ),
    )


def build_renderer(settings: Settings) -> ProcessRenderer:
    """A pool of render workers with the settings' limits (its workers start on first use)."""
    return ProcessRenderer(
        limits=RenderLimits(
            email=settings.render_max_email_bytes,
            sms=settings.render_max_sms_bytes,
            push=settings.render_max_push_bytes,
        ),
        timeout=settings.render_timeout,
        workers=settings.render_workers,
        memory_mb=settings.render_worker_memory_mb,
    )


def build_email(settings: Settings) -> EmailProvider:
    if settings.email == "folder":
        return EmlFolderProvider(settings.data_dir / "mail", settings.smtp_sender)
    return SmtpProvider(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_sender,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        start_tls=settings.smtp_start_tls,
    )


async def bootstrap(
    settings: Settings,
    *,
    clock: Clock | None = None,
    bus: Bus | None = None,
    email: EmailProvider | None = None,
    sms: ResilientProvider[SmsMessage] | None = None,
    push: ResilientProvider[PushMessage] | None = None,
    migrate: bool | None = None,
    create_topics: bool = True,
) -> Runtime:
    """Build the runtime for ``settings``; adapters given explicitly win over settings.

    ``migrate`` defaults to on for SQLite (the embedded default migrates itself) and
    off for PostgreSQL, whose schema moves with ``nudge db upgrade`` before start.
    """
    url = settings.db_url
    if migrate if migrate is not None else url.startswith("sqlite"):
        await upgrade_async(url)
    store = open_store(url)
    clock = clock or SystemClock()
    metrics = ProviderMetrics()
    runtime = Runtime(
        settings=settings,
        clock=clock,
        bus=bus or build_bus(settings),
        store=store,
        email=email or build_email(settings),
        api_keys=SqlApiKeys(store.engine),
        event_ids=SqlEventIds(store.engine, clock=clock),
        sms=sms or build_sms(settings, clock, metrics),
        push=push or build_push(settings, clock, metrics),
        provider_metrics=metrics,
        renderer=build_renderer(settings),
        sending_policy=sending_policy(settings),
    )
    if create_topics:
        await runtime.bus.ensure_topics([settings.topic(t) for t in TOPICS])
    return runtime


@dataclass(frozen=True)
class ConsoleAccounts:
    """The console's users and their sessions, on one engine: what a login, a logout
    and a disabled user change together (see :mod:`services.console.security`)."""

    users: SqlUsers
    sessions: SqlSessions

    async def close(self) -> None:
        """Dispose of the engine both share (only when this built it for a command)."""
        await self.users.close()


def console_accounts(
    engine: AsyncEngine, clock: Clock | None = None, *, hasher: PasswordHasher | None = None
) -> ConsoleAccounts:
    """The console's users and sessions on ``engine``, for the console app and for
    ``nudge users`` alike."""
    return ConsoleAccounts(
        SqlUsers(engine, clock=clock, hasher=hasher), SqlSessions(engine, clock=clock)
    )


def open_event_ids(settings: Settings, *, clock: Clock | None = None) -> SqlEventIds:
    """The index of accepted event ids of the configured database, for a process that
    publishes events without running a store (a production ``nudge replay``); dispose
    of its engine when done.

    Raises :class:`ValueError` when no database is configured (``NUDGE_DATABASE_URL``):
    an index this process kept for itself would claim nothing ingest sees.
    """
    if settings.database_url is None:
        raise ValueError(
            "a production replay claims its event ids in the database ingest uses: set "
            "NUDGE_DATABASE_URL; nothing was published"
        )
    return SqlEventIds(create_engine(settings.database_url), clock=clock)


def token_hmac_key(settings: Settings) -> bytes:
    """The key ingest hashes bank card tokens with: ``NUDGE_TOKEN_HMAC_KEY``, else a kept one
    (``<data_dir>/token_hmac.key``; see :func:`kept_key`). Every ingest process of one
    deployment needs the same key, and it must never change."""
    return kept_key(
        settings,
        settings.token_hmac_key,
        HASH_KEY_FILE,
        "NUDGE_TOKEN_HMAC_KEY is not set: bank card tokens are hashed with the key kept "
        "under the data dir; give every ingest process the same key",
    )


def unsubscribe_key(settings: Settings) -> bytes:
    """The key unsubscribe links are signed with: ``NUDGE_UNSUBSCRIBE_KEY``, else a kept one
    (``<data_dir>/unsubscribe.key``; see :func:`kept_key`). The dispatcher signs with it
    and ingest checks, so both need the same key."""
    return kept_key(
        settings,
        settings.unsubscribe_key,
        UNSUBSCRIBE_KEY_FILE,
        "NUDGE_UNSUBSCRIBE_KEY is not set: unsubscribe links are signed with the key kept "
        "under the data dir; give the dispatcher and every ingest process the same key",
    )


def kept_key(
    settings: Settings, configured: SecretStr | None, file_name: str, unset_warning: str
) -> bytes:
    """A secret key: ``configured`` when the setting is there, else one kept under the data dir.

    Without the setting, a random key is generated once and kept in
    ``<data_dir>/<file_name>`` (mode 0600), so a restart uses the same key as
    before. Processes that start together agree on it: the file is linked into
    place whole, and whoever comes second reads the first one's key. On Kafka
    (processes that may run on several machines) ``unset_warning`` is logged: in
    production, set the variable.
    """
    if configured is not None:
        return configured.get_secret_value().encode()
    path = settings.data_dir / file_name
    if not path.exists():
        _write_new_key(path)
    if settings.bus == "kafka":
        log.warning(unset_warning, path=str(path))
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable key: remove it to have a new one generated")
    return key.encode()


def _write_new_key(path: Path) -> None:
    private_dir(path.parent)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.")  # 0600
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_hex(32) + "\n")
        os.link(temporary, path)  # never replaces a key another process kept first
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)
