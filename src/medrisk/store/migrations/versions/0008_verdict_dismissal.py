"""channels: a verdict's dismissal (who, when, why)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 15:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import medrisk.store.models.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_verdicts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dismissed_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("dismissed_at", medrisk.store.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("dismissed_reason", sa.Text(), nullable=True))
        batch_op.create_foreign_key("fk_channel_verdicts_dismissed_by", "users", ["dismissed_by"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("channel_verdicts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_channel_verdicts_dismissed_by", type_="foreignkey")
        batch_op.drop_column("dismissed_reason")
        batch_op.drop_column("dismissed_at")
        batch_op.drop_column("dismissed_by")
