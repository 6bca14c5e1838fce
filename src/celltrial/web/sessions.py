"""Server-side sessions and security headers: two ASGI middlewares and the login/logout steps.

- :class:`ServerSessions`: the cookie ``celltrial_session`` carries only a random token; the
  session lives in the store (``celltrial.store.sessions``, table ``session``). Every request
  with the cookie looks its row up (with the user's role, site and whether the account is
  disabled): unknown, revoked, idle or too old -> no session (pages redirect to /login, the
  API answers 401) and the cookie is deleted. ``request.session`` is the session's small
  state (its CSRF token, the last entry saved), written back to the row when a request
  changed it. Before login, the state (only the login form's CSRF token) is kept in the
  signed cookie ``celltrial_anon`` (itsdangerous, the secret key), which no session depends on.
- :class:`SecurityHeaders`: Content-Security-Policy (no inline script or style, no framing),
  X-Frame-Options, X-Content-Type-Options, Referrer-Policy, ``Cache-Control: no-store`` on
  everything but static files, and HSTS when the app is served behind TLS.
- :func:`begin_session` (at login: a new token, so a token known before login is worthless
  after it) and :func:`end_session` (logout: the row is revoked).

Cookies are ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, and ``Secure`` when
:attr:`WebSettings.secure_cookies <celltrial.web.settings.WebSettings.secure_cookies>` says
the app is served behind TLS.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from itsdangerous import BadSignature, TimestampSigner
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request

from celltrial.store import Store, UserInfo
from celltrial.store.sessions import (
    ActiveSession,
    create_session,
    find_session,
    revoke_session,
    save_session_data,
)
from celltrial.web.settings import WebSettings

SESSION_COOKIE = "celltrial_session"
ANON_COOKIE = "celltrial_anon"
ACTIVE = "celltrial.session"
"""Scope key of the request's :class:`ActiveSession` (None: not logged in)."""
_NEW_TOKEN, _ENDED, _SAVED = "celltrial.new_token", "celltrial.ended", "celltrial.saved"

CONTENT_SECURITY_POLICY = ("default-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
                           "form-action 'self'")
SECURITY_HEADERS = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
)
HSTS = "max-age=31536000"


def _dump(state: dict[str, Any]) -> str:
    return json.dumps(state, sort_keys=True, separators=(",", ":"), default=str)


def _is_static(scope: dict[str, Any]) -> bool:
    return str(scope.get("path", "")).startswith("/static/")


def client_address(request: HTTPConnection) -> str | None:
    """The client's address as the server saw it (uvicorn's ``--proxy-headers`` and
    ``--forwarded-allow-ips`` decide whether a proxy's X-Forwarded-For is believed)."""
    return request.client.host if request.client else None


class ServerSessions:
    """ASGI middleware: the request's session from the store (see the module's text)."""

    def __init__(self, app: Any, *, store: Store, settings: WebSettings,
                 secret_key: str) -> None:
        self.app = app
        self.store = store
        self.settings = settings
        self.signer = TimestampSigner(secret_key, salt="celltrial-anonymous")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or _is_static(scope):
            await self.app(scope, receive, send)
            return
        cookies = HTTPConnection(scope).cookies
        token = cookies.get(SESSION_COOKIE)
        active: ActiveSession | None = None
        if token:
            settings = self.settings
            active = await run_in_threadpool(
                find_session, self.store, token, at=settings.now(),
                idle=settings.idle_timeout, lifetime=settings.session_lifetime)
        anon_cookie = cookies.get(ANON_COOKIE)
        state = dict(active.data) if active is not None else self._anonymous(anon_cookie)
        scope["session"] = state
        scope[ACTIVE] = active
        scope[_SAVED] = _dump(state)

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                await self._finish(scope, MutableHeaders(scope=message), token, anon_cookie)
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _anonymous(self, cookie: str | None) -> dict[str, Any]:
        if not cookie:
            return {}
        try:
            raw = self.signer.unsign(cookie, max_age=int(
                self.settings.session_lifetime.total_seconds()))
            state = json.loads(base64.urlsafe_b64decode(raw))
        except (BadSignature, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _cookie(self, name: str, value: str, max_age: int) -> str:
        text = f"{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
        if max_age <= 0:
            text += "; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        return text + ("; Secure" if self.settings.secure_cookies else "")

    async def _finish(self, scope: dict[str, Any], headers: MutableHeaders, token: str | None,
                      anon_cookie: str | None) -> None:
        active: ActiveSession | None = scope.get(ACTIVE)
        state: dict[str, Any] = scope["session"]
        lifetime = int(self.settings.session_lifetime.total_seconds())
        new_token = scope.get(_NEW_TOKEN)
        if new_token:
            headers.append("set-cookie", self._cookie(SESSION_COOKIE, new_token, lifetime))
        elif token and active is None:  # unknown, expired or just revoked: forget it
            headers.append("set-cookie", self._cookie(SESSION_COOKIE, "", 0))
        if active is not None:
            if anon_cookie:
                headers.append("set-cookie", self._cookie(ANON_COOKIE, "", 0))
            if _dump(state) != scope[_SAVED]:
                await run_in_threadpool(save_session_data, self.store, active.key, state)
            return
        if _dump(state) != scope[_SAVED] and state:
            payload = base64.urlsafe_b64encode(_dump(state).encode()).decode()
            signed = self.signer.sign(payload).decode()
            headers.append("set-cookie", self._cookie(ANON_COOKIE, signed, lifetime))


class SecurityHeaders:
    """ASGI middleware: the security headers above on every response."""

    def __init__(self, app: Any, *, secure: bool = False) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    if name not in headers:
                        headers[name] = value
                if not _is_static(scope) and "cache-control" not in headers:
                    headers["cache-control"] = "no-store"
                if self.secure and "strict-transport-security" not in headers:
                    headers["strict-transport-security"] = HSTS
            await send(message)

        await self.app(scope, receive, send_wrapper)


def settings_of(request: Request) -> WebSettings:
    """The app's :class:`WebSettings`."""
    return request.app.state.settings


def active_session(request: HTTPConnection) -> ActiveSession | None:
    """The request's valid session, or None."""
    return request.scope.get(ACTIVE)


async def begin_session(request: Request, user: UserInfo) -> str:
    """Log ``user`` in: a new session row and token (the cookie is set on the response), a
    new CSRF token (returned); a session the request had before is revoked."""
    settings = settings_of(request)
    store = request.app.state.store
    csrf = secrets.token_urlsafe(32)
    before = active_session(request)
    if before is not None:
        await run_in_threadpool(revoke_session, store, before.key, at=settings.now(),
                                reason="new login")
    token, active = await run_in_threadpool(
        create_session, store, user, at=settings.now(), data={"csrf": csrf},
        address=client_address(request), user_agent=request.headers.get("user-agent"),
        lifetime=settings.session_lifetime)
    request.scope[ACTIVE] = active
    request.scope[_NEW_TOKEN] = token
    request.scope.pop(_ENDED, None)
    request.session.clear()
    request.session.update(active.data)
    request.scope[_SAVED] = _dump(request.session)
    return csrf


async def end_session(request: Request, reason: str = "logout") -> None:
    """Log out: revoke the session's row (a copy of the cookie is worthless from now on)."""
    active = active_session(request)
    if active is not None:
        settings = settings_of(request)
        await run_in_threadpool(revoke_session, request.app.state.store, active.key,
                                at=settings.now(), reason=reason)
    request.scope[ACTIVE] = None
    request.scope[_ENDED] = True
    request.scope.pop(_NEW_TOKEN, None)
    request.session.clear()
    request.scope[_SAVED] = _dump(request.session)
