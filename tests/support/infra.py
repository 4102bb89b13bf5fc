"""Reaching the real Kafka and PostgreSQL that `make test` starts (deploy/with-services.sh)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

T = TypeVar("T")

KAFKA = os.environ.get("NUDGE_TEST_KAFKA", "127.0.0.1:9092")
DATABASE_URL = os.environ.get(
    "NUDGE_TEST_DATABASE_URL", "postgresql+asyncpg://nudge:nudge@127.0.0.1:5432/nudge_test"
)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, in a thread with its own loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def answers(address: str, timeout: float = 1.0) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(_dsn(url, "postgres"))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def create_database(url: str, name: str, template: str | None = None) -> str:
    """Create database ``name`` (from ``template``); return its URL."""
    clause = f' TEMPLATE "{template}"' if template else ""
    run_sync(
        _admin(
            url,
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'CREATE DATABASE "{name}"{clause}',
        )
    )
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, name: str) -> None:
    """Drop database ``name``. ``WITH (FORCE)`` may meet a backend the test role cannot
    end (a server process working on the database as a superuser, such as a
    short-lived autovacuum worker): it is asked again until that one is gone."""
    run_sync(_drop(url, name))


async def _drop(url: str, name: str, attempts: int = 50) -> None:
    for attempt in range(attempts):
        try:
            await _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.2)  # a server process of its own; nothing to wait on
