"""scheduled sends: messages waiting for their moment; why each message went (or not)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduled_sends",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("profile_id", sa.String(length=36), nullable=False),
        sa.Column("occurrence_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("context", sa.JSON(), server_default=sa.text("'{}'"), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_scheduled_sends")),
    )
    with op.batch_alter_table("scheduled_sends", schema=None) as batch_op:
        batch_op.create_index("ix_scheduled_sends_due_at", ["due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_scheduled_sends_profile_id"), ["profile_id"], unique=False
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("holdout", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("decision", sa.JSON(), nullable=True))
    # Messages sent before 0008 count for the frequency caps and the sunset policy; the
    # refusals of the walking skeleton kept their reason in the status.
    op.execute("UPDATE messages SET sent_at = created_at WHERE status IN ('sending', 'sent')")
    op.execute(
        "UPDATE messages SET reason = status WHERE status IN "
        "('left_segment', 'no_address', 'unsubscribed', 'suppressed', 'render_failed')"
    )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("decision")
        batch_op.drop_column("sent_at")
        batch_op.drop_column("scheduled_for")
        batch_op.drop_column("priority")
        batch_op.drop_column("holdout")
        batch_op.drop_column("reason")
    with op.batch_alter_table("scheduled_sends", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduled_sends_profile_id"))
        batch_op.drop_index("ix_scheduled_sends_due_at")
    op.drop_table("scheduled_sends")
