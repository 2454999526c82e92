"""Database models, one module per domain; importing this package registers them all on ``Base``."""

from medrisk.store.models.audit import AuditCheckpoint, AuditEntry, AuditHead, Setting
from medrisk.store.models.base import Base, utcnow
from medrisk.store.models.channels import Channel, ChannelCrawl, ChannelListing, ChannelVerdict, ListingObservation
from medrisk.store.models.filing import AuthCode, Filing, FilingRevision
from medrisk.store.models.identity import (
    Alert,
    ApiToken,
    AuthSession,
    LoginAttempt,
    Organisation,
    PasswordHistory,
    User,
)
from medrisk.store.models.jobs import ParkedJob
from medrisk.store.models.loop import DeliveryAttempt, Disposition, LoopEvent, Notification, NotifyEndpoint, Transition
from medrisk.store.models.reports import (
    PostureApp,
    PostureIndexState,
    PostureMonthly,
    PostureRuleHit,
    Report,
    ReportDelivery,
    ReportSubscription,
)
from medrisk.store.models.scans import Scan, Version
from medrisk.store.models.trails import (
    TrailBatch,
    TrailCase,
    TrailEvent,
    TrailHead,
    TrailIdentity,
    TrailSource,
    TrailViolation,
)

__all__ = [
    "ParkedJob",
    "Alert",
    "ApiToken",
    "AuditCheckpoint",
    "AuditEntry",
    "AuditHead",
    "AuthCode",
    "AuthSession",
    "Base",
    "Channel",
    "ChannelCrawl",
    "ChannelListing",
    "ChannelVerdict",
    "ListingObservation",
    "Filing",
    "FilingRevision",
    "LoginAttempt",
    "Organisation",
    "PasswordHistory",
    "Scan",
    "Setting",
    "User",
    "Version",
    "DeliveryAttempt",
    "Disposition",
    "LoopEvent",
    "Notification",
    "NotifyEndpoint",
    "Transition",
    "TrailBatch",
    "TrailCase",
    "TrailEvent",
    "TrailHead",
    "TrailIdentity",
    "TrailSource",
    "TrailViolation",
    "PostureApp",
    "PostureIndexState",
    "PostureMonthly",
    "PostureRuleHit",
    "Report",
    "ReportDelivery",
    "ReportSubscription",
    "utcnow",
]
