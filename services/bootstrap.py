"""The composition root: settings in, adapters built, handed to the services.

Nothing connects at import; :func:`bootstrap` is called once per process (or per
test) and :meth:`Runtime.close` releases what it opened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shared.adapters.bus.kafka import KafkaBus
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SystemClock
from shared.adapters.providers.email import EmlFolderProvider, SmtpProvider
from shared.adapters.store.engine import open_store
from shared.adapters.store.migrate import upgrade_async
from shared.adapters.store.sql import SqlStore
from shared.domain.campaigns import BUILTIN_CAMPAIGNS, BUILTIN_TEMPLATES, Campaign
from shared.domain.rendering import EmailTemplate
from shared.domain.segments import BUILTIN_SEGMENTS, Segment
from shared.ports.bus import Bus
from shared.ports.clock import Clock
from shared.ports.providers import EmailProvider
from shared.settings import Settings

__all__ = ["TOPICS", "Runtime", "bootstrap", "build_bus", "build_email"]

TOPICS = ("events", "events.dlq", "segment-changes", "segment-changes.dlq")


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    bus: Bus
    store: SqlStore
    email: EmailProvider
    segments: Sequence[Segment] = BUILTIN_SEGMENTS
    campaigns: Sequence[Campaign] = BUILTIN_CAMPAIGNS
    templates: Mapping[str, EmailTemplate] = field(default_factory=lambda: dict(BUILTIN_TEMPLATES))

    async def close(self) -> None:
        await self.bus.close()
        await self.store.close()


def build_bus(settings: Settings) -> Bus:
    if settings.bus == "kafka":
        return KafkaBus(
            settings.kafka_bootstrap,
            partitions=settings.kafka_partitions,
            publish_timeout=settings.publish_timeout,
        )
    return MemoryBus(partitions=settings.kafka_partitions)


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
    runtime = Runtime(
        settings=settings,
        clock=clock or SystemClock(),
        bus=bus or build_bus(settings),
        store=open_store(url),
        email=email or build_email(settings),
    )
    if create_topics:
        await runtime.bus.ensure_topics([settings.topic(t) for t in TOPICS])
    return runtime
