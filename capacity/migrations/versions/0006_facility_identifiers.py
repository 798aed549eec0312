"""Identifiers other systems use for our facilities (EDXL-HAVE organisation ids, FHIR identifiers).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "facility_identifiers",
        sa.Column("scheme", sa.String(200), primary_key=True),
        sa.Column("value", sa.String(200), primary_key=True),
        sa.Column("facility_id", sa.String(64), nullable=False),
        sa.Column("declared_by", sa.String(200), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_facility_identifiers_facility_id", "facility_identifiers", ["facility_id"])


def downgrade() -> None:
    op.drop_index("ix_facility_identifiers_facility_id", table_name="facility_identifiers")
    op.drop_table("facility_identifiers")
