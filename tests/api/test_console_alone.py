"""The console served alone (``nudge console``) answers every refusal it makes as a
problem, never a 500: the kinds it raises are registered when the console app is built,
with no ingest app in the process.

The problem kinds live in one registry per process, so this runs in a fresh interpreter:
in the test process, another test's ingest app would have registered them already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CONSOLE_ALONE = """
import asyncio, json, sys
from pathlib import Path

import httpx

from services.bootstrap import open_database, prepare_database
from services.console.wiring import build_console
from shared.errors import StoreUnavailable
from shared.settings import Settings


async def main() -> None:
    settings = Settings(data_dir=Path(sys.argv[1]))
    await prepare_database(settings.db_url)
    database = open_database(settings.db_url)
    app = build_console(settings, database)

    @app.get("/database-down")
    async def database_down() -> None:
        raise StoreUnavailable("database unavailable: ConnectionRefusedError")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    answers = []
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        for accept in ("application/json", "text/html"):
            response = await client.get("/database-down", headers={"accept": accept})
            answers.append([response.status_code, response.headers.get("content-type", ""),
                            response.text])
    await database.close()
    print(json.dumps(answers))


asyncio.run(main())
"""


def test_the_console_alone_answers_a_database_down_with_not_ready(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", CONSOLE_ALONE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (api_status, api_type, api_body), (page_status, page_type, page_body) = json.loads(
        done.stdout.strip().splitlines()[-1]
    )
    assert (api_status, api_type) == (503, "application/problem+json")
    assert json.loads(api_body)["type"] == "/problems/not-ready"
    assert page_status == 503
    assert page_type.startswith("text/html")
    assert "Not ready" in page_body
