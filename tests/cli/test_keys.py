"""``nudge keys``: create, list and revoke API keys against a temporary SQLite database."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from shared.adapters.store.api_keys import open_api_keys
from shared.ports.api_keys import ApiKey

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A database the commands migrate themselves, as SQLite is migrated at start."""
    return f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"


def authenticate(db: str, secret: str) -> ApiKey | None:
    async def main() -> ApiKey | None:
        keys = open_api_keys(db)
        try:
            return await keys.authenticate(secret)
        finally:
            await keys.close()

    return asyncio.run(main())


def test_create_prints_the_key_once_and_it_works(db: str) -> None:
    result = runner.invoke(
        app,
        [
            "keys",
            "create",
            "--name",
            "till msk",
            "--scope",
            "events:write",
            "--store",
            "msk-01",
            "--store",
            "msk-02",
            "--db",
            db,
        ],
    )
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("nk_"), "stdout is the key alone, for KEY=$(nudge keys create ...)"
    assert "will not be shown again" in result.stderr
    key = authenticate(db, secret)
    assert key is not None
    assert key.name == "till msk"
    assert key.scopes == frozenset({"events:write"})
    assert key.stores == frozenset({"msk-01", "msk-02"})


def test_list_shows_every_key_but_never_a_secret_and_revoke_ends_a_key(db: str) -> None:
    created = runner.invoke(
        app, ["keys", "create", "--name", "ops", "--scope", "admin", "--db", db]
    )
    secret = created.stdout.strip()
    key_id = secret.split("_")[1]

    listed = runner.invoke(app, ["keys", "list", "--db", db])
    assert listed.exit_code == 0, listed.output
    assert key_id in listed.stdout
    assert "ops" in listed.stdout
    assert "admin" in listed.stdout
    assert secret.split("_", 2)[2] not in listed.output

    revoked = runner.invoke(app, ["keys", "revoke", key_id, "--db", db])
    assert revoked.exit_code == 0, revoked.output
    assert authenticate(db, secret) is None
    after = runner.invoke(app, ["keys", "list", "--db", db]).stdout
    (row,) = [line for line in after.splitlines() if key_id in line]
    assert len(re.findall(r"\d{4}-\d{2}-\d{2}", row)) == 2, "created, then revoked"


def test_revoking_an_unknown_key_fails(db: str) -> None:
    result = runner.invoke(app, ["keys", "revoke", "0123456789abcdef", "--db", db])
    assert result.exit_code == 2
    assert "no API key" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--name", "shop", "--scope", "events:read"],
        ["--name", "shop"],
        ["--scope", "events:write"],
        ["--name", " ", "--scope", "events:write"],
    ],
    ids=["unknown-scope", "no-scope", "no-name", "blank-name"],
)
def test_create_refuses_a_bad_key(db: str, args: list[str]) -> None:
    result = runner.invoke(app, ["keys", "create", *args, "--db", db])
    assert result.exit_code == 2
    assert "nk_" not in result.stdout


def test_the_database_comes_from_the_settings(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_DATABASE_URL", db)
    secret = runner.invoke(
        app, ["keys", "create", "--name", "shop", "--scope", "events:write"]
    ).stdout.strip()
    assert authenticate(db, secret) is not None
