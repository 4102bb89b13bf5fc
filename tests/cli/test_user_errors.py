"""Every error a user of ``nudge`` can make is one line saying what to do, exit code 2,
never a traceback (that only with ``nudge --debug``).

Seen: ``nudge ... --db`` with a database that cannot be reached, and an output file in a
folder that is not there, printed a traceback of 40 lines and more."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from services.cli import main


def _closed_port() -> int:
    """A local port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    code = exited.value.code
    return int(code) if isinstance(code, int) else 1, capsys.readouterr().err


def _one_line(said: str) -> str:
    lines = [line for line in said.splitlines() if line.strip()]
    assert len(lines) == 1, said
    assert "Traceback" not in said
    return lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["keys", "list", "--db", "mysql://shop"], "expected a PostgreSQL or SQLite URL"),
        (
            ["db", "upgrade", "--db", "postgresql://nudge:secret@127.0.0.1:{port}/nudge"],
            "cannot reach the database at postgresql+asyncpg://nudge:***@127.0.0.1:{port}/nudge",
        ),
        (
            ["keys", "list", "--db", "postgresql://nudge:secret@127.0.0.1:{port}/nudge"],
            "check --db or NUDGE_DATABASE_URL",
        ),
        (["replay", "/no/such/orders.csv"], "does not exist. (see 'nudge replay --help')"),
        (["keys", "create", "--name", "x", "--scope", "nope"], "unknown scope nope"),
        (["no-such-command"], "No such command 'no-such-command'"),
    ],
    ids=["bad-url", "db-refused", "db-refused-other-command", "missing-file", "bad-value", "typo"],
)
def test_a_user_error_is_one_line_with_exit_code_2(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    port = _closed_port()
    code, said = _run([a.format(port=port) for a in args], capsys)
    line = _one_line(said)
    assert says.format(port=port) in line
    assert "secret" not in said, "the password is never shown"
    assert code == 2


def test_a_file_that_cannot_be_written_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "no-such-folder" / "profiles.csv"
    db = f"sqlite:///{tmp_path / 'nudge.db'}"
    code, said = _run(["export", "profiles", "--db", db, "--out", str(out)], capsys)
    line = _one_line(said)
    assert str(out) in line
    assert "no such file or directory" in line
    assert code == 2


def test_a_bad_setting_in_the_environment_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NUDGE_BUS", "carrier-pigeon")
    code, said = _run(["keys", "list"], capsys)
    assert "NUDGE_BUS" in _one_line(said)
    assert code == 2


def test_unknown_names_say_where_to_find_the_real_ones(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'nudge.db'}"
    code, said = _run(["keys", "revoke", "0123456789abcdef", "--db", db], capsys)
    assert "nudge keys list" in _one_line(said)
    assert code == 2
    code, said = _run(["segments", "recompute", "nobody", "--db", db], capsys)
    assert "GET /v1/segments" in _one_line(said)
    assert code == 2


def test_with_debug_the_traceback_is_shown(capsys: pytest.CaptureFixture[str]) -> None:
    port = _closed_port()
    with pytest.raises(Exception, match="cannot reach the database"):
        main(["--debug", "db", "upgrade", "--db", f"postgresql://nudge:x@127.0.0.1:{port}/n"])
