"""Imported facilities (GP posts, care homes, rehab centres, mental-health clinics, more hospitals).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "facilities",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("city", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("region_id", sa.String(16), nullable=False),
        sa.Column("reporting_interval_s", sa.Integer(), nullable=True),
        sa.Column("units", sa.String(300), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("phone", sa.String(40), nullable=False),
        sa.Column("imported_by", sa.String(200), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_facilities_region_id", "facilities", ["region_id"])


def downgrade() -> None:
    op.drop_index("ix_facilities_region_id", table_name="facilities")
    op.drop_table("facilities")
