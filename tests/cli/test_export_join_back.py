"""``nudge export profiles`` joins back to the shop's systems: the shop's customer id as it
is, every stat the customers API answers of a buyer, in JSON lines, CSV or Parquet, files
readable by their owner only; contacts unmasked only for an admin key or the database
file's owner, and logged without them."""

from __future__ import annotations

import asyncio
import csv
import io
import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from services.cli import app
from services.console.api.customers import customer_json
from services.tools.export import COLUMNS
from shared.adapters.clock import SimulatedClock
from shared.adapters.store.api_keys import open_api_keys
from shared.adapters.store.console_queries import SqlConsoleQueries
from shared.adapters.store.engine import create_engine, open_store
from shared.adapters.store.migrate import upgrade
from shared.domain.profile import Basket
from tests.conftest import T0

runner = CliRunner()
DAY = timedelta(days=1)
CONTACTS = ("olga@shop.ru", "+79161234567", "LC-0042")


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "shop.db"


@pytest.fixture
def db(db_file: Path) -> str:
    url = f"sqlite+aiosqlite:///{db_file}"
    upgrade(url)
    return url


def seed(db: str) -> str:
    """Olga: three monthly orders with the same basket, a refund, traits, scores."""

    async def main() -> str:
        store = open_store(db)
        try:
            async with store.unit_of_work() as uow:
                (olga,) = (
                    await uow.profiles.resolve(
                        [
                            {
                                "id": "c-0042",
                                "email": CONTACTS[0],
                                "phone": CONTACTS[1],
                                "loyalty_card": CONTACTS[2],
                            }
                        ],
                        T0,
                    )
                ).profiles
                moments = [T0, T0 + 30 * DAY, T0 + 60 * DAY]
                olga.orders_count, olga.revenue_total = 3, Decimal("4500.00")
                olga.refunds_count, olga.refunds_total = 1, Decimal("500.00")
                olga.first_order_at, olga.last_order_at = moments[0], moments[-1]
                olga.order_moments = moments
                olga.baskets = [Basket(at, {"cat-food": 2}) for at in moments]
                olga.traits = {"region": "CFD", "has_kids": True, "note": "mail olga@shop.ru"}
                olga.rfm_r, olga.rfm_f, olga.rfm_m, olga.rfm_segment = 4, 3, 4, "loyal"
                olga.p_alive, olga.expected_purchases = 0.81, 2.5
                olga.expected_spend, olga.clv = Decimal("1333.33"), Decimal("9100.10")
                olga.clv_share, olga.scored_at = 0.1, T0 + 61 * DAY
                olga.clv_low, olga.clv_high = Decimal("7800.00"), Decimal("10400.50")
                await uow.profiles.save([olga], T0)
                await uow.commit()
            return olga.id
        finally:
            await store.close()

    return asyncio.run(main())


def api_answer(db: str, profile_id: str) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        engine = create_engine(db)
        queries = SqlConsoleQueries(engine)
        try:
            profile = await queries.find_buyer(profile_id)
            assert profile is not None
            return await customer_json(
                queries, profile, clock=SimulatedClock(T0 + 62 * DAY), unmasked=False
            )
        finally:
            await engine.dispose()

    return asyncio.run(main())


def export(db: str, *args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["export", "profiles", "--db", db, *args], env=env)


def test_every_stat_of_the_customers_api_is_in_the_export(db: str) -> None:
    olga = seed(db)
    result = export(db)
    assert result.exit_code == 0, result.output
    (line,) = [orjson.loads(text) for text in result.stdout.splitlines()]
    answer = api_answer(db, olga)

    orders, predictions = answer["orders"], answer["predictions"]
    assert line["stats"] == {
        "orders_count": orders["count"],
        **{
            name: orders[name]
            for name in (
                "revenue_total",
                "refunds_count",
                "refunds_total",
                "avg_check",
                "first_order_at",
                "last_order_at",
            )
        },
        "net_revenue": "4000.00",
    }
    assert line["rhythm"]["median_days_between_orders"] == orders["median_days_between_orders"]
    assert line["rhythm"]["mean_days_between_orders"] == 30.0
    assert line["rhythm"]["expected_next_order_at"] == predictions["expected_next_order_at"]
    assert (
        line["standard_basket"] == answer["standard_basket"] == [{"sku": "cat-food", "quantity": 2}]
    )
    assert line["traits"] == answer["traits"]
    assert line["traits"]["note"] == "mail o***@shop.ru", "a contact inside a trait is masked"
    assert line["rfm"] == predictions["rfm"]
    for name in (
        "p_alive",
        "expected_purchases",
        "expected_spend",
        "clv",
        "clv_share",
        "scored_at",
    ):
        assert line[name] == predictions[name], name
    assert predictions["clv_interval"] == {"low": line["clv_low"], "high": line["clv_high"]}


