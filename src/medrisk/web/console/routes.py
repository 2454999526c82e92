"""Console pages under /console: thin handlers that call platform/, loop/ and reports/.

Visibility is never decided here: every row is read through ``platform.scope`` (``get_visible``,
the platform's list functions, or a subtree of an organisation fetched with ``get_org``), so a
builder who types another institution's app id gets the same 404 as the API gives.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from medrisk.platform import audit, auth, filings, orgs, sessions, versions
from medrisk.platform.context import Platform
from medrisk.platform.errors import Conflict, Forbidden, Invalid, NotFound, PlatformError, RateLimited, TooLarge
from medrisk.platform.roles import Perm, Role
from medrisk.platform.scope import get_visible, scoped
from medrisk.reports import charts, posture, signing
from medrisk.store.blobs import BlobTooLarge
from medrisk.store.models import (
    AuditCheckpoint,
    AuditEntry,
    Disposition,
    Filing,
    NotifyEndpoint,
    Organisation,
    Report,
    ReportSubscription,
    Scan,
    Transition,
    Version,
    utcnow,
)
from medrisk.web.console import base, i18n
from medrisk.web.console.base import (
    COOKIE,
    LANG_COOKIE,
    PREFIX,
    SECURITY_HEADERS,
    ConsoleRoute,
    Viewer,
    form,
    redirect,
    render,
    viewer,
)
from medrisk.web.deps import address

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
PAGE = 50


def _ctx(request: Request) -> Platform:
    return request.app.state.platform


def _int(value: str | None, default: int | None = None) -> int | None:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        raise Invalid("not a number", field="id") from None


# --- login, enrolment, language ------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "") -> Response:  # noqa: A002 - the query parameter's name
    token = base.prelogin_value(request)
    resp = render(request, "login.html", None, next=base.safe_next(next), error=None, csrf=token)
    base.set_prelogin(request, resp, token)
    return resp


@router.post("/login", response_class=HTMLResponse)
async def login_submit(request: Request) -> Response:
    data = await form(request, prelogin=True)
    ctx = _ctx(request)
    target = base.safe_next(data.get("next"))
    lang = base.lang_of(request)
    L = i18n.labels(lang)
    try:
        result = await run_in_threadpool(
            auth.login,
            ctx,
            data.get("username", "")[:64],
            data.get("password", "")[:256],
            (data.get("totp") or "").strip()[:12] or None,
            address(request),
        )
    except RateLimited:
        return _login_error(request, L["rate_limited"], target, 429)
    except PlatformError as exc:
        msg = L["totp_required"] if exc.code == "totp_required" else L["login_failed"]
        return _login_error(request, msg, target, 401)
    resp = redirect(PREFIX + "/enrol" if result.totp_enrolment_required else target)
    base.set_session_cookie(request, resp, result.token)
    return resp


def _login_error(request: Request, message: str, target: str, status: int) -> Response:
    token = request.cookies.get(base.PRELOGIN_COOKIE, "")
    return render(request, "login.html", None, status=status, next=target, error=message, csrf=token)


@router.post("/logout")
async def logout(request: Request) -> Response:
    v = viewer(request, allow_enrol=True)
    await form(request, v)
    ctx = _ctx(request)
    with ctx.db.session() as db:
        if v.principal.session_id is not None:
            sessions.revoke_session(db, v.principal.session_id)
        audit.record(ctx.keys, db, "logout", actor=v.principal, target=f"user:{v.principal.user_id}")
    resp = redirect(PREFIX + "/login")
    resp.delete_cookie(COOKIE, path=PREFIX)
    return resp


@router.get("/enrol", response_class=HTMLResponse)
def enrol_page(request: Request) -> Response:
    v = viewer(request, allow_enrol=True)
    if v.principal.extra.get("session_kind") != "totp_enrol":
        return redirect(PREFIX + "/")
    ctx = _ctx(request)
    with ctx.db.session() as db:
        from medrisk.store.models import User

        user = db.get(User, v.principal.user_id)
        assert user is not None
        if user.totp_enabled:
            raise Conflict("two-factor authentication is already enrolled")
        secret, uri = auth.totp_begin(ctx, db, v.principal)
    return render(request, "enrol.html", v, secret=secret, uri=uri, error=None)


@router.post("/enrol", response_class=HTMLResponse)
async def enrol_confirm(request: Request) -> Response:
    v = viewer(request, allow_enrol=True)
    data = await form(request, v)
    ctx = _ctx(request)
    try:
        with ctx.db.session() as db:
            auth.totp_confirm(ctx, db, v.principal, data.get("totp", "").strip()[:12])
    except Invalid:  # the secret stays pending: the same one works on the next try
        return render(request, "enrol.html", v, status=422, secret=None, uri=None, error=True)
    return redirect(PREFIX + "/")


@router.get("/lang")
def switch_lang(request: Request, to: str = "zh", next: str = "") -> Response:  # noqa: A002
    resp = redirect(base.safe_next(next))
    resp.set_cookie(LANG_COOKIE, "en" if to == "en" else "zh", samesite="lax", path=PREFIX, max_age=365 * 86400)
    return resp


# --- overview and drill-down ---------------------------------------------------------------------


def _root(db: Any, v: Viewer, org_id: int | None) -> Organisation:
    if org_id is None:
        org = db.get(Organisation, v.principal.org_id)
        if org is None:
            raise NotFound("organisation not found")
        return org
    return orgs.get_org(db, v.principal, org_id)


def _overview_context(ctx: Platform, v: Viewer, org_id: int | None) -> dict[str, Any]:
    posture.index_pending(ctx)
    L = i18n.labels(v.lang)
    with ctx.db.session() as db:
        root = _root(db, v, org_id)
        ov = posture.overview(db, root)
        trail = orgs.ancestors(db, root)
        visible_trail = [o for o in trail if o.path.startswith(v.principal.org_path) or v.principal.is_admin]
    svg = {
        "grades": charts.donut(ov.grades, L["grade_dist"]),
        "regions": charts.stacked_bars(
            [(b.name, b.grades) for b in ov.regions[:12]],
            L["by_region"],
            links=[f"{PREFIX}/orgs/{b.org_id}" for b in ov.regions[:12]],
        ),
        "trend": charts.trend_lines(ov.trend, L["trend"]),
        "rules": charts.bars([(r["rule_id"], r["apps"]) for r in ov.top_rules], L["top_rules"]),
    }
    return {"ov": ov, "svg": svg, "trail": visible_trail, "can_dismiss": _can_dismiss(ctx, v)}


def _can_dismiss(ctx: Platform, v: Viewer) -> bool:
    """Regulators (channels:manage) dismiss a channel verdict, once channel monitoring offers it."""
    svc = ctx.channels
    return svc is not None and hasattr(svc, "dismiss") and v.is_regulator_side and v.principal.can(Perm.CHANNEL_MANAGE)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    v = viewer(request)
    if not v.is_regulator_side:
        return my_apps(request, v)
    msg = _done_message(request.query_params.get("ok"), v.lang)
    return render(request, "overview.html", v, message=msg, **_overview_context(_ctx(request), v, None))


@router.get("/orgs/{org_id}", response_class=HTMLResponse)
def org_page(request: Request, org_id: int) -> Response:
    v = viewer(request)
    ctx = _ctx(request)
    with ctx.db.session() as db:
        org = _root(db, v, org_id)
        kind = org.kind
    if kind in ("hospital", "internet_hospital", "app_company"):
        return apps_page(request, org=org_id)
    msg = _done_message(request.query_params.get("ok"), v.lang)
    return render(request, "overview.html", v, message=msg, **_overview_context(ctx, v, org_id))


def my_apps(request: Request, v: Viewer) -> Response:
    ctx = _ctx(request)
    posture.index_pending(ctx)
    with ctx.db.session() as db:
        root = _root(db, v, None)
        rows, total = posture.apps_in(db, root, limit=200)
        notices = list(
            db.execute(
                scoped(
                    select(Disposition, Filing.name)
                    .join(Filing, Filing.id == Disposition.filing_id)
                    .where(Disposition.state.in_(("rectifying", "suspended", "warned"))),
                    v.principal,
                    Disposition,
                ).order_by(Disposition.deadline_at)
            ).all()
        )
    return render(request, "my_apps.html", v, rows=rows, total=total, root=root, notices=notices, now=utcnow())


@router.get("/apps", response_class=HTMLResponse)
def apps_page(
    request: Request,
    org: int | None = None,
    grade: Annotated[str | None, Query(max_length=1)] = None,
    q: Annotated[str, Query(max_length=100)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    v = viewer(request)
    ctx = _ctx(request)
    posture.index_pending(ctx)
    with ctx.db.session() as db:
        root = _root(db, v, org)
        rows, total = posture.apps_in(db, root, grade=grade, q=q, limit=PAGE, offset=(page - 1) * PAGE)
        children = list(db.scalars(select(Organisation).where(Organisation.parent_id == root.id)))
    return render(
        request,
        "apps.html",
        v,
        rows=rows,
        total=total,
        root=root,
        grade=grade or "",
        q=q,
        page=page,
        pages=max(1, (total + PAGE - 1) // PAGE),
        children=children,
    )


# --- one app ---------------------------------------------------------------------------------------


def _allowed_actions(ctx: Platform, state: str) -> list[str]:
    assert ctx.loop is not None
    manual = ctx.loop.policy.manual
    return [
        a for a in ("issue_notice", "extend_deadline", "suspend", "reinstate", "revoke") if state in manual[a].sources
    ]


@router.get("/apps/{filing_id}", response_class=HTMLResponse)
def app_page(request: Request, filing_id: int) -> Response:
    v = viewer(request)
    ctx = _ctx(request)
    p = v.principal
    with ctx.db.session() as db:
        f = filings.get_filing(db, p, filing_id)
        org = db.get(Organisation, f.org_id)
        vs = versions.list_versions(db, p, f.id)
        scans = versions.list_scans(db, p, filing_id=f.id)
        d = db.get(Disposition, f.id)
        ts = list(db.scalars(select(Transition).where(Transition.filing_id == f.id).order_by(Transition.id.desc())))
        state = d.state if d else ("filed" if f.approved_revision is not None else None)
        notice = None
        if d is not None and d.state in ("rectifying", "suspended") and d.last_scan_id:
            s = db.get(Scan, d.last_scan_id)
            if s is not None and s.result:
                notice = [x for x in s.result.get("findings") or [] if not x.get("suppressed")][:50]
        latest_done = next((s for s in reversed(scans) if s.status == "done"), None)
        rev_status = f.status
        channel_view = _channel_view(ctx, db, p, f)
    by_version: dict[int, list[Scan]] = {}
    for s in scans:
        by_version.setdefault(s.version_id, []).append(s)
    can_review = p.can(Perm.FILING_REVIEW) and rev_status == "pending" and f.org_id != p.org_id
    can_act = p.can(Perm.AUTHCODE_MANAGE) and f.approved_revision is not None and ctx.loop is not None
    return render(
        request,
        "app.html",
        v,
        f=f,
        org=org,
        versions=list(reversed(vs)),
        by_version=by_version,
        scans=[s for s in scans if s.status == "done"],
        d=d,
        state=state,
        transitions=ts,
        notice=notice,
        latest=latest_done,
        can_review=can_review,
        can_act=can_act,
        actions=_allowed_actions(ctx, state) if can_act and state else [],
        can_upload=p.can(Perm.VERSION_UPLOAD),
        ch=channel_view,
        can_dismiss=_can_dismiss(ctx, v),
        message=_done_message(request.query_params.get("ok"), v.lang),
        now=utcnow(),
    )


def _parse_iso(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _verdict_row(x: dict[str, Any], filing_name: str) -> dict[str, Any]:
    """A verdict of ``ChannelService.app_view`` in the shape of the overview's panel rows."""
    ev = x.get("evidence") or {}
    return {
        "id": x["id"],
        "kind": x["kind"],
        "severity": x.get("severity"),
        "score": x.get("score"),
        "threshold": x.get("threshold"),
        "evidence": ev,
        "status": x.get("status") or "open",
        "listing": x.get("app_name") or "",
        "package": x.get("package") or "",
        "version": x.get("version_name"),
        "developer": (ev.get("listed") or {}).get("developer"),
        "channel": x.get("channel") or "",
        "filing_id": x.get("filing_id"),
        "filing": filing_name,
        "first_seen": _parse_iso(x.get("first_seen_at")),
        "seen": _parse_iso(x.get("last_seen_at")),
    }


