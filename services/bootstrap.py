"""The composition root: settings in, adapters built, ports handed to the services.

It is the one module under ``services/`` that imports an adapter: import-linter holds
the rest to ports (pyproject.toml lists the renderers still named where templates are
previewed and rendered). :func:`bootstrap` builds a whole process's :class:`Runtime`; a
command that needs the database only opens a :class:`Database` (:func:`open_database`);
the migration policy is :func:`migrates_itself`. Nothing connects at import;
:func:`bootstrap` is called once per process (or per test) and :meth:`Runtime.close`
releases what it opened.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

from argon2 import PasswordHasher
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.adapters.backlog import EmbeddedBacklog
from shared.adapters.bus.kafka import KafkaBus
from shared.adapters.bus.sqlite import ConsumedElsewhere, SqliteBus
from shared.adapters.clock import SimulatedClock, SystemClock
from shared.adapters.event_ids import MemoryEventIds
from shared.adapters.files import private_dir
from shared.adapters.providers.email import EmlFolderProvider, SmtpProvider
from shared.adapters.providers.factories import (
    Resilience,
    build_push_provider,
    build_sms_provider,
    resilient,
)
from shared.adapters.providers.metrics import ProviderMetrics
from shared.adapters.providers.resilience import ResilientProvider
from shared.adapters.rendering import ProcessRenderer
from shared.adapters.store.api_keys import SqlApiKeys
from shared.adapters.store.console_queries import SqlConsoleQueries
from shared.adapters.store.definitions import SqlDefinitions
from shared.adapters.store.dialect import is_sqlite
from shared.adapters.store.engine import create_engine, reach
from shared.adapters.store.event_ids import SqlEventIds
from shared.adapters.store.exports import SqlProfileExport
from shared.adapters.store.migrate import upgrade, upgrade_async
from shared.adapters.store.offers import SqlOffers
from shared.adapters.store.orders import SqlOrderHistory
from shared.adapters.store.reports import SqlCampaignResults
from shared.adapters.store.scoring import SqlScoringBase
from shared.adapters.store.sessions import SqlSessions
from shared.adapters.store.sql import SqlStore
from shared.adapters.store.users import SqlUsers
from shared.domain.campaigns import BUILTIN_CAMPAIGNS, BUILTIN_TEMPLATES, Campaign, parse_campaign
from shared.domain.channels import ChannelEconomics
from shared.domain.decisions import (
    DEFAULT_POLICY,
    FrequencyCaps,
    QuietHours,
    SendingPolicy,
    SunsetPolicy,
)
from shared.domain.offers import parse_offer
from shared.domain.programmes import parse_programme
from shared.domain.rendering import EmailTemplate, RenderLimits
from shared.domain.segments import BUILTIN_SEGMENTS, Segment
from shared.logging import get_logger
from shared.ports.api_keys import ApiKeys
from shared.ports.backlog import Backlog
from shared.ports.bus import Bus
from shared.ports.clock import Clock, SimulatedTime
from shared.ports.console import ConsoleQueries, SegmentSizeHistory
from shared.ports.definitions import Definitions
from shared.ports.event_ids import EventIds
from shared.ports.exports import ProfileExport
from shared.ports.offers import Offers
from shared.ports.orders import OrderHistory
from shared.ports.providers import (
    EmailMessage,
    EmailProvider,
    PushMessage,
    PushProvider,
    SmsMessage,
    SmsProvider,
)
from shared.ports.rendering import Renderer
from shared.ports.reports import CampaignResultsStore
from shared.ports.scoring import ScoringBase
from shared.ports.sessions import Sessions
from shared.ports.store import Store
from shared.ports.users import Users
from shared.settings import Settings

__all__ = [
    "HASH_KEY_FILE",
    "TOPICS",
    "UNSUBSCRIBE_KEY_FILE",
    "ConsoleAccounts",
    "ConsumedElsewhere",
    "Database",
    "Runtime",
    "bootstrap",
    "build_bus",
    "build_email",
    "build_renderer",
    "console_accounts",
    "kept_key",
    "memory_event_ids",
    "migrates_itself",
    "offer_code_key",
    "open_database",
    "open_dead_letter_bus",
    "open_ingest_database",
    "prepare_database",
    "prepare_database_now",
    "simulated_clock",
    "sqlite_path",
    "system_clock",
    "token_hmac_key",
    "unsubscribe_key",
    "upgrade_database",
]

TOPICS = ("events", "events.dlq", "segment-changes", "segment-changes.dlq")
HASH_KEY_FILE = "token_hmac.key"
OFFER_CODE_KEY_FILE = "offer_code.key"
"""Where, under ``data_dir``, the generated bank card token key is kept."""
UNSUBSCRIBE_KEY_FILE = "unsubscribe.key"
"""Where, under ``data_dir``, the generated unsubscribe link key is kept."""

log = get_logger(__name__)


def migrates_itself(url: str) -> bool:
    """Whether the database at ``url`` brings its schema up to date when a process opens
    it: the embedded SQLite does; PostgreSQL's schema moves with ``nudge db upgrade``,
    before the processes start (docs/operations.md)."""
    return is_sqlite(url)


async def prepare_database(url: str, *, migrate: bool | None = None) -> None:
    """Upgrade the schema at ``url`` when it :func:`migrates_itself` (or as ``migrate``
    says), from inside a running event loop."""
    if migrate if migrate is not None else migrates_itself(url):
        await upgrade_async(url)


def upgrade_database(url: str) -> None:
    """Bring the schema at ``url`` to the newest migration, whatever the database
    (``nudge db upgrade``); a database that cannot be reached is
    :class:`~shared.errors.StoreUnavailable`, before any migration runs."""
    reach_database_now(url)
    upgrade(url)


def prepare_database_now(url: str) -> None:
    """:func:`prepare_database`, for a command that has no event loop running yet; the
    database reached first (:func:`reach_database_now`)."""
    if migrates_itself(url):
        upgrade_database(url)
    else:
        reach_database_now(url)


def reach_database_now(url: str) -> None:
    """Connect to ``url`` once, for a command that has no event loop running yet:
    :class:`~shared.errors.StoreUnavailable` saying where and why when it cannot, before
    a command starts its work."""
    asyncio.run(reach(url))


@dataclass(frozen=True)
class ConsoleAccounts:
    """The console's users and their sessions, on one engine: what a login, a logout
    and a disabled user change together (see :mod:`services.console.security`)."""

    users: Users
    sessions: Sessions

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


class Database:
    """Every port over the one database, on one engine (one pool), each built when first
    asked for; :meth:`close` disposes of the engine.

    Its clock dates what it writes (definitions, users, sessions, accepted event ids);
    the API keys keep the system's time whatever the clock.
    """

    def __init__(self, engine: AsyncEngine, clock: Clock | None = None) -> None:
        self._engine = engine
        self._clock = clock
        self.clock: Clock = clock or SystemClock()

    @cached_property
    def store(self) -> Store:
        return SqlStore(self._engine)

    @cached_property
    def api_keys(self) -> ApiKeys:
        return SqlApiKeys(self._engine)

    @cached_property
    def event_ids(self) -> EventIds:
        return SqlEventIds(self._engine, clock=self._clock)

    @cached_property
    def definitions(self) -> Definitions:
        """The stored segments, templates, campaigns and programmes; a campaign or a
        programme is parsed before it is stored (an invalid one is refused)."""
        return SqlDefinitions(
            self._engine,
            clock=self._clock,
            validate_campaign=lambda key, doc: parse_campaign(doc, key=key),
            validate_programme=lambda key, doc: parse_programme(doc, key=key),
        )

    @cached_property
    def offers(self) -> Offers:
        """The offers and their pools of codes; an offer is parsed before it is stored."""
        return SqlOffers(
            self._engine, clock=self._clock, validate=lambda key, doc: parse_offer(doc, key=key)
        )

    @cached_property
    def results(self) -> CampaignResultsStore:
        return SqlCampaignResults(self._engine)

    @cached_property
    def _queries(self) -> SqlConsoleQueries:
        return SqlConsoleQueries(self._engine)

    @property
    def queries(self) -> ConsoleQueries:
        """What the console reads about the buyers."""
        return self._queries

    @property
    def sizes(self) -> SegmentSizeHistory:
        """Every segment's size, day by day (the same adapter as :attr:`queries`)."""
        return self._queries

    @cached_property
    def scoring_base(self) -> ScoringBase:
        return SqlScoringBase(self._engine)

    @cached_property
    def order_history(self) -> OrderHistory:
        """Every buyer's orders as placed: what model validation reads."""
        return SqlOrderHistory(self._engine)

    @cached_property
    def accounts(self) -> ConsoleAccounts:
        return console_accounts(self._engine, self._clock)

    @cached_property
    def exports(self) -> ProfileExport:
        return SqlProfileExport(self._engine)

    def backlog(self, bus: Bus, settings: Settings) -> Backlog | None:
        """What a stopping ``nudge serve`` applies first, on ``bus``: ``None`` but on the
        embedded bus (the broker keeps what is left for whichever replica comes next)."""
        if not isinstance(bus, SqliteBus):
            return None
        events, changes = settings.topic("events"), settings.topic("segment-changes")
        return EmbeddedBacklog(
            bus,
            self._engine,
            [
                (settings.group("segmenter"), [events]),
                (settings.group("dispatcher"), [changes]),
                (settings.group("dispatcher-events"), [events]),
            ],
        )

    async def close(self) -> None:
        await self._engine.dispose()


