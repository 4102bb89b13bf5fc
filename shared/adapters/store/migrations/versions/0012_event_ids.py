"""event_ids: every event id ingest accepted (in its tenant), with a digest of its content

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # Ingest claims a request's ids here before publishing: the same id with another
    # digest is a 409, not an event the segmenter would drop as already processed.
    # Ids accepted before this revision are not in the table; they are known to the
    # segmenter's processed_events, as before. The tenant is the store of a store-bound
    # key's event, "" for the shop-wide keys: one store's key never sees another's ids.
    op.create_table(
        "event_ids",
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        # 4 bytes naming the digest's version (the deployment), then 16 of BLAKE2b
        sa.Column("digest", sa.LargeBinary(length=20), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "event_id", name=op.f("pk_event_ids")),
    )


def downgrade() -> None:
    op.drop_table("event_ids")
