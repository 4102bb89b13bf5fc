"""A shop's transactions file (CSV) read into purchase events, for ``nudge replay``.

One row is one line of a receipt: ``customer_id``, ``date`` and ``amount`` always;
``order_id``, ``sku``, ``category``, ``quantity`` and ``store_id`` when the shop has
them. Column names are matched without regard to case; other columns are ignored.

- **Orders.** The rows of one order become one purchase: the rows sharing an
  ``order_id``, or, in a file without order ids, the rows of one customer at one
  moment (``date``). The order's total is the sum of its rows' amounts, its moment
  the earliest of its rows', its store the first one named.
- **Event ids** come from the file's content, so a file replayed again publishes the
  same events and the segmenter skips them: a UUIDv5 of the order id, or of the
  customer and the moment (in UTC) for a file without order ids.
- **Dates** are ISO 8601: a date (``2026-03-01``, midnight) or a date and time
  (``2026-03-01T18:30:00``, ``2026-03-01 18:30``), with or without an offset; one
  without an offset is a moment in the given time zone.
- **Amounts** are exact decimals with at most two decimals, ``.`` or ``,`` as the
  decimal mark, never negative (a return is a refund event, not a purchase row).
- **Items.** A row with a ``sku`` (or, without one, a ``category``, then its sku) is
  an item of the order: price is the amount divided by the quantity. A quantity
  that is not a whole number (goods sold by weight) makes the row one item priced
  at its amount.
- **Rows repeated** exactly within an order are kept, each one an item (a till may
  write the same item twice); they are counted so an operator can check.
- **Bad rows** are reported with their line number, column and why, never with the
  value (it may be a card number or a phone). A card number in any cell makes the
  row bad, as at ingest. A bad row spoils its whole order.

Pure: the caller reads the file and hands over its lines.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from shared.domain.card_numbers import contains_card_number
from shared.domain.events import PurchaseEvent, validate_event

__all__ = [
    "COLUMNS",
    "EVENT_ID_NAMESPACE",
    "REQUIRED_COLUMNS",
    "BadRow",
    "Order",
    "OrderLine",
    "Transactions",
    "TransactionsError",
    "read_transactions",
]

REQUIRED_COLUMNS = ("customer_id", "date", "amount")
COLUMNS = (*REQUIRED_COLUMNS, "order_id", "sku", "category", "quantity", "store_id")
EVENT_ID_NAMESPACE = uuid.UUID("6b0c3e1e-6f1d-5a4e-9a57-6e7564676501")
"""The namespace of replayed purchases' event ids (fixed: the same file, the same ids)."""

_MAX_TEXT = 200
_MAX_QUANTITY = 100_000
_CENT = Decimal("0.01")


class TransactionsError(ValueError):
    """The file cannot be read at all (no header, a required column missing)."""


@dataclass(frozen=True)
class BadRow:
    line: int
    column: str | None
    why: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.why}"


@dataclass(frozen=True)
class OrderLine:
    line: int
    sku: str | None
    category: str | None
    quantity: int
    amount: Decimal


@dataclass
class Order:
    """The rows of one order, on their way to becoming one purchase event."""

    order_id: str | None
    customer_id: str
    at: datetime
    store_id: str | None
    first_line: int
    lines: list[OrderLine] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    @property
    def event_id(self) -> str:
        name = (
            f"order\x1f{self.order_id}"
            if self.order_id is not None
            else f"customer\x1f{self.customer_id}\x1f{self.at.astimezone(UTC).isoformat()}"
        )
        return str(uuid.uuid5(EVENT_ID_NAMESPACE, name))

    def event(self, currency: str) -> dict[str, Any]:
        """The purchase event, as the v1 contract's JSON."""
        items = [
            {
                "sku": line.sku or line.category,
                **({"category": line.category} if line.category else {}),
                "quantity": line.quantity,
                "price": str((line.amount / line.quantity).quantize(_CENT, ROUND_HALF_UP)),
            }
            for line in self.lines
            if line.sku or line.category
        ]
        return {
            "event_id": self.event_id,
            "type": "purchase",
            "occurred_at": self.at.isoformat(),
            "customer": {"id": self.customer_id},
            **({"store_id": self.store_id} if self.store_id else {}),
            "data": {
                "order_id": self.order_id or self.event_id,
                "total": str(self.total),
                "currency": currency,
                "items": items,
            },
        }


