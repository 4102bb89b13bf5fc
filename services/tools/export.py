"""``nudge export profiles``: every buyer as a line of JSON, a CSV row or a Parquet row,
streamed in id order.

A line holds the buyer's id, identifiers, traits, order stats (net revenue and refunds
too), rhythm (median and mean days between orders, the expected next order), standard
basket, RFM scores, lifecycle stage, segments and predictions (probability alive,
expected purchases and spend, CLV, its share): what the customers API answers of a buyer.
The shop's own customer id (the ``id`` identifier) is written as it is, so every line
joins back to the shop's systems; the contact identifiers (email, phone, loyalty card,
app install id, bank card token hash) are masked as in logs (``+7*******67``,
``a***@shop.ru``), and so are contacts inside traits, unless the export is ``unmasked``.

The scores are the scoring job's latest (``null`` before its first run over the buyer);
the lifecycle stage is the segmenter's, from the buyer's ``lifecycle-<stage>`` segment.
JSON lines and CSV write money as a string with two decimals (exact, as in the events) and
moments as ISO 8601 in UTC; Parquet as ``decimal128(14, 2)`` and UTC timestamps. CSV and
Parquet have one column per field (:data:`COLUMNS`, dotted: ``stats.net_revenue``);
a CSV cell holding a list or an object (identifiers, traits, segments, the standard
basket) holds it as JSON. The base is read a batch at a time
(:class:`~shared.ports.exports.ProfileExport`), never whole.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

import orjson

from shared.domain.events import IDENTIFIER_STRENGTH
from shared.domain.lifecycle import STAGES
from shared.domain.masking import mask_email, mask_identifier, mask_phone, mask_traits
from shared.ports.exports import ExportedProfile, ProfileExport

__all__ = [
    "BATCH",
    "COLUMNS",
    "FORMATS",
    "SHOPS_KEY",
    "Format",
    "export_profiles",
    "profile_line",
]

BATCH = 1000
"""Buyers per read: one short transaction each."""

LIFECYCLE_PREFIX = "lifecycle-"
"""Lifecycle stages are segments like any other: ``lifecycle-new``, ``lifecycle-loyal``..."""

SHOPS_KEY = "id"
"""The identifier that is the shop's own key of a buyer: never masked."""

Format = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "parquet")

_MASKS: dict[str, Callable[[str], str]] = {"email": mask_email, "phone": mask_phone}
_KINDS = tuple(kind for kind in IDENTIFIER_STRENGTH if kind != "profile_id")


def _masked(kind: str, value: str) -> str:
    return value if kind == SHOPS_KEY else _MASKS.get(kind, mask_identifier)(value)


def _typed_line(exported: ExportedProfile, *, unmasked: bool) -> dict[str, Any]:
    """One buyer as the export writes it, with money as :class:`Decimal` and moments as
    :class:`datetime` (each format writes them its way)."""
    p = exported.profile
    return {
        "id": p.id,
        "identifiers": {
            kind: [value if unmasked else _masked(kind, value) for value in values]
            for kind, values in exported.identifiers.items()
        },
        "traits": dict(p.traits) if unmasked else mask_traits(p.traits),
        "stats": {
            "orders_count": p.orders_count,
            "revenue_total": p.revenue_total,
            "refunds_count": p.refunds_count,
            "refunds_total": p.refunds_total,
            "net_revenue": p.net_revenue,
            "first_order_at": p.first_order_at,
            "last_order_at": p.last_order_at,
            "avg_check": p.avg_check,
        },
        "rhythm": {
            "median_days_between_orders": p.median_days_between_orders,
            "mean_days_between_orders": p.mean_days_between_orders,
            "expected_next_order_at": p.expected_next_order_at,
        },
        "standard_basket": [{"sku": sku, "quantity": q} for sku, q in p.standard_basket],
        "rfm": None
        if p.rfm_r is None or p.rfm_f is None or p.rfm_m is None
        else {"r": p.rfm_r, "f": p.rfm_f, "m": p.rfm_m, "segment": p.rfm_segment},
        "lifecycle": _lifecycle(exported),
        "segments": sorted(exported.segments),
        "p_alive": p.p_alive,
        "expected_purchases": p.expected_purchases,
        "expected_spend": p.expected_spend,
        "clv": p.clv,
        "clv_share": p.clv_share,
        "clv_low": p.clv_low,
        "clv_high": p.clv_high,
        "scored_at": p.scored_at,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def profile_line(exported: ExportedProfile, *, unmasked: bool = False) -> dict[str, Any]:
    """One buyer as a JSON line holds it."""
    line: dict[str, Any] = _jsonable(_typed_line(exported, unmasked=unmasked))
    return line


def _lifecycle(exported: ExportedProfile) -> str | None:
    """The stage the segmenter last put the buyer in (its ``lifecycle-<stage>`` segment,
    under the deployment's thresholds); ``None`` for a buyer not evaluated yet."""
    stages = [key.removeprefix(LIFECYCLE_PREFIX) for key in exported.segments]
    return next((s for s in STAGES if s in stages), None)


# --- the flat formats: CSV and Parquet ----------------------------------------------

Kind = Literal["text", "int", "float", "money", "moment", "texts", "json", "basket"]

COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("id", "text"),
    *((f"identifiers.{kind}", "texts") for kind in _KINDS),
    ("traits", "json"),
    ("stats.orders_count", "int"),
    ("stats.revenue_total", "money"),
    ("stats.refunds_count", "int"),
    ("stats.refunds_total", "money"),
    ("stats.net_revenue", "money"),
    ("stats.first_order_at", "moment"),
    ("stats.last_order_at", "moment"),
    ("stats.avg_check", "money"),
    ("rhythm.median_days_between_orders", "float"),
    ("rhythm.mean_days_between_orders", "float"),
    ("rhythm.expected_next_order_at", "moment"),
    ("standard_basket", "basket"),
    ("rfm.r", "int"),
    ("rfm.f", "int"),
    ("rfm.m", "int"),
    ("rfm.segment", "text"),
    ("lifecycle", "text"),
    ("segments", "texts"),
    ("p_alive", "float"),
    ("expected_purchases", "float"),
    ("expected_spend", "money"),
    ("clv", "money"),
    ("clv_share", "float"),
    ("clv_low", "money"),
    ("clv_high", "money"),
    ("scored_at", "moment"),
)
"""The columns of a CSV or Parquet export, in order, with what each holds."""