def _channel_view(ctx: Platform, db: Any, p: Any, f: Filing) -> dict[str, Any] | None:
    """Where the app is published (channel monitoring, ``ChannelService.app_view``): versions
    per channel, drift, look-alikes and tampered copies, stale vulnerable versions."""
    if ctx.channels is None:
        return None
    view = ctx.channels.app_view(db, p, f.id)
    channels = []
    for name, c in sorted(view.get("channels", {}).items()):
        rows = sorted(c.get("versions", []), key=lambda r: (not r.get("present"), -(r.get("version_code") or 0)))
        for r in rows:
            r["released"] = _parse_iso(r.get("released_at"))
        channels.append({"name": name, "channel_id": c.get("channel_id"), "versions": rows})
    verdicts = [
        _verdict_row(x, f.name)
        for kind in ("tampered", "lookalikes", "drift", "stale_vulnerable")
        for x in view.get(kind, [])
    ]
    return {
        "filed_version": view.get("filed_version"),
        "channels": channels,
        "verdicts": verdicts,
        "open": sum(1 for x in verdicts if x["status"] == "open"),
    }


def _done_message(ok: str | None, lang: str) -> str | None:
    """The confirmation after a redirect names the action in the user's language."""
    if not ok:
        return None
    L = i18n.labels(lang)
    names = {"approved": L["approve"], "rejected": L["reject"], "uploaded": L["upload"], "dismissed": L["dismiss"]}
    return names.get(ok) or L.get(ok) or ok


