"""profiles.clv_low, clv_high: the interval of each buyer's CLV

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # Money in cents, as clv; NULL until the next scoring run (and under a fallback model).
    with op.batch_alter_table("profiles") as batch:
        batch.add_column(sa.Column("clv_low", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("clv_high", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("profiles") as batch:
        batch.drop_column("clv_high")
        batch.drop_column("clv_low")