def _flat(line: dict[str, Any]) -> dict[str, Any]:
    """``line`` by dotted column name (a missing identifier kind: an empty list)."""
    row: dict[str, Any] = {}
    for name, kind in COLUMNS:
        value: Any = line
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        row[name] = [] if value is None and kind == "texts" else value
    return row


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return orjson.dumps(_jsonable(value)).decode()
    return str(_jsonable(value))


class _Sink(Protocol):
    def add(self, lines: Sequence[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


class _JsonLines:
    def __init__(self, write: Callable[[bytes], object]) -> None:
        self.write = write

    def add(self, lines: Sequence[dict[str, Any]]) -> None:
        self.write(b"".join(orjson.dumps(_jsonable(line)) + b"\n" for line in lines))

    def close(self) -> None:
        return None


class _Csv:
    def __init__(self, write: Callable[[bytes], object]) -> None:
        self.write = write
        self._rows([[name for name, _ in COLUMNS]])

    def _rows(self, rows: list[list[str]]) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        self.write(text.getvalue().encode())

    def add(self, lines: Sequence[dict[str, Any]]) -> None:
        self._rows([[_cell(value) for value in _flat(line).values()] for line in lines])

    def close(self) -> None:
        return None


class _Through(io.RawIOBase):
    """A write-only binary stream handing each write to ``write`` (what Parquet writes to)."""

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self._write = write
        self._at = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._write(chunk)
        self._at += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._at


class _Parquet:
    """One row group a batch, in a schema of :data:`COLUMNS`' types."""

    def __init__(self, write: Callable[[bytes], object]) -> None:
        import pyarrow as pa  # noqa: PLC0415 - only a Parquet export needs it
        import pyarrow.parquet as pq  # noqa: PLC0415

        self._pa = pa
        basket = pa.list_(pa.struct([("sku", pa.string()), ("quantity", pa.int64())]))
        types = {
            "text": pa.string(),
            "int": pa.int64(),
            "float": pa.float64(),
            "money": pa.decimal128(14, 2),
            "moment": pa.timestamp("us", tz="UTC"),
            "texts": pa.list_(pa.string()),
            "json": pa.string(),
            "basket": basket,
        }
        self._schema = pa.schema([(name, types[kind]) for name, kind in COLUMNS])
        self._writer = pq.ParquetWriter(_Through(write), self._schema)

    def add(self, lines: Sequence[dict[str, Any]]) -> None:
        rows = [_flat(line) for line in lines]
        for row in rows:
            row["traits"] = orjson.dumps(row["traits"]).decode()
        self._writer.write_table(self._pa.Table.from_pylist(rows, schema=self._schema))

    def close(self) -> None:
        self._writer.close()


_SINKS: dict[Format, Callable[[Callable[[bytes], object]], _Sink]] = {
    "jsonl": _JsonLines,
    "csv": _Csv,
    "parquet": _Parquet,
}


async def export_profiles(
    source: ProfileExport,
    write: Callable[[bytes], object],
    *,
    batch: int = BATCH,
    on_batch: Callable[[int], None] | None = None,
    unmasked: bool = False,
    form: Format = "jsonl",
) -> int:
    """Write every buyer of ``source`` through ``write`` in ``form`` (a batch of buyers a
    call, the end of a Parquet file last); return how many. ``unmasked``: the contact
    identifiers (and contacts in traits) as they are."""
    sink = _SINKS[form](write)
    written = 0
    after: str | None = None
    while profiles := await source.page(after=after, limit=batch):
        sink.add([_typed_line(p, unmasked=unmasked) for p in profiles])
        written += len(profiles)
        after = profiles[-1].profile.id
        if on_batch is not None:
            on_batch(len(profiles))
    sink.close()
    return written
