"""jobs: parked jobs (failed on every attempt, kept with their error)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import medrisk.store.models.base

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parked_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("parked_at", medrisk.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("resolved_at", medrisk.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parked_jobs")),
        sa.UniqueConstraint("job_id", name=op.f("uq_parked_jobs_job_id")),
    )
    with op.batch_alter_table("parked_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_parked_jobs_name"), ["name"], unique=False)
        batch_op.create_index(batch_op.f("ix_parked_jobs_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("parked_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parked_jobs_status"))
        batch_op.drop_index(batch_op.f("ix_parked_jobs_name"))
    op.drop_table("parked_jobs")
