"""Sessions, login/logout and CSRF.

- Session: Starlette's signed cookie (itsdangerous), httponly, SameSite=Lax, 8 hours; it holds
  the user name and the CSRF token only. The user (role, site) is read from the store on every
  request, so a changed role takes effect at once.
- Passwords: :func:`celltrial.store.verify_password` (argon2id).
- CSRF: one random token per session (new at each login). Every HTML form carries it in the
  hidden field ``csrf_token``; every JSON write must send it in the ``X-CSRF-Token`` header
  (``GET /api/csrf`` returns it). A cross-site form can neither read the token nor set a
  header, so it cannot write. ``POST /api/login`` accepts only ``application/json`` (a
  cross-site form cannot send that without a CORS preflight, which is not granted).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from celltrial.store import Store, UserInfo, get_user, verify_password

SESSION_COOKIE = "celltrial_session"
SESSION_MAX_AGE = 8 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
WRONG_LOGIN = "Wrong user name or password"

router = APIRouter()


class LoginRequired(Exception):
    """No valid session: pages redirect to /login, the API answers 401."""


class Forbidden(Exception):
    """Authenticated but not allowed (role, CSRF): 403."""


def store_of(request: Request) -> Store:
    return request.app.state.store


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def _same(given: Any, request: Request) -> bool:
    expected = request.session.get("csrf")
    return (isinstance(given, str) and bool(expected)
            and secrets.compare_digest(given.encode(), str(expected).encode()))


def check_form_csrf(request: Request, form: Any) -> None:
    """403 unless the form's ``csrf_token`` equals the session's token."""
    if not _same(form.get(CSRF_FIELD), request):
        raise Forbidden("CSRF token missing or wrong: reload the form and submit again")


def check_api_csrf(request: Request) -> None:
    """403 unless the ``X-CSRF-Token`` header equals the session's token."""
    if not _same(request.headers.get(CSRF_HEADER), request):
        raise Forbidden(f"CSRF token missing or wrong: send the `{CSRF_HEADER}` header with "
                        "the token of GET /api/csrf")


def current_user(request: Request) -> UserInfo:
    """The logged-in user (LoginRequired when none or when the user no longer exists)."""
    username = request.session.get("user")
    if not username:
        raise LoginRequired()
    user = get_user(store_of(request), username)
    if user is None:
        request.session.clear()
        raise LoginRequired()
    return user


def _start_session(request: Request, username: str) -> str:
    request.session.clear()
    request.session["user"] = username
    request.session["csrf"] = token = secrets.token_urlsafe(32)
    return token


def _safe_next(target: Any) -> str:
    if isinstance(target, str) and target.startswith("/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return "/studies"


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


@router.get("/login")
def login_page(request: Request, next: str = "/studies") -> Response:
    from celltrial.web.pages import render

    return render(request, "login.html", next=_safe_next(next), error=None, username="")


@router.post("/login")
async def login(request: Request) -> Response:
    from celltrial.web.pages import render

    form = await request.form()
    check_form_csrf(request, form)
    username = str(form.get("username") or "")
    password = str(form.get("password") or "")
    target = _safe_next(form.get("next"))
    ok = bool(username) and await run_in_threadpool(verify_password, store_of(request),
                                                    username, password)
    if not ok:
        return render(request, "login.html", status_code=401, next=target, error=WRONG_LOGIN,
                      username=username)
    _start_session(request, username)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    check_form_csrf(request, form)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.post("/api/login")
async def api_login(request: Request) -> Response:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return JSONResponse({"detail": "Invalid `Content-Type`: must be application/json"},
                            status_code=415)
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"detail": "Invalid body: must be JSON"}, status_code=400)
    username = body.get("username") if isinstance(body, dict) else None
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(username, str) or not isinstance(password, str) or not await \
            run_in_threadpool(verify_password, store_of(request), username, password):
        return JSONResponse({"detail": WRONG_LOGIN}, status_code=401)
    token = _start_session(request, username)
    user = get_user(store_of(request), username)
    assert user is not None
    return JSONResponse({"username": user.username, "role": user.role,
                         "site_id": user.site_id, "csrf_token": token})


@router.post("/api/logout")
def api_logout(request: Request) -> Response:
    current_user(request)
    check_api_csrf(request)
    request.session.clear()
    return JSONResponse({"logged_out": True})


@router.get("/api/csrf")
def api_csrf(request: Request) -> Response:
    current_user(request)
    return JSONResponse({"csrf_token": csrf_token(request)})