@router.post("/apps/{filing_id}/review", response_class=HTMLResponse)
async def review_submit(request: Request, filing_id: int) -> Response:
    v = viewer(request)
    data = await form(request, v)
    decision = data.get("decision")
    if decision not in ("approved", "rejected"):
        raise Invalid("choose approve or reject", field="decision")
    if data.get("confirm") != "yes":
        raise Invalid("tick the confirmation box", field="confirm")
    reason = data.get("reason", "").strip()[:2000]
    if not reason:
        raise Invalid(i18n.labels(v.lang)["reason_required"], field="reason")
    ctx = _ctx(request)

    def run() -> None:
        with ctx.db.session() as db:
            filings.review(ctx, db, v.principal, filing_id, decision=decision, reason=reason)

    await run_in_threadpool(run)
    return redirect(f"{PREFIX}/apps/{filing_id}?ok={decision}")


@router.post("/apps/{filing_id}/action", response_class=HTMLResponse)
async def action_submit(request: Request, filing_id: int) -> Response:
    v = viewer(request)
    data = await form(request, v)
    action = data.get("action", "")
    if data.get("confirm") != "yes":
        raise Invalid("tick the confirmation box", field="confirm")
    reason = data.get("reason", "").strip()[:2000]
    if not reason:
        raise Invalid(i18n.labels(v.lang)["reason_required"], field="reason")
    days = _int(data.get("days"))
    ctx = _ctx(request)
    if ctx.loop is None:
        raise Conflict("the closed loop is not running")
    loop = ctx.loop
    await run_in_threadpool(lambda: loop.act(v.principal, filing_id, action, reason=reason, days=days))
    return redirect(f"{PREFIX}/apps/{filing_id}?ok={action}")


