"""Settings, from ``NUDGE_*`` environment variables (and a ``.env`` file, if present).

The defaults are the embedded default: an in-process bus and SQLite under
``NUDGE_DATA_DIR``. Production sets ``NUDGE_BUS=kafka``, ``NUDGE_KAFKA_BOOTSTRAP``
and a ``postgresql+asyncpg://`` ``NUDGE_DATABASE_URL``.
"""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.domain.events import EARLIEST_OCCURRED_AT
from shared.domain.identifiers import is_known_region
from shared.domain.money import RefundRules, ShopCurrency

__all__ = ["Settings"]


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting may be a secret; its value is never echoed.
    model_config = SettingsConfigDict(
        env_prefix="NUDGE_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Path("var")
    bus: Literal["memory", "kafka"] = "memory"
    database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg://… or sqlite+aiosqlite:///…; "
        "default: SQLite under data_dir",
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_partitions: int = Field(
        default=12,
        ge=1,
        description="partitions of the topics nudge creates: 12 divides among 1, 2, 3, 4, 6 "
        "or 12 replicas of a service; a topic that exists keeps its count",
    )
    topic_prefix: str = Field(default="nudge", pattern=r"^[A-Za-z0-9._-]+$")
    group_prefix: str = Field(default="nudge", pattern=r"^[A-Za-z0-9._-]+$")
    publish_timeout: float = Field(default=5.0, gt=0, description="seconds ingest waits for acks")
    default_region: str = Field(
        default="RU",
        description="ISO 3166-1 alpha-2 region of phones written without a country code",
    )
    token_hmac_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="key of the HMAC-SHA256 that replaces bank card tokens; default: a random "
        "key generated once under data_dir (token_hmac.key)",
    )

    unsubscribe_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="key of the HMAC-SHA256 that signs unsubscribe links; default: a random key "
        "generated once under data_dir (unsubscribe.key)",
    )
    offer_code_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="key of the HMAC-SHA256 that signs generated promo codes, shared with the "
        "shop's checkout (docs/offers.md); default: a random key generated once under data_dir "
        "(offer_code.key)",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="where buyers reach the HTTP API: the base of unsubscribe links",
    )
    webhook_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="delivery webhook provider name to the secret its requests are signed with "
        '(JSON: {"provider": "secret"})',
    )

    currency: str = Field(
        default="RUB",
        pattern=r"^[A-Z]{3}$",
        description="the shop's currency (ISO 4217): every amount nudge keeps is in it",
    )
    currency_rates: dict[Annotated[str, Field(pattern=r"^[A-Z]{3}$")], Decimal] = Field(
        default_factory=dict,
        description="what one unit of another currency is worth in the shop's, for ingest to "
        'convert purchases and refunds in it (JSON: {"USD": "92.50"}); a currency without '
        "a rate is refused",
    )
    unseen_order_refund_cap: Decimal = Field(
        default=Decimal("0"),
        ge=0,
        max_digits=14,
        decimal_places=2,
        description="the most an order nudge never saw may have refunded, over all its "
        "refunds; a refund past it is dead-lettered",
    )

    occurred_at_earliest: AwareDatetime = Field(
        default=EARLIEST_OCCURRED_AT,
        description="ingest refuses an event that occurred before this moment (ISO 8601)",
    )
    occurred_at_max_future: timedelta = Field(
        default=timedelta(days=1),
        ge=timedelta(0),
        description="ingest refuses an event that occurred more than this ahead of its clock "
        "(ISO 8601 duration such as P1D or PT6H, or seconds)",
    )

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    rate_limit_per_second: float = Field(
        default=200.0, gt=0, description="requests per second per API key, in each process"
    )
    rate_limit_burst: int = Field(
        default=400, ge=1, description="requests one API key may make at once, in each process"
    )

    email: Literal["smtp", "folder"] = Field(
        default="smtp", description="smtp: send through the SMTP server; folder: .eml files"
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_sender: str = "shop@nudge.local"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_start_tls: bool | None = None
    smtp_timeout: float = Field(default=10.0, gt=0)

    sms: Literal["http", "folder"] = Field(
        default="folder",
        description="http: a Twilio-shaped SMS API at sms_base_url; folder: JSON files "
        "under <data_dir>/sms",
    )
    sms_base_url: str = "https://api.twilio.com"
    sms_account_sid: str | None = None
    sms_auth_token: SecretStr | None = None
    sms_sender: str = "NUDGE"
    sms_timeout: float = Field(default=10.0, gt=0)
    sms_max_segments: int = Field(default=3, ge=1, description="longer SMS are refused")
    push: Literal["http", "folder"] = Field(
        default="folder",
        description="http: an FCM HTTP v1-shaped API at push_base_url; folder: JSON files "
        "under <data_dir>/push",
    )
    push_base_url: str = "https://fcm.googleapis.com"
    push_project_id: str | None = None
    push_access_token: SecretStr | None = None
    push_timeout: float = Field(default=10.0, gt=0)
    provider_connect_timeout: float = Field(default=3.0, gt=0)
    provider_connections: int = Field(
        default=16,
        ge=1,
        description="connections each provider keeps open to its server (the SMTP pool, "
        "the SMS and push HTTP keep-alive pools): the dispatcher's 16 sends in flight "
        "per channel",
    )
    provider_idle_timeout: float = Field(
        default=30.0, gt=0, description="seconds an unused provider connection stays open"
    )
    provider_attempts: int = Field(default=3, ge=1, description="tries per provider call")
    provider_retry_total: float = Field(
        default=30.0, gt=0, description="seconds a provider call may take, retries included"
    )
    breaker_threshold: int = Field(
        default=5, ge=1, description="failures in a row that open a provider's circuit breaker"
    )
    breaker_cool_down: float = Field(
        default=30.0, gt=0, description="seconds an open breaker waits before one trial call"
    )

    # Template renders (save, preview, send): bounded in time and output (docs/console.md).
    render_timeout: float = Field(
        default=1.0, gt=0, le=60, description="seconds one template render may take"
    )
    render_max_email_bytes: int = Field(
        default=256 * 1024, ge=1024, description="most a rendered email holds, every part together"
    )
    render_max_sms_bytes: int = Field(
        default=2 * 1024, ge=160, description="most a rendered SMS text holds (UTF-8 bytes)"
    )
    render_max_push_bytes: int = Field(
        default=4 * 1024, ge=256, description="most a rendered push holds, every part together"
    )
    render_workers: int = Field(
        default=2, ge=1, le=64, description="render worker processes per pool (console, dispatcher)"
    )
    render_worker_memory_mb: int = Field(
        default=256, ge=64, description="memory one render worker may take beyond its start"
    )

    console_session_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="signs console session cookies; every console process needs the same "
        "(required on Kafka; embedded, one is generated and kept under the data dir)",
    )
    console_session_hours: float = Field(default=8.0, gt=0)
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="addresses or CIDRs of the reverse proxies whose X-Forwarded-For is "
        "believed (comma-separated); from any other peer the socket's address counts",
    )
    default_timezone: str = Field(
        default="UTC",
        description="the buyers' time zone when they did not say theirs (quiet hours, open hours)",
    )
    quiet_hours_start: time = Field(default=time(21), description="no message from, local time")
    quiet_hours_end: time = Field(default=time(9), description="until, local time")
    cap_per_day: int = Field(default=2, ge=0, description="messages per buyer per day")
    cap_per_week: int = Field(default=4, ge=0, description="messages per buyer per week")
    cap_per_campaign_per_week: int = Field(default=1, ge=0)
    sunset_reduce_after: int = Field(
        default=6, ge=1, description="unanswered messages after which only priority campaigns"
    )
    sunset_min_priority: int = Field(default=60, ge=0)
    sunset_stop_after: int = Field(
        default=12, ge=1, description="unanswered messages after which none at all"
    )
    cost_email: float = Field(default=0.1, ge=0, description="cost of one email")
    cost_sms: float = Field(default=3.5, ge=0, description="cost of one SMS")
    cost_push: float = Field(default=0.02, ge=0, description="cost of one push")
    response_value: float = Field(
        default=60.0, gt=0, description="what one response (a click) is worth, same currency"
    )

    scoring_interval_hours: float = Field(
        default=24.0,
        ge=0,
        description="how often the segmenter scores the base (RFM, predictions, CLV); 0: never",
    )
    scoring_horizon_days: int = Field(
        default=90, ge=1, description="expected purchases are counted over this many days"
    )
    clv_months: int = Field(default=12, ge=1, description="CLV's horizon")
    clv_monthly_discount_rate: float = Field(default=0.01, ge=0, lt=1)
    clv_margin: float = Field(
        default=0.3, ge=0, le=1, description="share of net revenue that is margin"
    )
    clv_interval: float = Field(
        default=0.9,
        ge=0,
        lt=1,
        description="level of each buyer's CLV interval (delta method on the fitted "
        "parameters); 0: no interval",
    )

    batch_size: int = Field(default=500, ge=1, le=10_000)
    poll_timeout: float = Field(default=0.5, gt=0)
    timer_interval: float = Field(default=1.0, gt=0, description="seconds between timer ticks")
    relay_interval: float = Field(default=0.05, gt=0, description="outbox relay idle wait")
    bus_retention_hours: float = Field(
        default=168.0,
        ge=0,
        description="embedded bus: hours a record every group reading its topic has "
        "committed is kept (dead-letter topics keep every record)",
    )
    drain_timeout: float = Field(
        default=30.0,
        gt=0,
        description="seconds `nudge serve` spends on SIGTERM applying what it accepted "
        "(embedded bus) before it stops; what is left is applied at the next start",
    )

    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="`nudge segmenter` and `nudge dispatcher` serve /metrics on this port; "
        "the HTTP services serve it on their own port",
    )

    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str | None) -> str | None:
        if url is None:
            return None
        # The forms most tools write name no driver: nudge's are asyncpg and aiosqlite.
        if url.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        if url.startswith("sqlite://"):
            return "sqlite+aiosqlite://" + url.split("://", 1)[1]
        if not url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError(
                "expected a PostgreSQL or SQLite URL: postgresql://user:password@host/db "
                "or sqlite:///path/to/nudge.db"
            )
        return url

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in value.replace(",", " ").split() if part]
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected an IANA time zone such as Europe/Moscow or UTC") from None
        return zone

    @field_validator("currency_rates")
    @classmethod
    def _positive_rates(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        bad = sorted(code for code, rate in rates.items() if not rate.is_finite() or rate <= 0)
        if bad:
            raise ValueError(f"a rate is a number more than 0; not so for {', '.join(bad)}")
        return rates

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        region = region.strip().upper()
        if not is_known_region(region):
            raise ValueError("expected a region with a phone numbering plan, such as RU or GB")
        return region

    @property
    def shop_currency(self) -> ShopCurrency:
        """The shop's currency and the rates ingest converts others at."""
        return ShopCurrency(self.currency, dict(self.currency_rates))

    @property
    def refund_rules(self) -> RefundRules:
        """What the segmenter accepts of a refund for an order it never saw."""
        return RefundRules(self.unseen_order_refund_cap)

    @property
    def db_url(self) -> str:
        if self.database_url is not None:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'nudge.db').resolve()}"

    def topic(self, name: str) -> str:
        """``events`` → ``nudge.events``."""
        return f"{self.topic_prefix}.{name}"

    def group(self, service: str) -> str:
        return f"{self.group_prefix}.{service}"
