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

from shared.adapters.bus.kafka import KafkaBus
from shared.adapters.bus.memory import MemoryBus
from shared.adapters.clock import SystemClock
from shared.adapters.providers.email import EmlFolderProvider, SmtpProvider
from shared.adapters.store.api_keys import SqlApiKeys
from shared.adapters.store.engine import open_store
from shared.adapters.store.migrate import upgrade_async
from shared.adapters.store.sql import SqlStore
from shared.domain.campaigns import BUILTIN_CAMPAIGNS, BUILTIN_TEMPLATES, Campaign
from shared.domain.rendering import EmailTemplate
from shared.domain.segments import BUILTIN_SEGMENTS, Segment
from shared.logging import get_logger
from shared.ports.bus import Bus
from shared.ports.clock import Clock
from shared.ports.providers import EmailProvider
from shared.settings import Settings

__all__ = [
    "HASH_KEY_FILE",
    "TOPICS",
    "Runtime",
    "bootstrap",
    "build_bus",
    "build_email",
    "token_hmac_key",
]

TOPICS = ("events", "events.dlq", "segment-changes", "segment-changes.dlq")
HASH_KEY_FILE = "token_hmac.key"
"""Where, under ``data_dir``, the generated bank card token key is kept."""

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
    store = open_store(url)
    runtime = Runtime(
        settings=settings,
        clock=clock or SystemClock(),
        bus=bus or build_bus(settings),
        store=store,
        email=email or build_email(settings),
        api_keys=SqlApiKeys(store.engine),
    )
    if create_topics:
        await runtime.bus.ensure_topics([settings.topic(t) for t in TOPICS])
    return runtime


def token_hmac_key(settings: Settings) -> bytes:
    """The key ingest hashes bank card tokens with: ``NUDGE_TOKEN_HMAC_KEY``, else a kept one.

    Without the setting, a random key is generated once and kept in
    ``<data_dir>/token_hmac.key`` (mode 0600), so a restart hashes every token as
    before. Processes that start together agree on it: the file is linked into
    place whole, and whoever comes second reads the first one's key. Every ingest
    process of one deployment needs the same key; in production, set the variable.
    """
    if settings.token_hmac_key is not None:
        return settings.token_hmac_key.get_secret_value().encode()
    path = settings.data_dir / HASH_KEY_FILE
    if not path.exists():
        _write_new_key(path)
    if settings.bus == "kafka":
        log.warning(
            "NUDGE_TOKEN_HMAC_KEY is not set: bank card tokens are hashed with the key kept "
            "under the data dir; give every ingest process the same key",
            path=str(path),
        )
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable key: remove it to have a new one generated")
    return key.encode()


def _write_new_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".token_hmac.")  # 0600
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_hex(32) + "\n")
        os.link(temporary, path)  # never replaces a key another process kept first
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)