@router.post("/verdicts/{verdict_id}/dismiss")
async def verdict_dismiss(request: Request, verdict_id: int) -> Response:
    """A regulator closes a channel verdict as no threat (``ChannelService.dismiss``: audited)."""
    v = viewer(request)
    data = await form(request, v)
    ctx = _ctx(request)
    if not _can_dismiss(ctx, v):
        raise Forbidden("only regulators dismiss channel verdicts")
    if data.get("confirm") != "yes":
        raise Invalid("tick the confirmation box", field="confirm")
    reason = data.get("reason", "").strip()[:2000]
    if not reason:
        raise Invalid(i18n.labels(v.lang)["reason_required"], field="reason")
    svc = ctx.channels
    assert svc is not None

    def run() -> None:
        with ctx.db.session() as db:
            svc.dismiss(db, v.principal, verdict_id, reason)

    await run_in_threadpool(run)
    back = base.safe_next(data.get("back"))
    sep = "&" if "?" in back else "?"
    return redirect(f"{back}{sep}ok=dismissed")


@router.post("/apps/{filing_id}/upload")
async def upload(request: Request, filing_id: int, file_name: str = "upload.apk") -> Response:
    """The release as the raw body (console.js streams the chosen file); CSRF in a header."""
    v = viewer(request)
    base.check_csrf_header(request, v)
    name = "".join(ch for ch in file_name if ch.isprintable() and ch not in "/\\")[:255] or "upload.apk"
    ctx = _ctx(request)
    length = request.headers.get("content-length")
    declared = int(length) if length and length.isdigit() else None
    limit = await run_in_threadpool(versions.prepare_upload, ctx, v.principal, filing_id, declared)
    try:
        blob = await ctx.blobs.put_stream(request.stream(), limit)
    except BlobTooLarge:
        raise TooLarge(f"the package is larger than the limit of {limit} bytes", field="file") from None
    try:
        ver = await run_in_threadpool(versions.accept_upload, ctx, v.principal, filing_id, blob, name)
    except PlatformError as exc:
        return Response(
            json.dumps({"ok": False, "code": exc.code, "message": exc.message}, ensure_ascii=False),
            status_code=exc.status,
            media_type="application/json",
        )
    return Response(
        json.dumps({"ok": True, "version_id": ver.id, "redirect": f"{PREFIX}/apps/{filing_id}?ok=uploaded"}),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


# --- scans, comparison -------------------------------------------------------------------------------


@router.get("/scans/{scan_id}", response_class=HTMLResponse)
def scan_page(request: Request, scan_id: int) -> Response:
    v = viewer(request)
    ctx = _ctx(request)
    with ctx.db.session() as db:
        s = versions.get_scan(db, v.principal, scan_id)
        f = db.get(Filing, s.filing_id)
        ver = db.get(Version, s.version_id)
    from medrisk.reports.pdf import group_findings

    groups = group_findings(s.result, v.lang) if s.result else []
    return render(request, "scan.html", v, s=s, f=f, ver=ver, groups=groups, r=s.result)


def _finding_key(f: dict[str, Any]) -> str:
    return str(f.get("rule_id"))


@router.get("/apps/{filing_id}/compare", response_class=HTMLResponse)
def compare_page(request: Request, filing_id: int, a: int | None = None, b: int | None = None) -> Response:
    v = viewer(request)
    ctx = _ctx(request)
    with ctx.db.session() as db:
        f = filings.get_filing(db, v.principal, filing_id)
        done = [s for s in versions.list_scans(db, v.principal, filing_id=f.id) if s.status == "done"]
        if len(done) < 2 and (a is None or b is None):
            raise Conflict("comparing needs two finished scans")
        sa = versions.get_scan(db, v.principal, a) if a else done[-2]
        sb = versions.get_scan(db, v.principal, b) if b else done[-1]
        if sa.filing_id != f.id or sb.filing_id != f.id:
            raise NotFound("scan not found")
        vers = {x.id: x for x in versions.list_versions(db, v.principal, f.id)}
    fa = {_finding_key(x): x for x in (sa.result or {}).get("findings", []) if not x.get("suppressed")}
    fb = {_finding_key(x): x for x in (sb.result or {}).get("findings", []) if not x.get("suppressed")}
    fixed = [fa[k] for k in sorted(fa.keys() - fb.keys())]
    new = [fb[k] for k in sorted(fb.keys() - fa.keys())]
    same = [fb[k] for k in sorted(fa.keys() & fb.keys())]
    return render(
        request,
        "compare.html",
        v,
        f=f,
        sa=sa,
        sb=sb,
        va=vers.get(sa.version_id),
        vb=vers.get(sb.version_id),
        fixed=fixed,
        new=new,
        same=same,
        scans=done,
    )


# --- work queues ---------------------------------------------------------------------------------------


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request) -> Response:
    v = viewer(request)
    ctx = _ctx(request)
    p = v.principal
    posture.index_pending(ctx)
    now = utcnow()
    with ctx.db.session() as db:
        pending = [
            (f, o)
            for f, o in db.execute(
                scoped(
                    select(Filing, Organisation.name)
                    .join(Organisation, Organisation.id == Filing.org_id)
                    .where(Filing.status == "pending", Filing.org_id != p.org_id)
                    .order_by(Filing.updated_at),
                    p,
                    Filing,
                ).limit(200)
            ).all()
        ]
        from medrisk.store.models import PostureApp

        to_notice = db.execute(
            scoped(
                select(Filing, Disposition, PostureApp)
                .join(Disposition, Disposition.filing_id == Filing.id)
                .join(PostureApp, PostureApp.filing_id == Filing.id)
                .where(PostureApp.grade == "C", Disposition.state.in_(("filed", "monitoring", "warned", "reinstated"))),
                p,
                Filing,
            ).limit(200)
        ).all()
        overdue = db.execute(
            scoped(
                select(Filing, Disposition)
                .join(Disposition, Disposition.filing_id == Filing.id)
                .where(Disposition.state == "rectifying", Disposition.deadline_at <= now)
                .order_by(Disposition.deadline_at),
                p,
                Filing,
            ).limit(200)
        ).all()
    return render(request, "queue.html", v, pending=pending, to_notice=to_notice, overdue=overdue, now=now)


