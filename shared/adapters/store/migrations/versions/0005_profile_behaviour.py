"""profile behaviour: order rhythm, baskets, purchases per category/SKU/store, custom
events per day, opens by local hour; the scoring job's RFM, prediction and CLV scores

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_LISTS = ("order_moments", "baskets")
_MAPS = ("categories", "skus", "stores", "tracked_days", "open_hours")
_SCORES: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("rfm_r", sa.SmallInteger()),
    ("rfm_f", sa.SmallInteger()),
    ("rfm_m", sa.SmallInteger()),
    ("rfm_segment", sa.String(length=40)),
    ("p_alive", sa.Float()),
    ("expected_purchases", sa.Float()),
    ("expected_spend", sa.BigInteger()),  # money in cents, as revenue_total
    ("clv", sa.BigInteger()),
    ("clv_share", sa.Float()),
    ("scored_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    # Plain-string defaults let SQLite add the columns in place (ALTER TABLE ADD COLUMN)
    # rather than copy the table, which the identifiers' foreign key would refuse.
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        for name in _LISTS:
            batch_op.add_column(sa.Column(name, sa.JSON(), server_default="[]", nullable=False))
        for name in _MAPS:
            batch_op.add_column(sa.Column(name, sa.JSON(), server_default="{}", nullable=False))
        for name, type_ in _SCORES:
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        for name, _ in reversed(_SCORES):
            batch_op.drop_column(name)
        for name in reversed((*_LISTS, *_MAPS)):
            batch_op.drop_column(name)
