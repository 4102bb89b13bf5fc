"""``nudge export profiles``: one JSON line per buyer, identifiers masked, in id order."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from services.cli import app
from services.tools.export import export_profiles
from shared.adapters.store.engine import open_store
from shared.adapters.store.exports import open_profile_export
from shared.adapters.store.migrate import upgrade
from shared.domain.segments import MembershipChange
from tests.conftest import T0

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    upgrade(url)
    return url


def seed(db: str, buyers: int = 0) -> dict[str, str]:
    """Anna (two orders, a segment), a buyer merged into her, and ``buyers`` more."""

    async def main() -> dict[str, str]:
        store = open_store(db)
        try:
            async with store.unit_of_work() as uow:
                anna, absorbed, *_others = (
                    await uow.profiles.resolve(
                        [
                            {"id": "c-anna", "email": "anna@shop.ru", "phone": "+79161234567"},
                            {"bank_card_token": "hmac:ab12"},
                            *({"id": f"c-{n:03d}"} for n in range(buyers)),
                        ],
                        T0,
                    )
                ).profiles
                anna.orders_count, anna.revenue_total = 2, Decimal("5000.50")
                anna.first_order_at, anna.last_order_at = T0, T0 + timedelta(days=9)
                anna.rfm_r, anna.rfm_f, anna.rfm_m, anna.rfm_segment = 5, 4, 5, "champions"
                anna.p_alive, anna.clv = 0.93, Decimal("41250.00")
                absorbed.merged_into = anna.id
                await uow.profiles.save([anna, absorbed], T0)
                await uow.memberships.apply(
                    [
                        MembershipChange("entered", segment, anna.id, T0, f"occ-{segment}")
                        for segment in ("no-order-30d", "lifecycle-repeat")
                    ]
                )
                await uow.commit()
            return {"anna": anna.id, "absorbed": absorbed.id}
        finally:
            await store.close()

    return asyncio.run(main())


def test_each_buyer_is_one_json_line_with_the_shops_id_and_masked_contacts(
    tmp_path: Path, db: str
) -> None:
    ids = seed(db)
    out = tmp_path / "profiles.jsonl"
    result = runner.invoke(app, ["export", "profiles", "--db", db, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 buyers exported" in result.stderr
    (line,) = [orjson.loads(text) for text in out.read_bytes().splitlines()]
    assert line == {
        "id": ids["anna"],
        "identifiers": {"email": ["a***@shop.ru"], "id": ["c-anna"], "phone": ["+7*******67"]},
        "traits": {},
        "stats": {
            "orders_count": 2,
            "revenue_total": "5000.50",
            "refunds_count": 0,
            "refunds_total": "0.00",
            "net_revenue": "5000.50",
            "first_order_at": T0.isoformat(),
            "last_order_at": (T0 + timedelta(days=9)).isoformat(),
            "avg_check": "2500.25",
        },
        "rhythm": {
            "median_days_between_orders": None,
            "mean_days_between_orders": None,
            "expected_next_order_at": None,
        },
        "standard_basket": [],
        "rfm": {"r": 5, "f": 4, "m": 5, "segment": "champions"},
        "lifecycle": "repeat",
        "segments": ["lifecycle-repeat", "no-order-30d"],
        "p_alive": 0.93,
        "expected_purchases": None,
        "expected_spend": None,
        "clv": "41250.00",
        "clv_share": None,
        "clv_low": None,
        "clv_high": None,
        "scored_at": None,
    }
    assert b"anna@shop.ru" not in out.read_bytes()
    assert ids["absorbed"] not in out.read_text(), "a merged-away buyer is the survivor now"


def test_the_export_goes_to_standard_output_in_id_order(db: str) -> None:
    seed(db, buyers=5)
    result = runner.invoke(app, ["export", "profiles", "--db", db])
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(text) for text in result.stdout.splitlines()]
    ids = [line["id"] for line in lines]
    assert len(ids) == 6
    assert ids == sorted(ids)
    unscored = [line for line in lines if line["stats"]["orders_count"] == 0]
    assert len(unscored) == 5
    assert all(
        (line["rfm"], line["lifecycle"], line["p_alive"], line["clv"]) == (None, None, None, None)
        for line in unscored
    ), "before the scoring job and the segmenter have seen a buyer: null"


def test_the_base_is_read_a_batch_at_a_time(db: str) -> None:
    seed(db, buyers=5)
    writes: list[bytes] = []

    async def main() -> int:
        source = open_profile_export(db)
        try:
            return await export_profiles(source, writes.append, batch=2)
        finally:
            await source.close()

    assert asyncio.run(main()) == 6
    assert [chunk.count(b"\n") for chunk in writes] == [2, 2, 2]
