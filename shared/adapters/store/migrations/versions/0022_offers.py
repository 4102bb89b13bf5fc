"""Offers (versioned like campaigns) and their promo codes, each issued to one message.

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0020"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "offers",
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_offers")),
    )
    # shared/adapters/store/offers.py: a pool's codes are uploaded ``free``; a message
    # takes one (``issued``, naming it) in the transaction that writes its row. A
    # generated code is written ``issued``. One code per message: the unique index.
    op.create_table(
        "offer_codes",
        sa.Column("offer", sa.String(100), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("message_key", sa.String(100)),
        sa.Column("profile_id", sa.String(36)),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("offer", "code", name=op.f("pk_offer_codes")),
    )
    with op.batch_alter_table("offer_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_offer_codes_offer_state"), ["offer", "state"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_offer_codes_message_key"), ["message_key"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("offer_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offer_codes_message_key"))
        batch_op.drop_index(batch_op.f("ix_offer_codes_offer_state"))
    op.drop_table("offer_codes")
    op.drop_table("offers")