# --- audit -----------------------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    action: Annotated[str, Query(max_length=64)] = "",
    actor: Annotated[str, Query(max_length=64)] = "",
    target: Annotated[str, Query(max_length=128)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    verify: int = 0,
) -> Response:
    v = viewer(request)
    p = v.principal
    p.require(Perm.AUDIT_READ)
    ctx = _ctx(request)
    rep = None
    with ctx.db.session() as db:
        stmt = select(AuditEntry).order_by(AuditEntry.seq.desc())
        if action:
            stmt = stmt.where(AuditEntry.action.startswith(action, autoescape=True))
        if actor:
            stmt = stmt.where(AuditEntry.actor == actor)
        if target:
            stmt = stmt.where(AuditEntry.target.startswith(target, autoescape=True))
        rows = list(db.scalars(scoped(stmt, p, AuditEntry).limit(PAGE).offset((page - 1) * PAGE)))
        can_verify = p.is_admin or p.role is Role.AUDITOR
        if verify and can_verify:
            rep = audit.verify(ctx.keys, db)
            audit.record(ctx.keys, db, "audit.verified", actor=p, details={"ok": rep.ok, "entries": rep.entries})
        # the status without walking the chain: the last verification and the last signed checkpoint
        last_check = db.scalars(
            select(AuditEntry).where(AuditEntry.action == "audit.verified").order_by(AuditEntry.seq.desc()).limit(1)
        ).first()
        checkpoint = db.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)).first()
    return render(
        request,
        "audit.html",
        v,
        rows=rows,
        action=action,
        actor=actor,
        target=target,
        page=page,
        rep=rep,
        can_verify=can_verify,
        last_check=last_check,
        checkpoint=checkpoint,
        dumps=lambda d: json.dumps(d, ensure_ascii=False, sort_keys=True)[:300],
    )


