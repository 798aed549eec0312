"""An SEH's declared opening hours: declared by an admin, or a column of an imported facilities file.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seh_opening_hours",
        sa.Column("facility_id", sa.String(64), primary_key=True),
        sa.Column("hours", sa.String(500), nullable=False),
        sa.Column("declared_by", sa.String(200), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("facilities") as table:
        table.add_column(sa.Column("opening_hours", sa.String(500), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("facilities") as table:
        table.drop_column("opening_hours")
    op.drop_table("seh_opening_hours")
