"""profiles.scored_at indexed: the scoring loop's "when was the base last scored?"

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # Every segmenter replica asks max(scored_at) every 10 minutes: without the index,
    # a scan of the whole profiles table each time.
    op.create_index(op.f("ix_profiles_scored_at"), "profiles", ["scored_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_profiles_scored_at"), table_name="profiles")
