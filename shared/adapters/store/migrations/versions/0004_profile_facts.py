"""profile facts: refunds, traits, consents, custom events, engagement, suppressions;
every profile known by its own id

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_FACTS = ("traits", "consents", "tracked", "engagement", "suppressions")


def upgrade() -> None:
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("refunds_count", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("refunds_total", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
        for name in _FACTS:
            batch_op.add_column(
                sa.Column(name, sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
            )
    # A profile is known by its own id too (an unsubscribe link names it), and that
    # identifier follows merges like any other: a merged profile's id names the end
    # of its chain of merges, the buyer as they are now.
    op.execute(
        """
        WITH RECURSIVE chain (origin, current) AS (
            SELECT id, id FROM profiles
            UNION ALL
            SELECT chain.origin, profiles.merged_into
            FROM chain JOIN profiles ON profiles.id = chain.current
            WHERE profiles.merged_into IS NOT NULL
        )
        INSERT INTO identifiers (kind, value, profile_id)
        SELECT 'profile_id', chain.origin, chain.current
        FROM chain JOIN profiles ON profiles.id = chain.current
        WHERE profiles.merged_into IS NULL
        """
    )


def downgrade() -> None:
    op.execute("DELETE FROM identifiers WHERE kind = 'profile_id'")
    with op.batch_alter_table("profiles", schema=None) as batch_op:
        for name in reversed(_FACTS):
            batch_op.drop_column(name)
        batch_op.drop_column("refunds_total")
        batch_op.drop_column("refunds_count")