def open_database(url: str, *, clock: Clock | None = None) -> Database:
    """The ports over the database at ``url`` (``postgresql+asyncpg://…`` or
    ``sqlite+aiosqlite:///…``), for a process or a command; nothing connects yet."""
    return Database(create_engine(url), clock)


def open_ingest_database(settings: Settings, *, clock: Clock | None = None) -> Database:
    """The configured database (``NUDGE_DATABASE_URL``), for a process that publishes
    events without running a store (a production ``nudge replay``) and claims their ids
    where ingest does; close it when done.

    Raises :class:`ValueError` when no database is configured: an index this process
    kept for itself would claim nothing ingest sees.
    """
    if settings.database_url is None:
        raise ValueError(
            "a production replay claims its event ids in the database ingest uses: set "
            "NUDGE_DATABASE_URL; nothing was published"
        )
    return open_database(settings.database_url, clock=clock)


@dataclass
class Runtime:
    """One process's ports, built from its settings by :func:`bootstrap`."""

    settings: Settings
    clock: Clock
    bus: Bus
    database: Database
    email: EmailProvider
    sms: SmsProvider
    push: PushProvider
    provider_registry: CollectorRegistry
    """The providers' latency, failures and breaker states, for ``/metrics``."""
    renderer: Renderer
    """Where the dispatcher renders its messages: worker processes, bounded in time."""
    backlog: Backlog | None
    """What a stopping ``nudge serve`` applies before it stops (the embedded bus only)."""
    closing: Sequence[Callable[[], Awaitable[None]]] = ()
    """What :meth:`close` releases, in order."""
    sending_policy: SendingPolicy = DEFAULT_POLICY
    """Caps, sunset, quiet hours and channel costs: what every campaign's sends obey."""
    segments: Sequence[Segment] = BUILTIN_SEGMENTS
    campaigns: Sequence[Campaign] = BUILTIN_CAMPAIGNS
    templates: Mapping[str, EmailTemplate] = field(default_factory=lambda: dict(BUILTIN_TEMPLATES))

    @property
    def store(self) -> Store:
        return self.database.store

    @property
    def api_keys(self) -> ApiKeys:
        """The HTTP API's keys."""
        return self.database.api_keys

    @property
    def event_ids(self) -> EventIds:
        """The event ids ingest accepted."""
        return self.database.event_ids

    @property
    def definitions(self) -> Definitions:
        return self.database.definitions

    @property
    def results(self) -> CampaignResultsStore:
        return self.database.results

    @property
    def scoring_base(self) -> ScoringBase:
        return self.database.scoring_base

    @property
    def order_history(self) -> OrderHistory:
        return self.database.order_history

    @property
    def accounts(self) -> ConsoleAccounts:
        return self.database.accounts

    async def close(self) -> None:
        for close in self.closing:
            await close()


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
        clock=clock,
        connect_timeout=settings.provider_connect_timeout,
        connections=settings.provider_connections,
        idle_timeout=settings.provider_idle_timeout,
        **_resilience(settings, metrics),
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
        clock=clock,
        connect_timeout=settings.provider_connect_timeout,
        connections=settings.provider_connections,
        idle_timeout=settings.provider_idle_timeout,
        **_resilience(settings, metrics),
    )


