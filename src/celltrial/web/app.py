"""The web application factory: ``create_app(database_url=None, secret_key=None, *,
max_body=None, settings=None)``.

Run with ``celltrial web serve`` (uvicorn). The database must exist (``celltrial db init``,
at migration 0008 or later: sessions, queries, locks, signatures and committee decisions live
in the store).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from celltrial.store import open_store
from celltrial.store.locks import Locked
from celltrial.store.permissions import NotPermitted
from celltrial.web.auth import Forbidden, LoginRequired, login_redirect
from celltrial.web.data import NotFound
from celltrial.web.limits import BodyLimit, max_body_bytes
from celltrial.web.sessions import SecurityHeaders, ServerSessions
from celltrial.web.settings import WebSettings

SECRET_ENV = "CELLTRIAL_SECRET_KEY"
log = logging.getLogger("celltrial.web")


def _secret(secret_key: str | None) -> str:
    key = secret_key or os.environ.get(SECRET_ENV)
    if key:
        return key
    message = (f"{SECRET_ENV} is not set: using a random per-process key; a login form "
               "opened before a restart (or served by another worker process) is refused "
               "(sessions themselves live in the store)")
    warnings.warn(message, stacklevel=3)
    log.warning(message)
    return secrets.token_urlsafe(48)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def create_app(database_url: str | None = None, secret_key: str | None = None, *,
               max_body: int | None = None, settings: WebSettings | None = None) -> FastAPI:
    """The FastAPI app on the store at ``database_url`` (default: the configured database).

    ``secret_key`` signs the login form's pre-session cookie (default
    ``$CELLTRIAL_SECRET_KEY``). ``max_body``: request body limit in bytes (default
    ``$CELLTRIAL_MAX_BODY_BYTES`` or 1 MiB); larger bodies are answered 413 before they are
    read. ``settings``: session timeouts, lockout, throttling and cookie security (default
    :meth:`WebSettings.from_env`, the ``CELLTRIAL_SESSION_*``, ``CELLTRIAL_LOGIN_*`` and
    ``CELLTRIAL_SECURE_COOKIES`` variables).
    """
    from celltrial.web import account, admin, api, auth, openapi, oversight, oversight_api, pages

    settings = settings if settings is not None else WebSettings.from_env()
    store = open_store(database_url)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(title="celltrial", summary="Trial data capture for CAR-T studies",
                  docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
                  lifespan=lifespan)
    openapi.install(app)  # request bodies in /api/openapi.json
    app.state.store = store
    app.state.settings = settings
    # The last added runs first: headers on every answer (a 413 included), then the body
    # limit, then the session.
    app.add_middleware(ServerSessions, store=store, settings=settings,
                       secret_key=_secret(secret_key))
    app.add_middleware(BodyLimit, limit=max_body_bytes(max_body))
    app.add_middleware(SecurityHeaders, secure=settings.secure_cookies)
    app.mount("/static", StaticFiles(directory=Path(__file__).with_name("static")),
              name="static")
    app.include_router(auth.router)
    app.include_router(api.router)
    app.include_router(admin.router)
    app.include_router(account.router)
    app.include_router(oversight_api.router)
    app.include_router(oversight.router)
    from celltrial.web import path_pages  # the subject's path (issue 10)

    app.include_router(path_pages.router)  # before pages: its {kind}/new is generic
    from celltrial.web import committee, signing  # issue 15 parts 4-5

    app.include_router(committee.router)  # before pages: .../enrol, .../sign
    app.include_router(committee.api_router)
    app.include_router(signing.router)
    app.include_router(signing.api_router)
    signing.install(pages.templates)  # the subject page lists the subject's signatures
    committee.install(pages.templates)  # the study page links the committee's page
    app.include_router(pages.router)

    @app.exception_handler(LoginRequired)
    def _login(request: Request, _exc: LoginRequired) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "Not logged in: POST /api/login first"},
                                status_code=401)
        return login_redirect(request)

    @app.exception_handler(Forbidden)
    def _forbidden(request: Request, exc: Forbidden) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=403)
        return pages.render(request, "error.html", status_code=403, title="Forbidden",
                            message=str(exc))

    @app.exception_handler(Locked)
    def _locked(request: Request, exc: Locked) -> Response:
        # 423 Locked (RFC 4918 11.3): the record, subject or study is locked; nothing written
        if _is_api(request):
            return JSONResponse({"detail": exc.message}, status_code=423)
        return pages.render(request, "error.html", status_code=423, title="Locked",
                            message=exc.message)

    @app.exception_handler(NotPermitted)
    def _not_permitted(request: Request, exc: NotPermitted) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.message}, status_code=403)
        return pages.render(request, "error.html", status_code=403, title="Forbidden",
                            message=exc.message)

    @app.exception_handler(NotFound)
    def _not_found(request: Request, _exc: NotFound) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "Not found"}, status_code=404)
        return pages.render(request, "error.html", status_code=404, title="Not found",
                            message="No such page, study or subject.")

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"detail": "Invalid request", "errors": exc.errors()},
                            status_code=422)

    return app