# --- reports ---------------------------------------------------------------------------------------------


def _attachment(data: bytes, name: str, media: str) -> Response:
    headers = dict(SECURITY_HEADERS)
    headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return Response(data, media_type=media, headers=headers)


def _scan_report(request: Request, scan_id: int, fmt: str) -> tuple[Platform, Report, str]:
    v = viewer(request)
    ctx = _ctx(request)
    lang = v.lang
    from medrisk.reports.pdf import scan_report

    with ctx.db.session() as db:
        s = versions.get_scan(db, v.principal, scan_id)
        r = scan_report(ctx, db, v.principal, s, lang, fmt)
        audit.record(
            ctx.keys,
            db,
            "report.downloaded",
            actor=v.principal,
            org_id=s.org_id,
            target=f"report:{r.id}",
            details={"scan": s.id, "format": fmt},
        )
        db.expunge(r)
    return ctx, r, f"medrisk-scan-{scan_id}.{fmt}"


@router.get("/scans/{scan_id}/report.pdf")
async def scan_pdf(request: Request, scan_id: int) -> Response:
    ctx, r, name = await run_in_threadpool(_scan_report, request, scan_id, "pdf")
    return _attachment(signing.read(ctx, r), name, "application/pdf")


@router.get("/scans/{scan_id}/report.html")
async def scan_html(request: Request, scan_id: int) -> Response:
    ctx, r, name = await run_in_threadpool(_scan_report, request, scan_id, "html")
    return _attachment(signing.read(ctx, r), name, "text/html; charset=utf-8")