def _resilience(settings: Settings, metrics: ProviderMetrics) -> Resilience:
    """What every provider shares: its retries, breaker and metrics."""
    return Resilience(
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


def build_email(
    settings: Settings,
    clock: Clock,
    metrics: ProviderMetrics,
    *,
    folder: Path | None = None,
) -> ResilientProvider[EmailMessage]:
    """SMTP, or ``.eml`` files in ``folder`` (default ``<data_dir>/mail``) when the
    settings say ``NUDGE_EMAIL=folder`` or a folder is given; behind the same retries,
    call timeout and breaker as the SMS and push providers."""
    inner: EmailProvider
    if settings.email == "folder" or folder is not None:
        inner = EmlFolderProvider(folder or settings.data_dir / "mail", settings.smtp_sender)
    else:
        inner = SmtpProvider(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_sender,
            username=settings.smtp_username,
            password=(
                settings.smtp_password.get_secret_value() if settings.smtp_password else None
            ),
            start_tls=settings.smtp_start_tls,
            timeout=settings.smtp_timeout,
            connections=settings.provider_connections,
            idle_timeout=settings.provider_idle_timeout,
        )
    return resilient(
        inner,
        name="email",
        clock=clock,
        call_timeout=settings.smtp_timeout,
        **_resilience(settings, metrics),
    )


async def bootstrap(
    settings: Settings,
    *,
    clock: Clock | None = None,
    bus: Bus | None = None,
    email: EmailProvider | None = None,
    sms: ResilientProvider[SmsMessage] | None = None,
    push: ResilientProvider[PushMessage] | None = None,
    mail_folder: Path | None = None,
    migrate: bool | None = None,
    create_topics: bool = True,
) -> Runtime:
    """Build the runtime for ``settings``; adapters given explicitly win over settings
    (``mail_folder``: the emails go to ``.eml`` files there, as the demo's do).

    ``migrate`` defaults to :func:`migrates_itself` (the embedded SQLite migrates itself;
    PostgreSQL's schema moves with ``nudge db upgrade`` before start).
    """
    url = settings.db_url
    await prepare_database(url, migrate=migrate)
    clock = clock or SystemClock()
    database = open_database(url, clock=clock)
    metrics = ProviderMetrics()
    bus = bus or build_bus(settings)
    sms = sms or build_sms(settings, clock, metrics)
    push = push or build_push(settings, clock, metrics)
    renderer = build_renderer(settings)
    email = email or build_email(settings, clock, metrics, folder=mail_folder)
    # The SMTP provider keeps its connections open: closed with the runtime, as SMS and push.
    close_email = getattr(email, "aclose", None)
    runtime = Runtime(
        settings=settings,
        clock=clock,
        bus=bus,
        database=database,
        email=email,
        sms=sms,
        push=push,
        provider_registry=metrics.registry,
        renderer=renderer,
        backlog=database.backlog(bus, settings),
        closing=(
            renderer.aclose,
            *([close_email] if close_email else []),
            sms.aclose,
            push.aclose,
            bus.close,
            database.close,
        ),
        sending_policy=sending_policy(settings),
    )
    if create_topics:
        await runtime.bus.ensure_topics([settings.topic(t) for t in TOPICS])
    return runtime


def system_clock() -> Clock:
    """The system's clock: what a process without one of its own is given."""
    return SystemClock()


def simulated_clock(start: datetime) -> SimulatedTime:
    """A clock standing at ``start`` until it is moved: for the demo and an embedded replay."""
    return SimulatedClock(start)


def memory_event_ids() -> EventIds:
    """An index of accepted event ids in memory, for one process that never restarts
    (tests, the schema of the API); a deployment claims them in the database's."""
    return MemoryEventIds()


def open_dead_letter_bus(settings: Settings) -> Bus:
    """The bus whose dead letters: Kafka, or the embedded bus in the SQLite database
    (beside a running ``nudge serve --embedded`` too: its consumers see a replay within
    a moment), migrated first.

    Raises :class:`ValueError`, saying what to set, when the embedded bus has no SQLite
    file to live in, or when that file does not exist (opening it would make an empty
    one, holding no dead letter).
    """
    if settings.bus != "kafka":
        if not is_sqlite(settings.db_url):
            raise ValueError(
                "The embedded bus lives in the embedded SQLite database, and "
                "NUDGE_DATABASE_URL is not SQLite: set NUDGE_BUS=kafka for the production bus."
            )
        database = sqlite_path(settings.db_url)
        if not database.is_file():
            raise ValueError(
                f"There is no database at {database}: check NUDGE_DATA_DIR (or "
                "NUDGE_DATABASE_URL), it must name the data dir of `nudge serve --embedded`."
            )
        prepare_database_now(settings.db_url)
    return build_bus(settings)


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


def offer_code_key(settings: Settings) -> bytes:
    """The key generated promo codes are signed with: ``NUDGE_OFFER_CODE_KEY``, else a kept
    one (``<data_dir>/offer_code.key``; see :func:`kept_key`). The shop's checkout checks
    codes with it (docs/offers.md), so set it in production and give the checkout the same."""
    return kept_key(
        settings,
        settings.offer_code_key,
        OFFER_CODE_KEY_FILE,
        "NUDGE_OFFER_CODE_KEY is not set: generated promo codes are signed with the key kept "
        "under the data dir; give every dispatcher and the shop's checkout the same key",
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
