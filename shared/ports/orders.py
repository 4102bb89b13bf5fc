"""What model validation reads: every buyer's full order history, a page of buyers at a time.

The profile keeps only its latest order moments and no order values; the store keeps
every purchase as placed (``placed_orders``, written with the batch that applies it). ``nudge
models validate`` and the console's analytics page read it through this port, cut it
at the calibration end and check the models on what came after
(``shared/domain/validation.py``).
"""

from __future__ import annotations

from typing import Protocol

from shared.domain.validation import BuyerOrders
from shared.ports.buyers import BuyerPages

__all__ = ["OrderHistory"]


class OrderHistory(BuyerPages[BuyerOrders], Protocol):
    """Each buyer with an order, with every order's moment and total in the order placed
    (:meth:`~BuyerPages.page`); a merged buyer's orders are the survivor's."""
