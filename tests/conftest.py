"""Fixtures every kind of test shares: clocks, databases, Kafka topics, an SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.adapters.clock import SimulatedClock
from shared.adapters.store.migrate import upgrade
from shared.settings import Settings
from tests.support import infra
from tests.support.smtp import SmtpServer

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
"""Where simulated time starts in tests: a Monday morning."""


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nudge.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database migrated once per session; each test copies it."""
    url = infra.DATABASE_URL
    if not infra.answers("127.0.0.1:5432"):
        pytest.fail("PostgreSQL is not running on 127.0.0.1:5432: run the tests with `make test`")
    name = infra.unique("nudge_tpl_")
    template_url = infra.create_database(url, name)
    upgrade(template_url)
    yield name
    infra.drop_database(url, name)


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    name = infra.unique("nudge_t_")
    url = infra.create_database(infra.DATABASE_URL, name, template=postgres_template)
    yield url
    infra.drop_database(infra.DATABASE_URL, name)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    if not infra.answers(infra.KAFKA):
        pytest.fail(f"Kafka is not running on {infra.KAFKA}: run the tests with `make test`")
    return infra.KAFKA


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, postgres_url: str, tmp_path: Path) -> Settings:
    """Production settings on topics and groups of this test's own."""
    return Settings(
        data_dir=tmp_path,
        bus="kafka",
        kafka_bootstrap=kafka_bootstrap,
        database_url=postgres_url,
        topic_prefix=infra.unique("t"),
        group_prefix=infra.unique("g"),
        publish_timeout=5.0,
        poll_timeout=0.2,
        timer_interval=1.0,
    )


@pytest.fixture
def embedded_settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, bus="memory", database_url=sqlite_url, poll_timeout=0.05)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 that keeps what it receives."""
    server = SmtpServer().start()
    yield server
    server.stop()
