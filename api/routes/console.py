"""The moderator console: server-rendered pages at ``/console`` and their form posts.

Thin: every read and every action goes through ``api.services.console``. Pages are Jinja2 templates
with htmx (vendored under ``/console/static``) for the live queue; there is no build step and nothing
is loaded from another origin (``Content-Security-Policy: default-src 'self'``). Every POST carries the
session's CSRF token; every refusal is a page that says what to do, with a 4xx status.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from api.deps import Services, get_services
from api.services import console as svc
from api.services.console import ConsoleError, ConsoleSession, QueueFilters

router = APIRouter(prefix="/console", include_in_schema=False)
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parents[1] / "templates"))
STATIC_DIR = Path(__file__).resolve().parents[1] / "static" / "console"


def _ts(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _ago(value: datetime | None) -> str:
    if value is None:
        return "-"
    secs = int((datetime.now(UTC) - value).total_seconds())
    if secs < 0:
        return "in " + _span(-secs)
    return _span(secs) + " ago"


def _span(secs: int) -> str:
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60} min"
    if secs < 86400:
        return f"{secs // 3600} h {secs % 3600 // 60} min"
    return f"{secs // 86400} d {secs % 86400 // 3600} h"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


TEMPLATES.env.filters.update(ts=_ts, ago=_ago, pct=_pct, span=_span)

LOGIN_CSRF_COOKIE = "safety_console_login"
_ID = re.compile(r"^[A-Za-z0-9_.:@#\-]{1,128}$")
_PLATFORM = re.compile(r"^[a-z0-9_\-]{1,32}$")
_CLAUSE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
CATEGORIES = ("targeted_insult", "identity_hate", "threat", "profanity")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class _Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def render(request: Request, template: str, context: dict[str, Any], *, status: int = 200,
           session: ConsoleSession | None = None) -> HTMLResponse:
    ctx = {"session": session, "csrf": session.csrf_token if session else "", "path": request.url.path,
           "categories": CATEGORIES, "actions": [a.value for a in svc.DECISION_ACTIONS], **context}
    response = TEMPLATES.TemplateResponse(request, template, ctx, status_code=status)
    return _secure(response)  # type: ignore[return-value]


def error_page(request: Request, status: int, message: str, session: ConsoleSession | None = None,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    titles = {400: "Bad request", 401: "Sign in first", 403: "Not allowed", 404: "Not found", 409: "Conflict",
              422: "Check your input", 429: "Slow down", 503: "Try again shortly"}
    page = render(request, "console/error.html", {"status": status, "title": titles.get(status, "Error"),
                                                  "message": message}, status=status, session=session)
    page.headers.update(headers or {})  # Retry-After of a 429 or 503
    return page


def redirect(url: str) -> RedirectResponse:
    return _secure(RedirectResponse(url, status_code=303))  # type: ignore[return-value]


async def _session(request: Request) -> tuple[Services, ConsoleSession]:
    services = get_services(request)
    session = await svc.load_session(services, token=request.cookies.get(svc.COOKIE_NAME))
    if session is None:
        raise _Redirect("/console/login?" + urlencode({"next": _local_next(request.url.path)}))
    await svc.count_request(services, session=session)
    return services, session


def _local_next(value: str | None) -> str:
    """Only paths of this console: never an open redirect to another site."""
    if value and value.startswith("/console/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/queue"


async def _form(request: Request, session: ConsoleSession) -> FormData:
    """The posted form, after checking the session's CSRF token (field ``csrf_token`` or header)."""
    form = await request.form()
    submitted = form.get("csrf_token") or request.headers.get("X-CSRF-Token")
    if not svc.csrf_ok(session, submitted if isinstance(submitted, str) else None):
        raise ConsoleError(403, "this form is missing its security token or it is stale (CSRF check failed); "
                                "reload the page and submit again")
    return form


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _check_id(value: str, what: str = "case id") -> str:
    if not _ID.match(value):
        raise ConsoleError(404, f"{what} {value[:64]!r} is not a valid id (letters, digits and _.:@#- only, at most "
                                "128 characters); open cases from the queue")
    return value


