"""offer_redemptions: each issued promo code a purchase named, once, with the discount

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # shared/adapters/store/offers.py: the first purchase naming a code redeems it; the
    # message it was issued to says which campaign it counts for.
    op.create_table(
        "offer_redemptions",
        sa.Column("offer", sa.String(100), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("message_key", sa.String(100), nullable=False),
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("order_total", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("offer", "code", name=op.f("pk_offer_redemptions")),
    )
    with op.batch_alter_table("offer_redemptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_offer_redemptions_message_key"), ["message_key"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("offer_redemptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offer_redemptions_message_key"))
    op.drop_table("offer_redemptions")
