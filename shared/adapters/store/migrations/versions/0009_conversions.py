"""conversions: purchases attributed to campaign messages, held-out ones alike; what
delivery webhooks said of each message

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversions",
        sa.Column("message_key", sa.String(length=100), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("profile_id", sa.String(length=36), nullable=False),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_key", "order_id", name=op.f("pk_conversions")),
    )
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversions_campaign"), ["campaign"], unique=False)
    op.create_table(
        "message_responses",
        sa.Column("message_key", sa.String(length=100), nullable=False),
        sa.Column("response", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_key", "response", name=op.f("pk_message_responses")),
    )


def downgrade() -> None:
    op.drop_table("message_responses")
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversions_campaign"))
    op.drop_table("conversions")