@dataclass
class Transactions:
    """What a transactions file holds: good orders in time order, and what was wrong."""

    rows: int = 0
    orders: list[Order] = field(default_factory=list)
    events: list[PurchaseEvent] = field(default_factory=list)
    """One purchase per good order, in the orders' order."""
    bad_rows: list[BadRow] = field(default_factory=list)
    skipped_orders: int = 0
    """Orders left out because a row of theirs is bad (each once, whatever its bad rows),
    or because the order's purchase breaks the contract."""
    repeated_rows: int = 0
    ignored_columns: tuple[str, ...] = ()

    @property
    def buyers(self) -> int:
        return len({order.customer_id for order in self.orders})

    @property
    def first_at(self) -> datetime | None:
        return self.orders[0].at if self.orders else None

    @property
    def last_at(self) -> datetime | None:
        return self.orders[-1].at if self.orders else None


def read_transactions(
    lines: Iterable[str],
    *,
    timezone: tzinfo = UTC,
    currency: str = "RUB",
    on_row: Callable[[], None] | None = None,
) -> Transactions:
    """Read a transactions CSV (its lines, header first) into orders and purchase events.

    ``on_row`` (no arguments) is called after each row, for a progress display.
    Raises :class:`TransactionsError` when the header lacks a required column.
    """
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise TransactionsError("the file is empty: expected a header line")
    names = [name.strip().lower() for name in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise TransactionsError(
            f"line 1: the header lacks {', '.join(missing)}; expected columns "
            f"{', '.join(REQUIRED_COLUMNS)} and optionally {', '.join(COLUMNS[3:])}"
        )
    index = {name: names.index(name) for name in COLUMNS if name in names}
    result = Transactions(ignored_columns=tuple(n for n in names if n not in COLUMNS))
    book = _OrderBook(timezone)
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        result.rows += 1
        book.add(reader.line_num, {c: cells[i] if i < len(cells) else "" for c, i in index.items()})
        if on_row is not None:
            on_row()
    result.repeated_rows = book.repeated
    result.bad_rows = list(book.bad)
    spoiled = {order_key for order_key, _ in book.bad_orders}
    # Every order a bad row spoils is skipped once, whether it had good rows or none; a bad
    # row naming no order (no order id, no readable date) is an order of its own.
    result.skipped_orders = len(spoiled) + book.orderless_bad
    for key, order in book.orders.items():
        if key in spoiled:
            continue
        event = _validated(order, currency, result.bad_rows)
        if event is None:
            result.skipped_orders += 1
        else:
            result.orders.append(order)
            result.events.append(event)
    pairs = sorted(zip(result.orders, result.events, strict=True), key=lambda p: p[0].at)
    result.orders = [order for order, _ in pairs]
    result.events = [event for _, event in pairs]
    result.bad_rows.sort(key=lambda bad: bad.line)
    return result


def _validated(order: Order, currency: str, bad: list[BadRow]) -> PurchaseEvent | None:
    """The order's event, checked against the contract (a total too large, say)."""
    try:
        event = validate_event(order.event(currency))
    except ValidationError as exc:
        first = exc.errors()[0]
        column = _COLUMN_OF.get(str(first["loc"][-1])) if first["loc"] else None
        bad.append(BadRow(order.first_line, column, f"the order's purchase: {first['msg']}"))
        return None
    assert isinstance(event, PurchaseEvent)
    return event


_COLUMN_OF = {"total": "amount", "price": "amount", "id": "customer_id", "sku": "sku"}


class _OrderBook:
    def __init__(self, timezone: tzinfo) -> None:
        self.timezone = timezone
        self.orders: dict[tuple[str, ...], Order] = {}
        self.bad: list[BadRow] = []
        self.bad_orders: set[tuple[tuple[str, ...], int]] = set()
        self.repeated = 0
        self.orderless_bad = 0
        """Bad rows that name no order: each is counted as an order skipped."""
        self._seen: set[tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = set()

    def add(self, line: int, row: Mapping[str, str]) -> None:
        problems = list(_problems(line, row))
        values = {c: v.strip() for c, v in row.items()}
        if problems:
            self.bad.extend(problems)
            key = self._key(values, None)
            if key is None:
                self.orderless_bad += 1
            else:
                self.bad_orders.add((key, line))
            return
        at = _moment(values["date"], self.timezone)
        assert at is not None
        key = self._key(values, at)
        assert key is not None
        seen = (key, tuple(sorted(row.items())))
        if seen in self._seen:
            self.repeated += 1
        self._seen.add(seen)
        order = self.orders.get(key)
        if order is None:
            order = self.orders[key] = Order(
                order_id=values.get("order_id") or None,
                customer_id=values["customer_id"],
                at=at,
                store_id=values.get("store_id") or None,
                first_line=line,
            )
        elif order.customer_id != values["customer_id"]:
            self.bad.append(
                BadRow(
                    line,
                    "customer_id",
                    f"order on line {order.first_line} belongs to another customer",
                )
            )
            self.bad_orders.add((key, line))
            return
        else:
            order.at = min(order.at, at)
            order.store_id = order.store_id or values.get("store_id") or None
        order.lines.append(
            OrderLine(
                line=line,
                sku=values.get("sku") or None,
                category=values.get("category") or None,
                quantity=_quantity(values.get("quantity", "")),
                amount=_amount(values["amount"]) or Decimal("0.00"),
            )
        )

    def _key(self, values: Mapping[str, str], at: datetime | None) -> tuple[str, ...] | None:
        if values.get("order_id"):
            return ("order", values["order_id"])
        if at is None:
            at = _moment(values.get("date", ""), self.timezone)
        if at is None or not values.get("customer_id"):
            return None
        return ("customer", values["customer_id"], at.astimezone(UTC).isoformat())


def _problems(line: int, row: Mapping[str, str]) -> Iterator[BadRow]:
    for column, raw in row.items():
        if contains_card_number(raw):
            yield BadRow(line, column, "looks like a card number; card numbers are never accepted")
            return
    for column in ("customer_id", "date", "amount"):
        if not row[column].strip():
            yield BadRow(line, column, "is empty")
    for column in ("customer_id", "order_id", "sku", "category", "store_id"):
        if len(row.get(column, "").strip()) > _MAX_TEXT:
            yield BadRow(line, column, f"longer than {_MAX_TEXT} characters")
    if row["date"].strip() and _moment(row["date"].strip(), UTC) is None:
        yield BadRow(
            line, "date", "not an ISO 8601 date or date and time (2026-03-01, 2026-03-01T18:30)"
        )
    if row["amount"].strip():
        amount = _amount(row["amount"])
        if amount is None:
            yield BadRow(line, "amount", "not an amount with at most two decimals (1234.50)")
        elif amount < 0:
            yield BadRow(line, "amount", "negative: a return is a refund, not a purchase row")
    quantity = row.get("quantity", "").strip()
    if quantity and _quantity_value(quantity) is None:
        yield BadRow(line, "quantity", f"not a number more than 0 and at most {_MAX_QUANTITY}")


def _moment(raw: str, timezone: tzinfo) -> datetime | None:
    text = raw.strip()
    try:
        if len(text) == 10:
            at = datetime.combine(date.fromisoformat(text), time())
        else:
            at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at.replace(tzinfo=timezone) if at.tzinfo is None else at


def _amount(raw: str) -> Decimal | None:
    text = raw.strip().replace(",", ".")
    try:
        value = Decimal(text)
        if not value.is_finite() or "e" in text.lower() or value != value.quantize(_CENT):
            return None
        return value.quantize(_CENT)
    except InvalidOperation:  # more digits than a Decimal holds
        return None


def _quantity_value(raw: str) -> Decimal | None:
    try:
        value = Decimal(raw.replace(",", "."))
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= 0 or value > _MAX_QUANTITY:
        return None
    return value


def _quantity(raw: str) -> int:
    """A whole quantity as it is; none, or goods sold by weight (``0.35``): one item."""
    value = _quantity_value(raw) if raw else None
    if value is None or value != value.to_integral_value():
        return 1
    return int(value)