@router.get("/scans/{scan_id}/report.{fmt}.sig")
async def scan_sig(request: Request, scan_id: int, fmt: str) -> Response:
    if fmt not in ("pdf", "html"):
        raise NotFound("no such report")
    _ctx2, r, name = await run_in_threadpool(_scan_report, request, scan_id, fmt)
    return _attachment(signing.signature_der(r), name + ".sig", "application/octet-stream")


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, org: int | None = None) -> Response:
    v = viewer(request)
    ctx = _ctx(request)
    p = v.principal
    with ctx.db.session() as db:
        root = _root(db, v, org)
        rows = list(
            db.scalars(
                scoped(select(Report).where(Report.kind == "periodic").order_by(Report.id.desc()), p, Report).limit(100)
            )
        )
        subs = list(db.scalars(scoped(select(ReportSubscription), p, ReportSubscription)))
        endpoints = list(db.scalars(select(NotifyEndpoint).where(NotifyEndpoint.org_id == p.org_id)))
    from medrisk.reports.posture import previous_month

    return render(
        request,
        "reports.html",
        v,
        root=root,
        rows=rows,
        subs=subs,
        endpoints=endpoints,
        default_period=previous_month(utcnow()),
        can_subscribe=p.can(Perm.USER_WRITE) or p.can(Perm.CONFIG_WRITE),
        schedules=("monthly", "weekly", "quarterly"),
        message=request.query_params.get("ok"),
    )


@router.post("/reports/generate")
async def reports_generate(request: Request) -> Response:
    v = viewer(request)
    data = await form(request, v)
    v.principal.require(Perm.EXPORT)
    period = data.get("period", "")
    org_id = _int(data.get("org"), v.principal.org_id)
    ctx = _ctx(request)
    from medrisk.reports import statistics

    def run() -> int:
        with ctx.db.session() as db:
            root = orgs.get_org(db, v.principal, org_id)
            org = root.id
        r = statistics.generate(ctx, org, period, v.lang, actor=v.principal)
        return r.id

    rid = await run_in_threadpool(run)
    return redirect(f"{PREFIX}/reports?ok={rid}")


