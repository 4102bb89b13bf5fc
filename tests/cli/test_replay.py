"""``nudge replay`` on the embedded stack (SQLite in a temporary folder), checked the way an
operator would: with ``nudge export profiles`` against sums taken straight from the CSV."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
from typer.testing import CliRunner

from services.cli import app
from shared.adapters.store.api_keys import open_api_keys
from tests.support.transactions import (
    START,
    as_key,
    exported_figures,
    figures_of,
    synthetic_rows,
    write_csv,
)

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings of this test's own; structlog pointed back at a live stream after."""
    monkeypatch.setenv("NUDGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("NUDGE_BUS", raising=False)
    monkeypatch.delenv("NUDGE_DATABASE_URL", raising=False)
    yield
    structlog.reset_defaults()


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"


@pytest.fixture
def rows() -> list[dict[str, Any]]:
    return synthetic_rows(buyers=40, days=90, seed=7, start=START)


def export(db: str) -> list[dict[str, Any]]:
    result = runner.invoke(app, ["export", "profiles", "--db", db])
    assert result.exit_code == 0, result.output
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def replay(*args: str) -> Any:
    result = runner.invoke(app, ["replay", *args])
    return result


def test_export_after_replay_equals_the_sums_taken_from_the_csv(
    tmp_path: Path, db: str, rows: list[dict[str, Any]]
) -> None:
    csv_file = write_csv(tmp_path / "sales.csv", rows)
    result = replay(str(csv_file), "--embedded", "--db", db)
    assert result.exit_code == 0, result.output
    expected = figures_of(rows)
    assert f"{len(expected)}" in result.stdout
    assert "events published" in result.stdout

    lines = export(db)
    assert len(lines) == len(expected)
    assert Counter(as_key(exported_figures(line)) for line in lines) == Counter(
        as_key(f) for f in expected.values()
    )
    joined = sorted(v for line in lines for v in line["identifiers"]["id"])
    assert joined == sorted(expected), "the shop's customer ids, as they are: they join back"
    assert not any(c in result.stdout for c in expected), "no customer id on the screen"


def test_replaying_the_same_file_twice_changes_nothing(
    tmp_path: Path, db: str, rows: list[dict[str, Any]]
) -> None:
    csv_file = write_csv(tmp_path / "sales.csv", rows)
    as_of = ["--as-of", "2026-06-01"]
    assert replay(str(csv_file), "--embedded", "--db", db, *as_of).exit_code == 0
    first = export(db)
    again = replay(str(csv_file), "--embedded", "--db", db, *as_of)
    assert again.exit_code == 0, again.output
    assert export(db) == first


def test_a_file_whose_order_comes_again_with_another_amount_is_refused(
    tmp_path: Path, db: str
) -> None:
    header = "customer_id,date,amount,order_id\n"
    first = tmp_path / "sales.csv"
    first.write_text(header + "c1,2026-03-01,10.00,A\nc2,2026-03-01,5.00,B\n")
    assert replay(str(first), "--embedded", "--db", db).exit_code == 0
    before = export(db)
    corrected = tmp_path / "corrected.csv"
    corrected.write_text(header + "c1,2026-03-01,12.00,A\nc2,2026-03-01,5.00,B\n")

    result = replay(str(corrected), "--embedded", "--db", db)

    assert result.exit_code == 1
    assert "published before with other content" in result.stderr
    assert export(db) == before


def test_timers_run_up_to_as_of_so_time_based_segments_fire(tmp_path: Path, db: str) -> None:
    csv_file = write_csv(
        tmp_path / "sales.csv",
        [
            {"customer_id": "early-buyer", "date": "2026-01-10", "amount": "100", "order_id": "o1"},
            {"customer_id": "late-buyer", "date": "2026-03-01", "amount": "100", "order_id": "o2"},
        ],
    )
    result = replay(str(csv_file), "--embedded", "--db", db, "--as-of", "2026-03-05")
    assert result.exit_code == 0, result.output
    assert "2026-03-05" in result.stdout
    segments = {line["identifiers"]["id"][0]: line["segments"] for line in export(db)}
    assert "no-order-30d" in segments["early-buyer"], "54 days without an order by --as-of"
    assert "no-order-30d" not in segments["late-buyer"], "4 days since the last order"
    # The base is scored at the end, as of --as-of: not at the wall clock.
    assert "base scored as of" in result.stdout
    assert "empirical rate (fallback)" in result.stdout, "two buyers cannot fit BG/NBD"
    scored = {line["identifiers"]["id"][0]: line for line in export(db)}
    assert scored["early-buyer"]["scored_at"].startswith("2026-03-05")
    assert scored["late-buyer"]["p_alive"] is not None


def test_a_bad_row_refuses_the_file_and_publishes_nothing(tmp_path: Path, db: str) -> None:
    csv_file = tmp_path / "sales.csv"
    csv_file.write_text(
        "customer_id,date,amount,order_id\n"
        "c1,2026-03-01,10.00,A\n"
        "c2,2026-03-01,ten,B\n"
        "c3,2026-03-01,5.00,C\n"
    )
    result = replay(str(csv_file), "--embedded", "--db", db)
    assert result.exit_code == 1
    assert "line 3, column amount: not an amount" in result.stderr
    assert "nothing was published" in result.stderr
    assert export(db) == []

    skipped = replay(str(csv_file), "--embedded", "--db", db, "--skip-bad")
    assert skipped.exit_code == 0, skipped.output
    assert "line 3, column amount" in skipped.stderr
    assert sorted(line["stats"]["revenue_total"] for line in export(db)) == ["10.00", "5.00"]


def test_as_of_is_refused_on_the_production_stack(tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path / "sales.csv", [])
    result = replay(str(csv_file), "--as-of", "2026-03-05")
    assert result.exit_code == 2
    assert "--as-of needs --embedded" in result.stderr


def test_a_lone_replay_on_the_in_process_bus_is_refused(tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path / "sales.csv", [])
    result = replay(str(csv_file))
    assert result.exit_code == 2
    assert "NUDGE_BUS=kafka" in result.output


def test_a_production_replay_without_a_database_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the ids a production replay publishes are claimed in the production database's
    # index, as ingest claims them: without one, nothing is published (no broker needed)
    monkeypatch.setenv("NUDGE_BUS", "kafka")
    monkeypatch.setenv("NUDGE_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    csv_file = tmp_path / "sales.csv"
    csv_file.write_text("customer_id,date,amount,order_id\nc1,2026-03-01,10.00,A\n")

    result = replay(str(csv_file))

    assert result.exit_code == 1
    assert " ".join(result.stderr.split()) == (  # one message (wrapped at the terminal's width)
        "a production replay claims its event ids in the database ingest uses: set "
        "NUDGE_DATABASE_URL; nothing was published"
    )


def active_pipeline_keys(db: str) -> list[str]:
    async def main() -> list[str]:
        keys = open_api_keys(db)
        try:
            return [k.id for k in await keys.list() if k.revoked_at is None]
        finally:
            await keys.close()

    return asyncio.run(main())


def test_embedded_replays_leave_no_events_write_key_behind(tmp_path: Path, db: str) -> None:
    csv_file = tmp_path / "sales.csv"
    csv_file.write_text("customer_id,date,amount,order_id\nc1,2026-03-01,10.00,A\n")
    for _ in range(3):
        assert replay(str(csv_file), "--embedded", "--db", db).exit_code == 0
    assert active_pipeline_keys(db) == []


def test_the_summary_counts_an_order_whose_only_row_is_bad(tmp_path: Path, db: str) -> None:
    csv_file = tmp_path / "sales.csv"
    csv_file.write_text(
        "customer_id,date,amount,order_id\nc1,2026-03-01,10.00,A\nc2,2026-03-01,ten,B\n"
    )
    result = replay(str(csv_file), "--embedded", "--db", db, "--skip-bad")
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.stdout.splitlines() if "orders skipped for a bad row" in x]
    assert line.split()[-1] == "1"


def test_a_file_in_another_currency_is_refused_without_a_rate_and_converted_with_one(
    tmp_path: Path, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv_file = tmp_path / "sales.csv"
    csv_file.write_text("customer_id,date,amount,order_id\nc1,2026-03-01,10.00,A\n")

    refused = replay(str(csv_file), "--embedded", "--db", db, "--currency", "usd")
    assert refused.exit_code == 1
    assert "no rate from USD" in refused.stderr
    assert export(db) == []

    monkeypatch.setenv("NUDGE_CURRENCY_RATES", '{"USD": "90"}')
    converted = replay(str(csv_file), "--embedded", "--db", db, "--currency", "usd")
    assert converted.exit_code == 0, converted.output
    assert [line["stats"]["revenue_total"] for line in export(db)] == ["900.00"]
