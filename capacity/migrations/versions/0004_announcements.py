"""Announcements: the record of every hold, so a rebuild restores the active ones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("region_id", sa.String(16), nullable=False),
        sa.Column("facility_id", sa.String(64), nullable=False),
        sa.Column("need", sa.String(20), nullable=False),
        sa.Column("eta", sa.DateTime(timezone=True), nullable=False),
        sa.Column("urgency", sa.String(4), nullable=False),
        sa.Column("category", sa.String(20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(24), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_announcements_facility_id", "announcements", ["facility_id"])
    op.create_index("ix_announcements_expires_at", "announcements", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_announcements_expires_at", table_name="announcements")
    op.drop_index("ix_announcements_facility_id", table_name="announcements")
    op.drop_table("announcements")