@router.post("/reports/subscribe")
async def reports_subscribe(request: Request) -> Response:
    v = viewer(request)
    data = await form(request, v)
    p = v.principal
    if not (p.can(Perm.USER_WRITE) or p.can(Perm.CONFIG_WRITE)) or not v.is_regulator_side:
        raise Forbidden("only regulators and administrators subscribe to periodic reports")
    ctx = _ctx(request)
    ep_id = _int(data.get("endpoint"))
    lang = "en" if data.get("lang") == "en" else "zh"
    schedule = data.get("period") or "monthly"  # monthly by default; weekly, quarterly on request
    if schedule not in ("monthly", "weekly", "quarterly"):
        raise Invalid("the schedule is monthly, weekly or quarterly", field="period")
    with ctx.db.session() as db:
        ep = db.get(NotifyEndpoint, ep_id)
        if ep is None or ep.org_id != p.org_id:
            raise NotFound("endpoint not found")
        exists = db.scalar(
            select(ReportSubscription.id).where(
                ReportSubscription.endpoint_id == ep.id, ReportSubscription.period == schedule
            )
        )
        if exists is None:
            sub = ReportSubscription(
                org_id=p.org_id,
                endpoint_id=ep.id,
                period=schedule,
                lang=lang,
                created_by=p.user_id,
                created_at=utcnow(),
            )
            db.add(sub)
            db.flush()
            audit.record(
                ctx.keys,
                db,
                "report.subscribed",
                actor=p,
                target=f"report_subscription:{sub.id}",
                details={"endpoint": ep.id, "period": schedule, "lang": lang},
            )
    return redirect(f"{PREFIX}/reports?ok=subscribed")


@router.get("/reports/{report_id}/download")
def report_download(request: Request, report_id: int) -> Response:
    v = viewer(request)
    ctx = _ctx(request)
    with ctx.db.session() as db:
        r = get_visible(db, v.principal, Report, report_id, "report")
        audit.record(ctx.keys, db, "report.downloaded", actor=v.principal, org_id=r.org_id, target=f"report:{r.id}")
        db.expunge(r)
    return _attachment(signing.read(ctx, r), f"medrisk-report-{r.id}.{r.fmt}", _media(r.fmt))


@router.get("/reports/{report_id}/signature")
def report_signature(request: Request, report_id: int) -> Response:
    v = viewer(request)
    ctx = _ctx(request)
    with ctx.db.session() as db:
        r = get_visible(db, v.principal, Report, report_id, "report")
        db.expunge(r)
    return _attachment(signing.signature_der(r), f"medrisk-report-{r.id}.{r.fmt}.sig", "application/octet-stream")


def _media(fmt: str) -> str:
    return {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}.get(fmt, "application/octet-stream")


# --- exports ---------------------------------------------------------------------------------------------


@router.get("/exports/{what}.{fmt}")
def export(request: Request, what: str, fmt: str, org: int | None = None) -> Response:
    v = viewer(request)
    if what not in ("apps", "findings") or fmt not in ("csv", "xlsx"):
        raise NotFound("no such export")
    ctx = _ctx(request)
    from medrisk.reports import exports as rx

    posture.index_pending(ctx)
    with ctx.db.session() as db:
        root = _root(db, v, org)
        data = rx.export(ctx, db, v.principal, root, what, fmt)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    media = "text/csv; charset=utf-8" if fmt == "csv" else rx.XLSX_MEDIA
    return _attachment(data, f"medrisk-{what}-{root.id}-{stamp}.{fmt}", media)


# --- the root of the site -----------------------------------------------------------------------------------

site = APIRouter(include_in_schema=False)


@site.get("/")
def site_root() -> RedirectResponse:
    return RedirectResponse(PREFIX + "/", status_code=307)
