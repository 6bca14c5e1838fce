"""The administrators' page ``/admin/users``: every user with role, site, status, last login
and failed logins; reset a password (the policy applies; the user's sessions are revoked),
disable an account (its sessions revoked) or enable it, unlock an account that failed logins
locked, record the printed name shown with a user's electronic signatures. Only roles whose
rule has ``users`` (admin) reach it, others get 403; every action is
a POST carrying the session's CSRF token and writes an audit row
(:mod:`celltrial.store.users`, ``append_audit``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from celltrial.errors import StoreError
from celltrial.store import UserInfo
from celltrial.store.signatures import full_names, set_full_name
from celltrial.store.users import (
    get_account,
    list_users,
    password_problem,
    set_disabled,
    set_password,
    unlock_user,
)
from celltrial.web.access import rule_of
from celltrial.web.auth import Forbidden, check_form_csrf, current_user, store_of
from celltrial.web.data import NotFound
from celltrial.web.sessions import active_session

router = APIRouter(prefix="/admin")
ACTIONS = ("password", "disable", "enable", "unlock", "name")


def stamp(at: dt.datetime | None) -> str:
    """A time as ``YYYY-MM-DD hh:mm`` UTC, or empty."""
    return "" if at is None else at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def _administrator(request: Request) -> UserInfo:
    user = current_user(request)
    if not rule_of(user).users:
        raise Forbidden(f"Role {user.role} may not administer users")
    return user


def _page(request: Request, *, status_code: int = 200, error: str | None = None,
          error_user: str | None = None) -> Response:
    from celltrial.web.pages import render

    notice = request.session.pop("notice", None)
    return render(request, "admin_users.html", status_code=status_code,
                  users=list_users(store_of(request)), stamp=stamp, notice=notice,
                  full_names=full_names(store_of(request)),
                  error=error, error_user=error_user)


@router.get("/users")
def users_page(request: Request) -> Response:
    _administrator(request)
    return _page(request)


@router.post("/users/{action}")
async def user_action(request: Request, action: str) -> Response:
    """One action on the user named by the form's ``username``."""
    admin = current_user(request)
    form = await request.form()
    check_form_csrf(request, form)
    if not rule_of(admin).users:
        raise Forbidden(f"Role {admin.role} may not administer users")
    if action not in ACTIONS:
        raise NotFound(action)
    username = str(form.get("username") or "")
    store = store_of(request)
    if await run_in_threadpool(get_account, store, username) is None:
        raise NotFound(username)
    reason = str(form.get("reason") or "").strip() or None
    try:
        notice = await _apply(request, action, username, admin, form, reason)
    except StoreError as exc:
        error = f"{username}: {exc.message}"
    else:
        request.session["notice"] = notice
        return RedirectResponse("/admin/users", status_code=303)
    return await run_in_threadpool(lambda: _page(request, status_code=422, error=error,
                                                 error_user=username))


async def _apply(request: Request, action: str, username: str, admin: UserInfo, form: Any,
                 reason: str | None) -> str:
    store = store_of(request)
    by = admin.username
    if action == "password":
        password = str(form.get("new_password") or "")
        problem = password_problem(password, username)
        if problem:
            raise StoreError(problem)
        own = active_session(request) if username == admin.username else None
        revoked = await run_in_threadpool(
            lambda: set_password(store, username, password, by=by,
                                 reason=reason or "password reset by an administrator",
                                 keep_session=own.key if own else None))
        return f"Password of {username} reset; {revoked} session(s) ended."
    if action == "name":  # the printed name shown with signatures (21 CFR 11.50)
        name = str(form.get("full_name") or "")
        await run_in_threadpool(lambda: set_full_name(store, username, name, by=by,
                                                      source="web"))
        return f"Full name of {username} recorded: {' '.join(name.split())}."
    if action == "disable":
        if username == admin.username:
            raise StoreError("Invalid `username`: got your own account, must be another "
                             "(an administrator cannot disable their own account)")
        done = await run_in_threadpool(lambda: set_disabled(store, username, True, by=by,
                                                            reason=reason))
        return f"{username} disabled; their sessions ended." if done else \
            f"{username} was already disabled."
    if action == "enable":
        done = await run_in_threadpool(lambda: set_disabled(store, username, False, by=by,
                                                            reason=reason))
        return f"{username} enabled." if done else f"{username} was already enabled."
    done = await run_in_threadpool(lambda: unlock_user(store, username, by=by, reason=reason))
    return f"{username} unlocked." if done else f"{username} was not locked."
