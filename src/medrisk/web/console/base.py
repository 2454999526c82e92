"""Console plumbing: the cookie session, CSRF protection, language, templates and HTML errors.

The console uses the platform's own sessions (``platform.sessions``): the ``mrs_`` token sits in
an HttpOnly, SameSite=Strict cookie (Secure over HTTPS), never in a page or a URL. Every form
that changes something carries a CSRF token derived from the session token with HMAC-SM3, so
another site cannot forge it, and the request's Origin (when sent) must be this host. Templates
autoescape everything; the CSP allows no inline script.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jinja2
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from medrisk.crypto import hmac_sm3
from medrisk.platform import sessions
from medrisk.platform.context import Platform
from medrisk.platform.errors import Forbidden, Invalid, NotFound, PlatformError, Unauthenticated
from medrisk.platform.principal import Principal
from medrisk.platform.roles import Perm
from medrisk.web.console import i18n
from medrisk.web.deps import address

COOKIE = "medrisk_session"
LANG_COOKIE = "medrisk_lang"
PRELOGIN_COOKIE = "medrisk_prelogin"
PREFIX = "/console"
TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_FORM_BYTES = 64 * 1024

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginRequired(Exception):
    def __init__(self, target: str) -> None:
        self.target = target


def lang_of(request: Request) -> str:
    q = request.query_params.get("lang")
    if q in ("zh", "en"):
        return q
    return "en" if request.cookies.get(LANG_COOKIE) == "en" else "zh"


def is_https(request: Request) -> bool:
    ctx: Platform = request.app.state.platform
    if ctx.forwarded_header and request.headers.get("x-forwarded-proto", "").lower() == "https":
        return True
    return request.url.scheme == "https"


def csrf_token(session_token: str) -> str:
    return hmac_sm3(session_token.encode(), b"medrisk-console-csrf").hex()


def check_origin(request: Request) -> None:
    """A state-changing request from another origin is refused (defence in depth beside the token)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return
    if urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden("cross-origin request refused", code="csrf")


def safe_next(target: str | None) -> str:
    """Only local console paths (no scheme, no host, no protocol-relative //) after login."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


@dataclass
class Viewer:
    """The logged-in user as the console sees them."""

    principal: Principal
    token: str
    lang: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    @property
    def is_regulator_side(self) -> bool:
        from medrisk.platform.roles import REGULATOR_KINDS

        return self.principal.is_admin or self.principal.org_kind in {k.value for k in REGULATOR_KINDS}

    def can(self, perm: str) -> bool:
        return self.principal.can(Perm(perm))


def viewer(request: Request, *, allow_enrol: bool = False) -> Viewer:
    token = request.cookies.get(COOKIE, "")
    if not token.startswith(sessions.SESSION_PREFIX):
        raise LoginRequired(request.url.path)
    ctx: Platform = request.app.state.platform
    try:
        with ctx.db.session() as db:
            p = sessions.authenticate(db, token[:512], address(request))
    except Unauthenticated:
        raise LoginRequired(request.url.path) from None
    if p.extra.get("session_kind") == "totp_enrol" and not allow_enrol:
        raise LoginRequired("enrol")
    return Viewer(p, token, lang_of(request))


async def form(request: Request, v: Viewer | None = None, *, prelogin: bool = False) -> dict[str, str]:
    """The urlencoded form, after the CSRF checks (session token, or the pre-login cookie)."""
    check_origin(request)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Invalid("the form is too large", field="form")
    data = {k: vals[0] for k, vals in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    sent = data.get("csrf", "") or request.headers.get("x-csrf-token", "")
    if prelogin:
        expected = request.cookies.get(PRELOGIN_COOKIE, "")
    else:
        assert v is not None
        expected = v.csrf
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden("the form expired or did not come from this console: reload the page", code="csrf")
    return data


def check_csrf_header(request: Request, v: Viewer) -> None:
    check_origin(request)
    sent = request.headers.get("x-csrf-token", "")
    if not hmac.compare_digest(sent.encode(), v.csrf.encode()):
        raise Forbidden("missing or wrong CSRF token", code="csrf")


@cache
def env() -> jinja2.Environment:
    e = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    e.filters["dt"] = lambda d: d.strftime("%Y-%m-%d %H:%M") if d else "-"
    e.filters["day"] = lambda d: d.strftime("%Y-%m-%d") if d else "-"
    e.filters["urlq"] = lambda s: quote(str(s), safe="")
    return e


def render(request: Request, name: str, v: Viewer | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    lang = v.lang if v else lang_of(request)
    from medrisk.reports.i18n import pick, sev

    html = (
        env()
        .get_template(name)
        .render(
            request=request,
            v=v,
            lang=lang,
            L=i18n.labels(lang),
            role_name=lambda r: i18n.role_name(r, lang),
            state_name=lambda s: i18n.state_name(s, lang),
            pick=lambda t: pick(t, lang),
            sev=lambda s: sev(s, lang),
            path=request.url.path,
            **ctx,
        )
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    """303 See Other: after a POST the browser GETs the target (no re-submission on reload)."""
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="strict", secure=is_https(request), path=PREFIX, max_age=8 * 3600
    )


def prelogin_value(request: Request) -> str:
    """The login form's CSRF value: the browser's pre-login cookie, or a fresh random one."""
    value = request.cookies.get(PRELOGIN_COOKIE, "")
    return value if 20 <= len(value) <= 64 else secrets.token_urlsafe(24)


def set_prelogin(request: Request, response: Response, value: str) -> None:
    response.set_cookie(PRELOGIN_COOKIE, value, httponly=True, samesite="strict", secure=is_https(request), path=PREFIX)


class ConsoleRoute(APIRoute):
    """Errors become HTML pages (the API's JSON errors stay as they are) and logins redirect."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                if exc.target == "enrol":
                    return redirect(PREFIX + "/enrol")
                return redirect(f"{PREFIX}/login?next={quote(safe_next(exc.target), safe='/')}")
            except PlatformError as exc:
                status = exc.status
                v = None
                try:
                    v = viewer(request)
                except LoginRequired:
                    v = None
                L = i18n.labels(v.lang if v else lang_of(request))
                title = {404: L["not_found"], 403: L["forbidden"]}.get(status, L["error"])
                if isinstance(exc, NotFound):
                    message = L["not_found"]  # never say whether the row exists
                else:
                    message = exc.message
                return render(request, "error.html", v, status=status, title=title, message=message)

        return route
