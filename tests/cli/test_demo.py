"""``nudge demo``: the embedded pipeline on synthetic buyers sends real messages, keeps
holdouts, scores the base, and leaves a database and a login for the console."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from typer.testing import CliRunner

from services.cli import app
from shared.adapters.store.users import open_users

runner = CliRunner()
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def test_the_demo_sends_holds_out_and_leaves_a_console_to_log_in_to(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(
        app, ["demo", "--customers", "60", "--days", "45", "--seed", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    sent = sum(int(n) for n in re.findall(r"messages [\w.-]+ / email / sent │ (\d+)", text))
    assert sent > 0
    assert len(list((out / "email").glob("*.eml"))) == sent
    assert re.search(r"messages second-order / email / holdout │ \d+", text)
    assert re.search(r"programme win-back step 1 \(email\) sent │ +\d+", text)
    assert "customer equity" in text

    login = re.search(r"as (\S+) / (\S+)", text)
    assert login is not None
    assert (out / "nudge.db").exists()

    async def logs_in() -> bool:
        users = open_users(f"sqlite+aiosqlite:///{out / 'nudge.db'}")
        try:
            return await users.authenticate(login.group(1), login.group(2)) is not None
        finally:
            await users.close()

    assert asyncio.run(logs_in())


def test_the_same_seed_gives_the_same_demo(tmp_path: Path) -> None:
    def tables(run: str) -> str:
        result = runner.invoke(
            app,
            [
                "demo",
                "--customers",
                "40",
                "--days",
                "30",
                "--seed",
                "5",
                "--out",
                str(tmp_path / run),
            ],
        )
        assert result.exit_code == 0, result.output
        shown = result.output.split("Sent messages are under")[0]
        # Log lines carry the moment they were written: the tables are what must agree.
        return "\n".join(line for line in shown.splitlines() if not LOG_LINE.match(line))

    assert tables("one") == tables("two")
