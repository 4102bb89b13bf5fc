"""Money that adds up: one shop currency, and refunds no larger than what was paid.

**The shop's currency.** Every amount nudge keeps (revenue, refunds, average check, CLV)
is in one currency, the shop's (:class:`ShopCurrency`). A purchase or refund in another
currency is refused at ingest (:meth:`ShopCurrency.refusal`), unless a rate to the shop's
currency is configured; then ingest converts its amounts once (:meth:`ShopCurrency.
converted`: the total or amount and each item's price, rounded half up to the cent) and
publishes the event in the shop's currency, so every consumer downstream (the profile,
campaign triggers, attribution) reads the same money.

**Refunds.** A refund takes money back from an order, so only the one who knows the
orders can judge it: the segmenter, through an :class:`OrderBook` of the balances
(:class:`OrderBalance`) of the orders a batch names. A refund is refused
(:class:`RefundRefused`) when it is above what is left of its order, or when its order is
another buyer's (a buyer merged since is the same buyer); for an order nudge never saw
(bought before nudge kept orders, or in a channel that does not post purchases), it is
accepted only up to :attr:`RefundRules.unseen_order_cap` over all the refunds of that
order, with a note. A refused refund changes nothing: the segmenter dead-letters it with
the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from shared.domain.events import AnyEvent, Item, PurchaseEvent, RefundEvent

__all__ = [
    "MAX_AMOUNT",
    "OrderBalance",
    "OrderBook",
    "RefundRefused",
    "RefundRules",
    "ShopCurrency",
]

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999999.99")
"""The largest amount an event holds (14 digits, two of them decimals)."""


@dataclass(frozen=True)
class ShopCurrency:
    """The shop's currency (ISO 4217) and the rates other currencies are converted at:
    ``rates["USD"]`` is what one US dollar is worth in the shop's currency."""

    code: str = "RUB"
    rates: Mapping[str, Decimal] = field(default_factory=dict)

    def refusal(self, event: AnyEvent) -> tuple[str, str] | None:
        """Why ``event`` cannot be taken in the shop's currency, as ``(field, detail)`` with
        the field's path under ``data`` (``currency``, ``total``), or ``None``."""
        if not isinstance(event, PurchaseEvent | RefundEvent):
            return None
        currency = event.data.currency
        if currency == self.code:
            return None
        if currency not in self.rates:
            known = ", ".join([self.code, *sorted(self.rates)])
            return (
                "currency",
                f"the shop's currency is {self.code} and no rate from {currency} is "
                f"configured (NUDGE_CURRENCY_RATES); accepted: {known}",
            )
        amount = event.data.total if isinstance(event, PurchaseEvent) else event.data.amount
        if self._convert(amount, currency) > MAX_AMOUNT:
            name = "total" if isinstance(event, PurchaseEvent) else "amount"
            return (name, f"more than {MAX_AMOUNT} {self.code} once converted from {currency}")
        return None

    def converted(self, event: AnyEvent) -> AnyEvent:
        """``event`` with its amounts in the shop's currency (as it is, when they are);
        :meth:`refusal` must have passed."""
        if not isinstance(event, PurchaseEvent | RefundEvent) or event.data.currency == self.code:
            return event
        currency = event.data.currency
        items = [self._item(item, currency) for item in event.data.items]
        changes: dict[str, object] = {"currency": self.code, "items": items}
        if isinstance(event, PurchaseEvent):
            changes["total"] = self._convert(event.data.total, currency)
        else:
            changes["amount"] = self._convert(event.data.amount, currency)
        return event.model_copy(update={"data": event.data.model_copy(update=changes)})

    def _item(self, item: Item, currency: str) -> Item:
        return item.model_copy(update={"price": self._convert(item.price, currency)})

    def _convert(self, amount: Decimal, currency: str) -> Decimal:
        return (amount * self.rates[currency]).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class OrderBalance:
    """What one order was paid and what of it came back."""

    order_id: str
    profile_id: str
    """The buyer who placed it (for an order nudge never saw, the buyer refunded first)."""
    bought: Decimal = Decimal("0.00")
    refunded: Decimal = Decimal("0.00")
    purchases: int = 0
    """Purchase events of this order: 0 for an order nudge never saw."""

    @property
    def left(self) -> Decimal:
        """What can still be refunded."""
        return self.bought - self.refunded


class RefundRefused(ValueError):
    """A refund that would take back more than was paid; the message says why."""


@dataclass(frozen=True)
class RefundRules:
    unseen_order_cap: Decimal = Decimal("0.00")
    """The most an order nudge never saw may have refunded, over all its refunds."""


@dataclass
class OrderBook:
    """The balances of the orders a batch of events names, as the batch goes on.

    ``same_buyer(a, b)`` says whether two profile ids are one buyer (the same id, or one
    merged into the other); :attr:`changed` holds every balance to write back.
    """

    balances: dict[str, OrderBalance]
    rules: RefundRules
    same_buyer: Callable[[str, str], bool]
    changed: dict[str, OrderBalance] = field(default_factory=dict)

    def take(self, event: AnyEvent, profile_id: str) -> str | None:
        """Apply a purchase or a refund of ``profile_id``'s to its order's balance; return a
        note for a refund accepted on an order nudge never saw. :class:`RefundRefused`, and
        nothing changed, for a refund that is more than its order allows."""
        if isinstance(event, PurchaseEvent):
            balance = self._balance(event.data.order_id, profile_id)
            balance.bought += event.data.total
            balance.purchases += 1
            self.changed[balance.order_id] = balance
            return None
        if not isinstance(event, RefundEvent):
            return None
        order_id, amount = event.data.order_id, event.data.amount
        known = self.balances.get(order_id)
        note = None
        if known is not None and not self.same_buyer(known.profile_id, profile_id):
            raise RefundRefused(f"refund of order {order_id!r}: the order is another buyer's")
        if known is not None and known.purchases:
            if amount > known.left:
                raise RefundRefused(
                    f"refund of {amount} for order {order_id!r}: more than the {known.left} "
                    f"left of its {known.bought}"
                )
        else:
            refunded = known.refunded if known is not None else Decimal("0.00")
            cap = self.rules.unseen_order_cap
            if refunded + amount > cap:
                raise RefundRefused(
                    f"refund of {amount} for order {order_id!r}, an order nudge never saw: "
                    f"more than the {cap} such an order may have refunded "
                    f"(NUDGE_UNSEEN_ORDER_REFUND_CAP; {refunded} refunded before)"
                )
            note = f"refund of {amount} accepted for order {order_id!r}, an order nudge never saw"
        balance = self._balance(order_id, profile_id)
        balance.refunded += amount
        self.changed[order_id] = balance
        return note

    def _balance(self, order_id: str, profile_id: str) -> OrderBalance:
        balance = self.balances.get(order_id)
        if balance is None:
            balance = self.balances[order_id] = OrderBalance(order_id, profile_id)
        return balance
