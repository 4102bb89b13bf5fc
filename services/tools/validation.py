"""``nudge models validate`` and the console's analytics page: the models checked on the
shop's own order history (:mod:`shared.domain.validation`).

The history is read a page of buyers at a time (:class:`~shared.ports.orders.OrderHistory`)
into columns, then fitted and scored off the event loop. With no holdout end given, the
holdout runs to the last order in the history: the data's own "now", never the wall
clock's.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np

from shared.domain.validation import BuyerOrders, CannotValidate, OrderLog, ValidationReport
from shared.domain.validation import validate_models as validate_on
from shared.ports.orders import OrderHistory

__all__ = ["READ_BATCH", "moment_option", "validate_history"]

READ_BATCH = 10_000
"""Buyers per read of the history."""


async def validate_history(
    history: OrderHistory, calibration_end: datetime, holdout_end: datetime | None = None
) -> ValidationReport:
    """The validation report of the whole history; :class:`CannotValidate` says why not."""
    buyers: list[BuyerOrders] = []
    after: str | None = None
    while page := await history.page(after=after, limit=READ_BATCH):
        buyers.extend(page)
        after = page[-1].buyer_id
    orders = OrderLog.of(buyers)
    if holdout_end is None:
        if not len(orders.at) or float(np.max(orders.at)) <= calibration_end.timestamp():
            raise CannotValidate(
                "no order after the calibration end: pick an earlier one, or a holdout end"
            )
        holdout_end = datetime.fromtimestamp(float(np.max(orders.at)), UTC)
    return await asyncio.to_thread(validate_on, orders, calibration_end, holdout_end)


def moment_option(value: str) -> datetime:
    """A calibration or holdout end as written: ISO 8601, UTC where no offset is given;
    a date alone is the end of that day. Raises ``ValueError`` for anything else."""
    text = value.strip()
    moment = datetime.fromisoformat(text)
    if len(text) == len("2026-06-30"):
        moment += timedelta(days=1)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
