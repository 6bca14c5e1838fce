"""The user's own account: ``/account/password`` changes one's password (the current one
asked again; the policy applies; every other session of the user is revoked; audited)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from celltrial.errors import StoreError
from celltrial.store.users import password_problem, set_password, verify_password
from celltrial.web.auth import check_form_csrf, current_user, store_of
from celltrial.web.sessions import active_session

router = APIRouter(prefix="/account")


def _page(request: Request, *, status_code: int = 200, errors: dict[str, str] | None = None,
          done: bool = False) -> Response:
    from celltrial.web.pages import render

    return render(request, "account_password.html", status_code=status_code,
                  errors=errors or {}, done=done)


@router.get("/password")
def password_form(request: Request, done: int = 0) -> Response:
    current_user(request)
    return _page(request, done=bool(done))


@router.post("/password")
async def password_change(request: Request) -> Response:
    user = current_user(request)
    form = await request.form()
    check_form_csrf(request, form)
    current = str(form.get("current_password") or "")
    new = str(form.get("new_password") or "")
    confirm = str(form.get("confirm_password") or "")
    store = store_of(request)
    errors: dict[str, str] = {}
    if not await run_in_threadpool(verify_password, store, user.username, current):
        errors["current_password"] = "Invalid `current password`: it is not your password"
    problem = password_problem(new, user.username)
    if problem:
        errors["new_password"] = problem
    elif new != confirm:
        errors["confirm_password"] = "Invalid `confirmation`: must repeat the new password"
    if errors:
        return _page(request, status_code=422, errors=errors)
    session = active_session(request)
    try:
        await run_in_threadpool(lambda: set_password(
            store, user.username, new, by=user.username, reason="password changed by the user",
            keep_session=session.key if session else None))
    except StoreError as exc:
        return _page(request, status_code=422, errors={"new_password": exc.message})
    return RedirectResponse("/account/password?done=1", status_code=303)
