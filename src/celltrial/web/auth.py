"""Sessions, login/logout, lockout and CSRF.

- Session: server-side, in the store (:mod:`celltrial.web.sessions`,
  :mod:`celltrial.store.sessions`). The cookie ``celltrial_session`` (``HttpOnly``,
  ``SameSite=Lax``, ``Secure`` behind TLS) carries only a random token; a session ends at
  logout (its row revoked: a copied cookie is worthless), after the idle timeout, at the
  absolute lifetime, and when the account is disabled or its password set. The user (role,
  site) is read from the store on every request, so a changed role takes effect at once.
- Passwords: argon2id (:mod:`celltrial.store.users`), policy applied wherever one is set.
- Logins (:func:`celltrial.store.sessions.attempt_login`): every failure gives the same
  answer (:data:`WRONG_LOGIN`: it never says whether the user exists, is locked or disabled);
  consecutive failures lock the account (an administrator unlocks it); too many failures from
  one address answer 429 with ``Retry-After``.
- CSRF: one random token per session (new at each login). Every HTML form carries it in the
  hidden field ``csrf_token``; every JSON write must send it in the ``X-CSRF-Token`` header
  (``GET /api/csrf`` returns it). A cross-site form can neither read the token nor set a
  header, so it cannot write. ``POST /api/login`` accepts only ``application/json`` (a
  cross-site form cannot send that without a CORS preflight, which is not granted).
"""

from __future__ import annotations

import math
import secrets
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from celltrial.store import Store, UserInfo
from celltrial.store.sessions import LoginOutcome, attempt_login
from celltrial.web.sessions import (
    active_session,
    begin_session,
    client_address,
    end_session,
    settings_of,
)

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
WRONG_LOGIN = ("Wrong user name or password (an account is locked after repeated failures: "
               "ask an administrator)")

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


def optional_user(request: Request) -> UserInfo | None:
    """The logged-in user, or None."""
    active = active_session(request)
    return None if active is None else active.user


def current_user(request: Request) -> UserInfo:
    """The logged-in user (LoginRequired without a valid session: none, unknown, revoked,
    idle, too old, or the account disabled)."""
    user = optional_user(request)
    if user is None:
        raise LoginRequired()
    return user


def _safe_next(target: Any) -> str:
    if isinstance(target, str) and target.startswith("/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return "/studies"


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


async def _attempt(request: Request, username: str, password: str) -> LoginOutcome:
    settings = settings_of(request)
    return await run_in_threadpool(attempt_login, store_of(request), username, password,
                                   address=client_address(request), at=settings.now(),
                                   policy=settings.login)


def _throttled(retry_after: int) -> str:
    minutes = max(1, math.ceil(retry_after / 60))
    return (f"Too many failed logins from your address: try again in {minutes} "
            f"minute{'s' if minutes > 1 else ''}")


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
    outcome = await _attempt(request, username, password) if username else LoginOutcome(None)
    if outcome.retry_after is not None:
        response = render(request, "login.html", status_code=429, next=target,
                          error=_throttled(outcome.retry_after), username=username)
        response.headers["Retry-After"] = str(outcome.retry_after)
        return response
    if outcome.user is None:
        return render(request, "login.html", status_code=401, next=target, error=WRONG_LOGIN,
                      username=username)
    await begin_session(request, outcome.user)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    check_form_csrf(request, form)
    await end_session(request)
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
    if not isinstance(username, str) or not username or not isinstance(password, str):
        return JSONResponse({"detail": WRONG_LOGIN}, status_code=401)
    outcome = await _attempt(request, username, password)
    if outcome.retry_after is not None:
        return JSONResponse({"detail": _throttled(outcome.retry_after)}, status_code=429,
                            headers={"Retry-After": str(outcome.retry_after)})
    if outcome.user is None:
        return JSONResponse({"detail": WRONG_LOGIN}, status_code=401)
    token = await begin_session(request, outcome.user)
    user = outcome.user
    return JSONResponse({"username": user.username, "role": user.role,
                         "site_id": user.site_id, "csrf_token": token})


@router.post("/api/logout")
async def api_logout(request: Request) -> Response:
    current_user(request)
    check_api_csrf(request)
    await end_session(request)
    return JSONResponse({"logged_out": True})


@router.get("/api/csrf")
def api_csrf(request: Request) -> Response:
    current_user(request)
    return JSONResponse({"csrf_token": csrf_token(request)})
