"""Hourly rollups of the record for the coordinator's charts and reports (capacity.history.rollups).

The tables start empty; `capacity db rollups` fills them from the events already recorded.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unit_hours",
        sa.Column("facility_id", sa.String(64), primary_key=True),
        sa.Column("unit", sa.String(24), primary_key=True),
        sa.Column("hour", sa.Integer(), primary_key=True),
        sa.Column("region_id", sa.String(16), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.Column("free_min", sa.Integer()),
        sa.Column("free_max", sa.Integer()),
        sa.Column("free_last", sa.Integer()),
        sa.Column("staffed_last", sa.Integer()),
        sa.Column("last_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_unit_hours_region", "unit_hours", ["region_id", "unit", "hour"])
    op.create_table(
        "seh_hours",
        sa.Column("facility_id", sa.String(64), primary_key=True),
        sa.Column("hour", sa.Integer(), primary_key=True),
        sa.Column("region_id", sa.String(16), nullable=False),
        sa.Column("stop_min", sa.Float(), nullable=False),
        sa.Column("closed_min", sa.Float(), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.Column("nedocs_max", sa.Integer()),
        sa.Column("nedocs_last", sa.Integer()),
        sa.Column("triage_last", sa.Integer()),
        sa.Column("doctor_last", sa.Integer()),
        sa.Column("last_ms", sa.BigInteger()),
    )
    op.create_index("ix_seh_hours_region", "seh_hours", ["region_id", "hour"])
    op.create_table(
        "stop_episodes",
        sa.Column("facility_id", sa.String(64), primary_key=True),
        sa.Column("start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("region_id", sa.String(16), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.String(40)),
    )
    op.create_index("ix_stop_episodes_region", "stop_episodes", ["region_id", "start"])
    op.create_table(
        "stop_cursors",
        sa.Column("facility_id", sa.String(64), primary_key=True),
        sa.Column("region_id", sa.String(16), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_ms", sa.BigInteger(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("stopped_since", sa.DateTime(timezone=True)),
        sa.Column("stop_reason", sa.String(40)),
    )
    op.create_table(
        "rollup_pending",
        sa.Column("region_id", sa.String(16), primary_key=True),
        sa.Column("event_id", sa.String(42), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("rollup_pending")
    op.drop_table("stop_cursors")
    op.drop_index("ix_stop_episodes_region", "stop_episodes")
    op.drop_table("stop_episodes")
    op.drop_index("ix_seh_hours_region", "seh_hours")
    op.drop_table("seh_hours")
    op.drop_index("ix_unit_hours_region", "unit_hours")
    op.drop_table("unit_hours")