def _filters(request: Request) -> QueueFilters:
    q = request.query_params
    unknown = set(q.keys()) - {"platform", "channel", "category", "clause", "queue"}
    if unknown:
        raise ConsoleError(422, f"unknown filter {sorted(unknown)[0]!r}; the queue filters are platform, channel, "
                                "category, clause and queue")
    f = QueueFilters(platform=q.get("platform") or None, channel=q.get("channel") or None,
                     category=q.get("category") or None, clause=q.get("clause") or None, queue=q.get("queue") or None)
    if f.platform and not _PLATFORM.match(f.platform):
        raise ConsoleError(422, f"platform {f.platform[:40]!r} is not valid: lowercase letters, digits, _ and -")
    if f.channel and not _ID.match(f.channel):
        raise ConsoleError(422, "channel is not valid: at most 128 letters, digits and _.:@#-")
    if f.category and f.category not in CATEGORIES:
        raise ConsoleError(422, f"category {f.category[:40]!r} is unknown; choose one of {', '.join(CATEGORIES)}")
    if f.clause and not _CLAUSE.match(f.clause):
        raise ConsoleError(422, f"policy clause {f.clause[:40]!r} is not valid (e.g. H1)")
    if f.queue and f.queue not in svc.QUEUES:
        raise ConsoleError(422, f"queue {f.queue[:40]!r} is unknown; choose standard or senior")
    return f


PageBuilder = Callable[[Services, ConsoleSession], Awaitable[Response]]


async def _page(request: Request, build: PageBuilder) -> Response:
    """Run a page handler: sign-in redirects and ConsoleErrors become pages, never a 500 on input."""
    session: ConsoleSession | None = None
    try:
        services, session = await _session(request)
        return await build(services, session)
    except _Redirect as r:
        if request.headers.get("HX-Request"):
            resp = Response(status_code=401, headers={"HX-Redirect": r.url})
            return _secure(resp)
        return redirect(r.url)
    except ConsoleError as err:
        return error_page(request, err.status, err.message, session, err.headers)


# -- sign-in ---------------------------------------------------------------------------------------------

@router.get("")
async def root() -> Response:
    return redirect("/console/queue")


