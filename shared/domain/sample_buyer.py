"""The sample buyer templates are tried on: at save, and in a preview for no buyer in particular.

Apart from :mod:`shared.domain.message_templates` so that render workers, which never
need a profile, do not import the profile model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from shared.domain.profile import Profile

__all__ = ["SAMPLE_PROFILE"]

SAMPLE_PROFILE: Final = Profile(
    id="00000000-0000-4000-8000-000000000000",
    email="anna@example.com",
    phone="+79160000000",
    orders_count=3,
    revenue_total=Decimal("14970.00"),
    first_order_at=datetime(2026, 1, 10, 12, 0, tzinfo=UTC),
    last_order_at=datetime(2026, 3, 1, 18, 30, tzinfo=UTC),
)
"""A buyer to try templates on: three orders, about 5000 each."""
