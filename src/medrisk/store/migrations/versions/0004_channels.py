"""channel monitoring: channels, crawls, listings seen over time, verdicts against filings

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 08:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import medrisk.store.models.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("interval_minutes", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("health", sa.String(length=16), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_crawl_at", medrisk.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("last_success_at", medrisk.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("next_crawl_at", medrisk.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", medrisk.store.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_channels_created_by_users")),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"], name=op.f("fk_channels_org_id_organisations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
        sa.UniqueConstraint("name", name=op.f("uq_channels_name")),
    )
    op.create_index(op.f("ix_channels_next_crawl_at"), "channels", ["next_crawl_at"], unique=False)
    op.create_index(op.f("ix_channels_org_id"), "channels", ["org_id"], unique=False)
    op.create_table(
        "channel_crawls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("started_at", medrisk.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("finished_at", medrisk.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], name=op.f("fk_channel_crawls_channel_id_channels")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_crawls")),
    )
    op.create_index(op.f("ix_channel_crawls_channel_id"), "channel_crawls", ["channel_id"], unique=False)
    op.create_table(
        "channel_listings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("listing_key", sa.String(length=300), nullable=False),
        sa.Column("package", sa.String(length=255), nullable=False),
        sa.Column("app_name", sa.String(length=300), nullable=False),
        sa.Column("version_name", sa.String(length=128), nullable=True),
        sa.Column("version_code", sa.BigInteger(), nullable=True),
        sa.Column("released_at", medrisk.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("developer", sa.String(length=300), nullable=True),
        sa.Column("downloads", sa.BigInteger(), nullable=True),
        sa.Column("rating", sa.Float(), nullable=True),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("apk_url", sa.Text(), nullable=True),
        sa.Column("apk_sha256", sa.String(length=64), nullable=True),
        sa.Column("apk_size", sa.BigInteger(), nullable=True),
        sa.Column("signer_sha256", sa.JSON(), nullable=False),
        sa.Column("icon_hash", sa.String(length=16), nullable=True),
        sa.Column("filing_id", sa.Integer(), nullable=True),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("download_status", sa.String(length=16), nullable=False),
        sa.Column("download_error", sa.Text(), nullable=True),
        sa.Column("scan_grade", sa.String(length=1), nullable=True),
        sa.Column("scan_score", sa.Float(), nullable=True),
        sa.Column("scan_findings", sa.JSON(), nullable=False),
        sa.Column("scan_error", sa.Text(), nullable=True),
        sa.Column("scanned_at", medrisk.store.models.base.UTCDateTime(), nullable=True),
        sa.Column("first_seen_at", medrisk.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", medrisk.store.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], name=op.f("fk_channel_listings_channel_id_channels")),
        sa.ForeignKeyConstraint(["filing_id"], ["filings.id"], name=op.f("fk_channel_listings_filing_id_filings")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_channel_listings_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_listings")),
        sa.UniqueConstraint("channel_id", "listing_key", name="uq_channel_listings_key"),
    )
    op.create_index(op.f("ix_channel_listings_apk_sha256"), "channel_listings", ["apk_sha256"], unique=False)
    op.create_index(op.f("ix_channel_listings_channel_id"), "channel_listings", ["channel_id"], unique=False)
    op.create_index(op.f("ix_channel_listings_filing_id"), "channel_listings", ["filing_id"], unique=False)
    op.create_index(op.f("ix_channel_listings_org_id"), "channel_listings", ["org_id"], unique=False)
    op.create_index(op.f("ix_channel_listings_package"), "channel_listings", ["package"], unique=False)
    op.create_table(
        "channel_observations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("listing_id", sa.Integer(), nullable=False),
        sa.Column("crawl_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", medrisk.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("app_name", sa.String(length=300), nullable=False),
        sa.Column("developer", sa.String(length=300), nullable=True),
        sa.Column("downloads", sa.BigInteger(), nullable=True),
        sa.Column("rating", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["crawl_id"], ["channel_crawls.id"], name=op.f("fk_channel_observations_crawl_id_channel_crawls")
        ),
        sa.ForeignKeyConstraint(
            ["listing_id"], ["channel_listings.id"], name=op.f("fk_channel_observations_listing_id_channel_listings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_observations")),
    )
    op.create_index(op.f("ix_channel_observations_crawl_id"), "channel_observations", ["crawl_id"], unique=False)
    op.create_index(op.f("ix_channel_observations_listing_id"), "channel_observations", ["listing_id"], unique=False)
    op.create_table(
        "channel_verdicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("listing_id", sa.Integer(), nullable=False),
        sa.Column("filing_id", sa.Integer(), nullable=True),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.Column("event_outcome", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("first_seen_at", medrisk.store.models.base.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", medrisk.store.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], name=op.f("fk_channel_verdicts_channel_id_channels")),
        sa.ForeignKeyConstraint(["filing_id"], ["filings.id"], name=op.f("fk_channel_verdicts_filing_id_filings")),
        sa.ForeignKeyConstraint(
            ["listing_id"], ["channel_listings.id"], name=op.f("fk_channel_verdicts_listing_id_channel_listings")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_channel_verdicts_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_verdicts")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_channel_verdicts_dedupe_key")),
    )
    op.create_index(op.f("ix_channel_verdicts_channel_id"), "channel_verdicts", ["channel_id"], unique=False)
    op.create_index(op.f("ix_channel_verdicts_filing_id"), "channel_verdicts", ["filing_id"], unique=False)
    op.create_index(op.f("ix_channel_verdicts_kind"), "channel_verdicts", ["kind"], unique=False)
    op.create_index(op.f("ix_channel_verdicts_listing_id"), "channel_verdicts", ["listing_id"], unique=False)
    op.create_index(op.f("ix_channel_verdicts_org_id"), "channel_verdicts", ["org_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_channel_verdicts_org_id"), table_name="channel_verdicts")
    op.drop_index(op.f("ix_channel_verdicts_listing_id"), table_name="channel_verdicts")
    op.drop_index(op.f("ix_channel_verdicts_kind"), table_name="channel_verdicts")
    op.drop_index(op.f("ix_channel_verdicts_filing_id"), table_name="channel_verdicts")
    op.drop_index(op.f("ix_channel_verdicts_channel_id"), table_name="channel_verdicts")
    op.drop_table("channel_verdicts")
    op.drop_index(op.f("ix_channel_observations_listing_id"), table_name="channel_observations")
    op.drop_index(op.f("ix_channel_observations_crawl_id"), table_name="channel_observations")
    op.drop_table("channel_observations")
    op.drop_index(op.f("ix_channel_listings_package"), table_name="channel_listings")
    op.drop_index(op.f("ix_channel_listings_org_id"), table_name="channel_listings")
    op.drop_index(op.f("ix_channel_listings_filing_id"), table_name="channel_listings")
    op.drop_index(op.f("ix_channel_listings_channel_id"), table_name="channel_listings")
    op.drop_index(op.f("ix_channel_listings_apk_sha256"), table_name="channel_listings")
    op.drop_table("channel_listings")
    op.drop_index(op.f("ix_channel_crawls_channel_id"), table_name="channel_crawls")
    op.drop_table("channel_crawls")
    op.drop_index(op.f("ix_channels_org_id"), table_name="channels")
    op.drop_index(op.f("ix_channels_next_crawl_at"), table_name="channels")
    op.drop_table("channels")
