"""Mass-casualty incidents: each proposed plan, who proposed it, and its lines per hospital.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(24), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("municipality", sa.String(80), nullable=True),
        sa.Column("casualties", sa.JSON(), nullable=False),
        sa.Column("needs", sa.JSON(), nullable=False),
        sa.Column("unplaced", sa.JSON(), nullable=False),
        sa.Column("unplaced_needs", sa.JSON(), nullable=False),
        sa.Column("rules", sa.String(40), nullable=False),
    )
    op.create_index("ix_incidents_created_at", "incidents", ["created_at"])
    op.create_table(
        "incident_lines",
        sa.Column("incident_id", sa.String(40), sa.ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("facility_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("region_id", sa.String(16), nullable=False),
        sa.Column("t1", sa.Integer(), nullable=False),
        sa.Column("t2", sa.Integer(), nullable=False),
        sa.Column("t3", sa.Integer(), nullable=False),
        sa.Column("burns", sa.Integer(), nullable=False),
        sa.Column("paediatric", sa.Integer(), nullable=False),
        sa.Column("travel_min", sa.Float(), nullable=False),
        sa.Column("within_norm", sa.Boolean(), nullable=False),
        sa.Column("why", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("incident_lines")
    op.drop_index("ix_incidents_created_at", table_name="incidents")
    op.drop_table("incidents")
