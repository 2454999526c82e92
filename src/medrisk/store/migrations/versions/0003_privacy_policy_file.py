"""filings: the uploaded privacy-policy file (blob SHA-256, size, media type, upload time)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import medrisk.store.models.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("filings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("privacy_policy_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("privacy_policy_size", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("privacy_policy_media_type", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("privacy_policy_uploaded_at", medrisk.store.models.base.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("filings", schema=None) as batch_op:
        batch_op.drop_column("privacy_policy_uploaded_at")
        batch_op.drop_column("privacy_policy_media_type")
        batch_op.drop_column("privacy_policy_size")
        batch_op.drop_column("privacy_policy_sha256")
