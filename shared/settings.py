"""Settings, from ``NUDGE_*`` environment variables (and a ``.env`` file, if present).

The defaults are the embedded default: an in-process bus and SQLite under
``NUDGE_DATA_DIR``. Production sets ``NUDGE_BUS=kafka``, ``NUDGE_KAFKA_BOOTSTRAP``
and a ``postgresql+asyncpg://`` ``NUDGE_DATABASE_URL``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NUDGE_", env_file=".env", extra="ignore")

    data_dir: Path = Path("var")
    bus: Literal["memory", "kafka"] = "memory"
    database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg://… or sqlite+aiosqlite:///…; "
        "default: SQLite under data_dir",
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_partitions: int = Field(default=3, ge=1)
    topic_prefix: str = Field(default="nudge", pattern=r"^[A-Za-z0-9._-]+$")
    group_prefix: str = Field(default="nudge", pattern=r"^[A-Za-z0-9._-]+$")
    publish_timeout: float = Field(default=5.0, gt=0, description="seconds ingest waits for acks")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)

    email: Literal["smtp", "folder"] = Field(
        default="smtp", description="smtp: send through the SMTP server; folder: .eml files"
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_sender: str = "shop@nudge.local"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_start_tls: bool | None = None

    batch_size: int = Field(default=500, ge=1, le=10_000)
    poll_timeout: float = Field(default=0.5, gt=0)
    timer_interval: float = Field(default=1.0, gt=0, description="seconds between timer ticks")
    relay_interval: float = Field(default=0.05, gt=0, description="outbox relay idle wait")

    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if url.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        if not url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("expected a postgresql+asyncpg:// or sqlite+aiosqlite:/// URL")
        return url

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
