"""console and reports: posture index, signed reports, report subscriptions and deliveries

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 08:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import medrisk.store.models.base

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC = medrisk.store.models.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "posture_apps",
        sa.Column("filing_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("scan_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=1), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("finished_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["filing_id"], ["filings.id"], name=op.f("fk_posture_apps_filing_id_filings")),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"], name=op.f("fk_posture_apps_org_id_organisations")),
        sa.PrimaryKeyConstraint("filing_id", name=op.f("pk_posture_apps")),
    )
    op.create_index(op.f("ix_posture_apps_grade"), "posture_apps", ["grade"], unique=False)
    op.create_index(op.f("ix_posture_apps_org_id"), "posture_apps", ["org_id"], unique=False)
    op.create_table(
        "posture_rule_hits",
        sa.Column("filing_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(length=32), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=48), nullable=False),
        sa.ForeignKeyConstraint(["filing_id"], ["filings.id"], name=op.f("fk_posture_rule_hits_filing_id_filings")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_posture_rule_hits_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("filing_id", "rule_id", name=op.f("pk_posture_rule_hits")),
    )
    op.create_index("ix_posture_rule_hits_org_rule", "posture_rule_hits", ["org_id", "rule_id"], unique=False)
    op.create_table(
        "posture_monthly",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("grade", sa.String(length=1), nullable=False),
        sa.Column("scans", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"], name=op.f("fk_posture_monthly_org_id_organisations")),
        sa.PrimaryKeyConstraint("org_id", "month", "grade", name=op.f("pk_posture_monthly")),
    )
    op.create_table(
        "posture_index_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("watermark", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posture_index_state")),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("fmt", sa.String(length=8), nullable=False),
        sa.Column("period_start", UTC(), nullable=True),
        sa.Column("period_end", UTC(), nullable=True),
        sa.Column("blob_sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sm3", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"], name=op.f("fk_reports_org_id_organisations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
    )
    op.create_index("ix_reports_kind_subject", "reports", ["kind", "subject", "lang", "fmt"], unique=False)
    op.create_index(op.f("ix_reports_org_id"), "reports", ["org_id"], unique=False)
    op.create_table(
        "report_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_report_subscriptions_created_by_users")),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["notify_endpoints.id"], name=op.f("fk_report_subscriptions_endpoint_id_notify_endpoints")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_report_subscriptions_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_subscriptions")),
        sa.UniqueConstraint("endpoint_id", "period", name="uq_report_subscriptions_endpoint_id"),
    )
    op.create_index(op.f("ix_report_subscriptions_org_id"), "report_subscriptions", ["org_id"], unique=False)
    op.create_table(
        "report_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_report_deliveries_report_id_reports")),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["report_subscriptions.id"],
            name=op.f("fk_report_deliveries_subscription_id_report_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_deliveries")),
        sa.UniqueConstraint("report_id", "subscription_id", name="uq_report_deliveries_report_id"),
    )
    op.create_index(op.f("ix_report_deliveries_report_id"), "report_deliveries", ["report_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_report_deliveries_report_id"), table_name="report_deliveries")
    op.drop_table("report_deliveries")
    op.drop_index(op.f("ix_report_subscriptions_org_id"), table_name="report_subscriptions")
    op.drop_table("report_subscriptions")
    op.drop_index(op.f("ix_reports_org_id"), table_name="reports")
    op.drop_index("ix_reports_kind_subject", table_name="reports")
    op.drop_table("reports")
    op.drop_table("posture_index_state")
    op.drop_table("posture_monthly")
    op.drop_index("ix_posture_rule_hits_org_rule", table_name="posture_rule_hits")
    op.drop_table("posture_rule_hits")
    op.drop_index(op.f("ix_posture_apps_org_id"), table_name="posture_apps")
    op.drop_index(op.f("ix_posture_apps_grade"), table_name="posture_apps")
    op.drop_table("posture_apps")