@router.get("/login")
async def login_page(request: Request, next: str | None = None, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "console/login.html", {"login_csrf": token, "next": _local_next(next)})
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/console",
                        secure=request.url.scheme == "https", max_age=3600)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    sent, expected = _text(form, "csrf_token"), request.cookies.get(LOGIN_CSRF_COOKIE, "")
    nxt = _local_next(_text(form, "next"))
    if not sent or not expected or not secrets.compare_digest(sent, expected):
        return error_page(request, 403, "the sign-in form is stale or did not come from this console (CSRF check "
                                        "failed); open /console/login again and sign in")
    services = get_services(request)
    try:
        token, session = await svc.sign_in(services, api_key=_text(form, "api_key"))
    except ConsoleError as err:
        fresh = secrets.token_urlsafe(24)
        page = render(request, "console/login.html", {"login_csrf": fresh, "next": nxt, "error": err.message},
                      status=err.status)
        page.headers.update(err.headers)
        page.set_cookie(LOGIN_CSRF_COOKIE, fresh, httponly=True, samesite="strict", path="/console",
                        secure=request.url.scheme == "https", max_age=3600)
        return page
    response = redirect(nxt)
    response.set_cookie(svc.COOKIE_NAME, token, httponly=True, samesite="strict", path="/console",
                        secure=request.url.scheme == "https", max_age=int(svc.SESSION_TTL.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    async def build(services: Services, session: ConsoleSession) -> Response:
        await _form(request, session)
        await svc.sign_out(services, session=session)
        response = redirect("/console/login")
        response.delete_cookie(svc.COOKIE_NAME, path="/console")
        return response

    return await _page(request, build)


# -- queue -----------------------------------------------------------------------------------------------

@router.get("/queue")
async def queue_page(request: Request) -> Response:
    async def build(services: Services, session: ConsoleSession) -> Response:
        filters = _filters(request)
        view = await svc.review_queue(services, filters=filters, key=session.key)
        flash = await svc.pop_flash(services, session=session)
        return render(request, "console/queue.html", {"view": view, "filters": filters, "flash": flash,
                                                      "rows_url": "/console/queue/rows?" + urlencode(filters.query())},
                      session=session)

    return await _page(request, build)


@router.get("/queue/rows")
async def queue_rows(request: Request) -> Response:
    async def build(services: Services, session: ConsoleSession) -> Response:
        view = await svc.review_queue(services, filters=_filters(request), key=session.key)
        return render(request, "console/_queue_rows.html", {"view": view}, session=session)

    return await _page(request, build)


@router.post("/queue/claim-next")
async def claim_next(request: Request) -> Response:
    async def build(services: Services, session: ConsoleSession) -> Response:
        await _form(request, session)
        filters = _filters(request)
        case_id = await svc.claim_next(services, session=session, filters=filters)
        if case_id is None:
            await svc.set_flash(services, session=session, message="Nothing to claim: every case in this queue is "
                                                                    "decided or claimed by someone else.")
            return redirect("/console/queue?" + urlencode(filters.query()))
        return redirect(f"/console/cases/{quote(case_id)}")

    return await _page(request, build)


@router.post("/cases/{case_id}/claim")
async def claim_case(request: Request, case_id: str) -> Response:
    async def build(services: Services, session: ConsoleSession) -> Response:
        await _form(request, session)
        _check_id(case_id)
        row = await svc.claim(services, session=session, case_id=case_id)
        await svc.set_flash(services, session=session,
                            message=f"Claimed until {row['expires_at']:%H:%M:%S} UTC; it is yours to decide.")
        return redirect(f"/console/cases/{quote(case_id)}")

    return await _page(request, build)


# -- case ------------------------------------------------------------------------------------------------

@router.get("/cases/{case_id}")
async def case_page(request: Request, case_id: str) -> Response:
    async def build(services: Services, session: ConsoleSession) -> Response:
        _check_id(case_id)
        page = await svc.case_page(services, session=session, case_id=case_id)
        if page is None:
            raise ConsoleError(404, f"no case with id {case_id}: it was not recorded (yet); clean messages are "
                                    "recorded too, so check the id or wait a second")
        flash = await svc.pop_flash(services, session=session)
        return render(request, "console/case.html", {**page, "flash": flash}, session=session)

    return await _page(request, build)


@router.get("/cases/{case_id}/live")
async def case_live(request: Request, case_id: str) -> Response:
    async def build(services: Services, session: ConsoleSession) -> Response:
        _check_id(case_id)
        page = await svc.case_page(services, session=session, case_id=case_id)
        if page is None:
            raise ConsoleError(404, f"no case with id {case_id}")
        return render(request, "console/_case_live.html", page, session=session)

    return await _page(request, build)


@router.post("/cases/{case_id}/decision")
async def decide(request: Request, case_id: str) -> Response:
    async def build(services: Services, session: ConsoleSession) -> Response:
        form = await _form(request, session)
        _check_id(case_id)
        body = svc.decision_input(violation=_text(form, "violation") or None, category=_text(form, "category"),
                                  actions=[a for a in form.getlist("actions") if isinstance(a, str)],
                                  timeout_minutes=_text(form, "timeout_minutes"), note=_text(form, "note"))
        outcome = await svc.decide(services, session=session, case_id=case_id, body=body)
        done = ", ".join(f"{a['action']} {a['status']}" for a in outcome["actions"]) or "no actions"
        message = f"Decided {case_id[:12]}: {outcome['decision']} ({done})."
        if _text(form, "then") == "next":
            nxt = await svc.claim_next(services, session=session, filters=QueueFilters())
            await svc.set_flash(services, session=session,
                                message=message + ("" if nxt else " The queue is empty."))
            return redirect(f"/console/cases/{quote(nxt)}" if nxt else "/console/queue")
        await svc.set_flash(services, session=session, message=message)
        return redirect(f"/console/cases/{quote(case_id)}")

    return await _page(request, build)


@router.post("/cases/{case_id}/overturn")
async def overturn(request: Request, case_id: str) -> Response:
    async def build(services: Services, session: ConsoleSession) -> Response:
        form = await _form(request, session)
        _check_id(case_id)
        await svc.overturn(services, session=session, case_id=case_id, reason=_text(form, "reason"))
        await svc.set_flash(services, session=session, message="Overturn started: the actions are being reverted, "
                                                               "the strike removed and the case marked a false "
                                                               "positive. This page updates by itself.")
        return redirect(f"/console/cases/{quote(case_id)}")

    return await _page(request, build)


@router.post("/preferences")
async def preferences(request: Request) -> Response:
    async def build(services: Services, session: ConsoleSession) -> Response:
        form = await _form(request, session)
        blur = _text(form, "blur")
        if blur not in ("on", "off"):
            raise ConsoleError(422, "blur must be 'on' or 'off'")
        await svc.set_blur_preference(services, moderator=session.moderator, blur=blur == "on")
        return redirect(_local_next(_text(form, "back")))

    return await _page(request, build)


# -- appeals ---------------------------------------------------------------------------------------------

@router.get("/appeals")
async def appeals_page(request: Request, status: str = "open") -> Response:
    async def build(services: Services, session: ConsoleSession) -> Response:
        if status not in ("open", "upheld", "overturned", "all"):
            raise ConsoleError(422, f"status {status[:40]!r} is unknown; choose open, upheld, overturned or all")
        rows = await svc.appeals_queue(services, status=None if status == "all" else status, key=session.key)
        flash = await svc.pop_flash(services, session=session)
        return render(request, "console/appeals.html", {"appeals": rows, "status": status, "flash": flash},
                      session=session)

    return await _page(request, build)


@router.post("/appeals/{appeal_id}/decision")
async def decide_appeal(request: Request, appeal_id: str) -> Response:
    async def build(services: Services, session: ConsoleSession) -> Response:
        form = await _form(request, session)
        _check_id(appeal_id, "appeal id")
        outcome = _text(form, "outcome")
        if outcome not in ("uphold", "overturn"):
            raise ConsoleError(422, "choose uphold or overturn")
        note = _text(form, "note")
        if outcome == "overturn" and not note.strip():
            raise ConsoleError(422, "an overturn needs a note: say why the action was wrong")
        result = await svc.decide_appeal(services, session=session, appeal_id=appeal_id, outcome=outcome, note=note)
        await svc.set_flash(services, session=session, message=f"Appeal {appeal_id[:8]}: {result['status']}.")
        return redirect("/console/appeals")

    return await _page(request, build)


# -- users, overview, admin ------------------------------------------------------------------------------

@router.get("/users/{platform}/{user_id}")
async def user_page(request: Request, platform: str, user_id: str) -> Response:
    async def build(services: Services, session: ConsoleSession) -> Response:
        if not _PLATFORM.match(platform):
            raise ConsoleError(404, f"platform {platform[:40]!r} is not valid: lowercase letters, digits, _ and -")
        _check_id(user_id, "user id")
        page = await svc.user_page(services, platform=platform, user_id=user_id, key=session.key)
        return render(request, "console/user.html", page, session=session)

    return await _page(request, build)


@router.get("/overview")
async def overview_page(request: Request, window: str = "24h") -> Response:
    async def build(services: Services, session: ConsoleSession) -> Response:
        if window not in svc.WINDOWS:
            raise ConsoleError(422, f"window {window[:40]!r} is unknown; choose 1h, 24h or 7d")
        page = await svc.overview(services, window=window, key=session.key)
        return render(request, "console/overview.html", {**page, "window": window, "windows": svc.WINDOWS},
                      session=session)

    return await _page(request, build)


@router.get("/admin/audit")
async def audit_page(request: Request, kind: str | None = None) -> Response:
    async def build(services: Services, session: ConsoleSession) -> Response:
        if not session.is_admin:
            raise ConsoleError(403, f"the audit log is for admins; your key '{session.moderator}' has role "
                                    f"'{session.key.role.value}'. Ask an admin, or verify the chain with "
                                    "`safety audit verify`")
        if kind is not None and not re.match(r"^[a-z._]{1,64}$", kind):
            raise ConsoleError(422, "kind is not valid (e.g. review, appeal.decided)")
        rows = await svc.audit_page(services, kind=kind or None, key=session.key)
        return render(request, "console/audit.html", {"rows": rows, "kind": kind or ""}, session=session)

    return await _page(request, build)


@router.get("/{rest:path}")
async def not_found(request: Request, rest: str) -> Response:
    return error_page(request, 404, f"there is no console page at /console/{rest[:80]}; start from the queue")