def test_the_shops_id_joins_back_and_every_contact_is_masked(db: str) -> None:
    seed(db)
    result = export(db)
    assert result.exit_code == 0, result.output
    (line,) = [orjson.loads(text) for text in result.stdout.splitlines()]
    assert line["identifiers"] == {
        "email": ["o***@shop.ru"],
        "id": ["c-0042"],
        "loyalty_card": ["L*****2"],
        "phone": ["+7*******67"],
    }
    assert not any(contact in result.stdout for contact in CONTACTS)


def test_the_database_files_owner_may_export_unmasked_and_it_is_logged(db: str) -> None:
    seed(db)
    result = export(db, "--unmasked")
    assert result.exit_code == 0, result.output
    (line,) = [orjson.loads(text) for text in result.stdout.splitlines()]
    assert line["identifiers"]["email"] == [CONTACTS[0]]
    assert line["traits"]["note"] == "mail olga@shop.ru"
    assert "profiles exported unmasked" in result.stderr
    assert "owner of the database file" in result.stderr
    assert not any(contact in result.stderr for contact in CONTACTS), "the log names no one"


def test_anyone_else_needs_an_admin_key_to_export_unmasked(
    tmp_path: Path, db: str, db_file: Path
) -> None:
    seed(db)
    os.chown(db_file, os.geteuid() + 4242, -1)  # the file is another user's now
    out = tmp_path / "profiles.jsonl"

    refused = export(db, "--unmasked", "--out", str(out))
    assert refused.exit_code == 2
    assert "admin scope" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert not out.exists()

    async def keys() -> tuple[str, str]:
        api_keys = open_api_keys(db)
        try:
            _, admin = await api_keys.create("analyst", ["admin"])
            _, writer = await api_keys.create("backend", ["events:write"])
            return admin, writer
        finally:
            await api_keys.close()

    admin, writer = asyncio.run(keys())
    assert export(db, "--unmasked", env={"NUDGE_API_KEY": writer}).exit_code == 2
    allowed = export(db, "--unmasked", "--out", str(out), env={"NUDGE_API_KEY": admin})
    assert allowed.exit_code == 0, allowed.output
    assert CONTACTS[1] in out.read_text()
    assert f"admin key {admin.split('_')[1]}" in allowed.stderr
    assert admin not in allowed.stderr


def test_csv_has_one_column_per_field_and_is_written_0600(tmp_path: Path, db: str) -> None:
    olga = seed(db)
    out = tmp_path / "profiles.csv"
    out.write_text("an older export")
    out.chmod(0o644)
    result = export(db, "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    header, *rows = list(csv.reader(io.StringIO(out.read_text())))
    assert header == [name for name, _ in COLUMNS]
    (row,) = [dict(zip(header, r, strict=True)) for r in rows]
    assert row["id"] == olga
    assert orjson.loads(row["identifiers.id"]) == ["c-0042"]
    assert (row["stats.net_revenue"], row["clv"]) == ("4000.00", "9100.10")
    assert row["rfm.segment"] == "loyal"
    assert orjson.loads(row["standard_basket"]) == [{"sku": "cat-food", "quantity": 2}]


def test_parquet_keeps_money_exact_and_moments_in_utc(tmp_path: Path, db: str) -> None:
    seed(db)
    out = tmp_path / "profiles.parquet"
    result = export(db, "--format", "parquet", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    table = pq.read_table(out)
    assert table.column_names == [name for name, _ in COLUMNS]
    (row,) = table.to_pylist()
    assert row["identifiers.id"] == ["c-0042"]
    assert row["stats.net_revenue"] == Decimal("4000.00")
    assert row["stats.first_order_at"] == T0
    assert row["identifiers.email"] == ["o***@shop.ru"]


def test_parquet_needs_a_file(db: str) -> None:
    result = export(db, "--format", "parquet")
    assert result.exit_code == 2
    assert "--out" in result.stderr
