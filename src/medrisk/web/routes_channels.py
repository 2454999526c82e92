"""Channel monitoring (docs/channels.md): channels and their health, listings, verdicts, and the
per-app view (where a filed app is published, its versions per channel, drift, look-alikes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from medrisk.channels.service import ChannelService
from medrisk.platform.context import Platform
from medrisk.platform.errors import Invalid
from medrisk.platform.roles import Perm
from medrisk.web.common import ERRORS
from medrisk.web.deps import Caller, Ctx, Id
from medrisk.web.schemas import MAX_ID, In

router = APIRouter(tags=["channels"], responses=ERRORS)
Kind = Literal["tampered", "lookalike", "drift", "stale_vulnerable", "unfiled"]


class ChannelIn(In):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(min_length=1, max_length=200, description="fdroid, feed, folder, or a plug-in's name")
    url: str = Field(min_length=1, max_length=2000, description="repository/feed URL or folder path")
    fingerprint: str | None = Field(
        None, max_length=200, description="F-Droid repository signing-certificate SHA-256 (pinned)"
    )
    interval_minutes: int = Field(360, ge=1, le=10080)
    org_id: int | None = Field(None, ge=1, le=MAX_ID, description="the regulator watching it (default: yours)")
    config: dict[str, str | int | float | bool] = Field(default_factory=dict)


class EnabledIn(In):
    enabled: bool


def _svc(ctx: Platform) -> ChannelService:
    if ctx.channels is None:
        raise Invalid("channel monitoring is not configured on this server")
    return ctx.channels


@router.get("/api/v1/channels", summary="Channels with health, last crawl and counts")
def list_channels(ctx: Ctx, p: Caller) -> list[dict[str, Any]]:
    with ctx.db.session() as db:
        return _svc(ctx).channels(db, p)


@router.post("/api/v1/channels", status_code=201, summary="Configure a channel to watch (regulators)")
def add_channel(ctx: Ctx, p: Caller, body: ChannelIn) -> dict[str, Any]:
    cfg: dict[str, Any] = dict(body.config)
    if body.fingerprint:
        cfg["fingerprint"] = body.fingerprint
    svc = _svc(ctx)
    with ctx.db.session() as db:
        ch = svc.add(
            db,
            p,
            name=body.name,
            kind=body.kind,
            url=body.url,
            config=cfg,
            interval_minutes=body.interval_minutes,
            org_id=body.org_id,
        )
        cid = ch.id
    with ctx.db.session() as db:
        return svc.channel_view(db, p, cid)


@router.get("/api/v1/channels/{channel_id}", summary="One channel: health, recent crawls, counts")
def get_channel(ctx: Ctx, p: Caller, channel_id: Id) -> dict[str, Any]:
    with ctx.db.session() as db:
        return _svc(ctx).channel_view(db, p, channel_id)


@router.post("/api/v1/channels/{channel_id}/enabled", summary="Pause or resume a channel's crawls")
def set_enabled(ctx: Ctx, p: Caller, channel_id: Id, body: EnabledIn) -> dict[str, Any]:
    svc = _svc(ctx)
    with ctx.db.session() as db:
        svc.set_enabled(db, p, channel_id, body.enabled)
    with ctx.db.session() as db:
        return svc.channel_view(db, p, channel_id)


@router.post("/api/v1/channels/{channel_id}/crawl", status_code=202, summary="Crawl a channel now (a job)")
async def crawl_channel(ctx: Ctx, p: Caller, channel_id: Id) -> dict[str, Any]:
    p.require(Perm.CHANNEL_MANAGE)
    svc = _svc(ctx)

    def _check() -> None:
        with ctx.db.session() as db:
            svc.channel_view(db, p, channel_id, crawls=0)  # visible, or 404

    await run_in_threadpool(_check)
    assert ctx.jobs is not None
    await run_in_threadpool(ctx.jobs.enqueue, "channels.crawl", channel_id=channel_id)
    return {"channel_id": channel_id, "queued": True}


@router.get("/api/v1/channels/{channel_id}/listings", summary="What a channel offers, with scan grades")
def channel_listings(
    ctx: Ctx,
    p: Caller,
    channel_id: Id,
    package: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[dict[str, Any]]:
    svc = _svc(ctx)
    with ctx.db.session() as db:
        svc.channel_view(db, p, channel_id, crawls=0)
        return svc.listings(db, p, channel_id=channel_id, package=package, limit=limit, offset=offset)


@router.get("/api/v1/channel-verdicts", summary="Tampered, look-alike, drifted, stale and unfiled listings")
def list_verdicts(
    ctx: Ctx,
    p: Caller,
    kind: Kind | None = None,
    filing_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    channel_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Literal["open", "dismissed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[dict[str, Any]]:
    with ctx.db.session() as db:
        return _svc(ctx).verdicts(
            db, p, kind=kind, filing_id=filing_id, channel_id=channel_id, status=status, limit=limit, offset=offset
        )


class DismissIn(In):
    reason: str = Field(min_length=2, max_length=2000, description="why this is no threat (kept and audited)")


@router.post(
    "/api/v1/channel-verdicts/{verdict_id}/dismiss", summary="Close a verdict as no threat, with a reason (regulators)"
)
def dismiss_verdict(ctx: Ctx, p: Caller, verdict_id: Id, body: DismissIn) -> dict[str, Any]:
    svc = _svc(ctx)
    with ctx.db.session() as db:
        v = svc.dismiss(db, p, verdict_id, body.reason)
        return {"id": v.id, "status": v.status, "reason": v.dismissed_reason}


@router.get("/api/v1/filings/{filing_id}/channels", summary="Where a filed app is published, drift and look-alikes")
def filing_channels(ctx: Ctx, p: Caller, filing_id: Id) -> dict[str, Any]:
    with ctx.db.session() as db:
        return _svc(ctx).app_view(db, p, filing_id)
