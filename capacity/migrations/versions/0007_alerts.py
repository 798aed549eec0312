"""Alerts: subscriptions, the alert history, and the webhook delivery log.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_subscriptions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("key_id", sa.String(24), nullable=False),
        sa.Column("region_id", sa.String(16), nullable=False),
        sa.Column("facility_id", sa.String(64), nullable=True),
        sa.Column("condition", sa.JSON(), nullable=False),
        sa.Column("webhook_url", sa.String(2000), nullable=True),
        sa.Column("webhook_secret", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_alert_subscriptions_key_id", "alert_subscriptions", ["key_id"])
    op.create_index("ix_alert_subscriptions_region_id", "alert_subscriptions", ["region_id"])
    op.create_table(
        "alert_events",
        sa.Column("region_id", sa.String(16), primary_key=True),
        sa.Column("event_id", sa.String(42), primary_key=True),
        sa.Column("subscription_id", sa.String(40), nullable=False),
        sa.Column("key_id", sa.String(24), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("condition", sa.JSON(), nullable=False),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_alert_events_subscription_id", "alert_events", ["subscription_id"])
    op.create_index("ix_alert_events_key_at", "alert_events", ["key_id", "at"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("subscription_id", sa.String(40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
    )
    op.create_index("ix_alert_deliveries_subscription_at", "alert_deliveries", ["subscription_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_alert_deliveries_subscription_at", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index("ix_alert_events_key_at", table_name="alert_events")
    op.drop_index("ix_alert_events_subscription_id", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_index("ix_alert_subscriptions_region_id", table_name="alert_subscriptions")
    op.drop_index("ix_alert_subscriptions_key_id", table_name="alert_subscriptions")
    op.drop_table("alert_subscriptions")
