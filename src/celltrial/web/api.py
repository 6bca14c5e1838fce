"""The JSON API under /api (session cookie + ``X-CSRF-Token`` on writes).

Errors: 400 (body is not a JSON object), 422 ``{"detail": ..., "errors": {field: message}}``
(input refused; nothing written), 401 (not logged in), 403 (role or CSRF), 404 (no such
study or subject, or outside the user's sites). Entries take an optional ``Idempotency-Key``
header: the same key again writes nothing and answers 200 with the record first stored
(``"replayed": true``). 409 ``{"detail": ..., "current": record}``
(a correction named a version someone else has changed since; nothing written), 413 (body
over the size limit).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from celltrial.store import StaleRecord, UserInfo, list_studies
from celltrial.web import data
from celltrial.web.access import rule_of
from celltrial.web.auth import Forbidden, check_api_csrf, current_user, store_of
from celltrial.web.capture import ENTRY_DOMAINS, FieldErrors, correct, enter, void
from celltrial.web.limits import json_problem

router = APIRouter(prefix="/api")


def _refused(exc: FieldErrors) -> JSONResponse:
    return JSONResponse({"detail": exc.message, "errors": exc.errors}, status_code=422)


async def _body(request: Request) -> dict[str, Any] | JSONResponse:
    try:
        body = await request.json()
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return JSONResponse({"detail": "Invalid body: must be a JSON object"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"detail": f"Invalid body: got `{type(body).__name__}`, must be a "
                                       "JSON object"}, status_code=400)
    problem = json_problem(body)
    if problem:
        return JSONResponse({"detail": f"Invalid body: {problem}"}, status_code=400)
    return body


def writer(request: Request) -> UserInfo:
    """The logged-in user, allowed to write, with a valid CSRF header."""
    user = current_user(request)
    check_api_csrf(request)
    if not rule_of(user).write:
        raise Forbidden(f"Role {user.role} is read-only")
    return user


@router.get("/me")
def me(request: Request) -> dict[str, Any]:
    user = current_user(request)
    return {"username": user.username, "role": user.role, "site_id": user.site_id}


@router.get("/studies")
def studies(request: Request) -> list[dict[str, Any]]:
    current_user(request)
    return [{"id": s.id, "title": s.title, "protocol_version": s.protocol_version}
            for s in list_studies(store_of(request))]


@router.get("/studies/{study_id}/subjects")
def subjects(request: Request, study_id: str) -> list[dict[str, Any]]:
    user = current_user(request)
    return data.subjects(store_of(request), study_id, user)


@router.get("/studies/{study_id}/subjects/{usubjid}")
def subject(request: Request, study_id: str, usubjid: str) -> dict[str, Any]:
    user = current_user(request)
    return {"study_id": study_id, "usubjid": usubjid,
            "domains": data.subject_domains(store_of(request), study_id, usubjid, user)}


async def _enter(request: Request, study_id: str, kind: str) -> Response:
    user = writer(request)
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    usubjid = body.get("usubjid")
    if not isinstance(usubjid, str) or not usubjid:
        return JSONResponse({"detail": f"Invalid `usubjid`: got `{usubjid!r}`, must name a "
                                       "subject", "errors": {"usubjid": "required"}},
                            status_code=422)
    store = store_of(request)
    await run_in_threadpool(data.subject_or_404, store, study_id, usubjid, user)
    fields = {k: v for k, v in body.items() if k != "usubjid"}
    try:
        record, grading, replayed = await run_in_threadpool(
            enter, store, study_id, kind, usubjid, fields, user=user.username,
            submission=request.headers.get("Idempotency-Key"))
    except FieldErrors as exc:
        return _refused(exc)
    return JSONResponse({"domain": ENTRY_DOMAINS[kind], "record": data.records_one(record),
                         "grading": grading, "replayed": replayed},
                        status_code=200 if replayed else 201)


@router.post("/studies/{study_id}/labs")
async def labs(request: Request, study_id: str) -> Response:
    return await _enter(request, study_id, "labs")


@router.post("/studies/{study_id}/observations")
async def observations(request: Request, study_id: str) -> Response:
    return await _enter(request, study_id, "observations")


@router.post("/studies/{study_id}/adverse-events")
async def adverse_events(request: Request, study_id: str) -> Response:
    return await _enter(request, study_id, "adverse-events")


@router.post("/studies/{study_id}/corrections")
async def corrections(request: Request, study_id: str) -> Response:
    user = writer(request)
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    usubjid, domain, seq = body.get("usubjid"), body.get("domain"), body.get("seq")
    changes = body.get("changes")
    errors = {}
    if not isinstance(usubjid, str) or not usubjid:
        errors["usubjid"] = f"Invalid `usubjid`: got `{usubjid!r}`, must name a subject"
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq < 2**31:
        errors["seq"] = f"Invalid `seq`: got `{seq!r}`, must be the record's --SEQ"
    if not isinstance(changes, dict):
        errors["changes"] = f"Invalid `changes`: got `{changes!r}`, must be an object"
    if errors:
        return JSONResponse({"detail": "; ".join(errors.values()), "errors": errors},
                            status_code=422)
    store = store_of(request)
    await run_in_threadpool(data.subject_or_404, store, study_id, usubjid, user)
    try:
        record = await run_in_threadpool(
            correct, store, study_id, str(domain), (usubjid, seq), changes,
            user=user.username, reason=body.get("reason"), version=body.get("version"))
    except StaleRecord as exc:
        return JSONResponse({"detail": exc.message, "current": data.records_one(exc.current)},
                            status_code=409)
    except FieldErrors as exc:
        return _refused(exc)
    except LookupError as exc:
        raise data.NotFound(str(exc)) from exc
    return JSONResponse({"domain": domain, "record": data.records_one(record)})


@router.post("/studies/{study_id}/voids")
async def voids(request: Request, study_id: str) -> Response:
    """Mark a record entered in error: ``{"usubjid", "domain", "seq", "version", "reason"}``."""
    user = writer(request)
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    usubjid, domain, seq = body.get("usubjid"), body.get("domain"), body.get("seq")
    errors = {}
    if not isinstance(usubjid, str) or not usubjid:
        errors["usubjid"] = f"Invalid `usubjid`: got `{usubjid!r}`, must name a subject"
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq < 2**31:
        errors["seq"] = f"Invalid `seq`: got `{seq!r}`, must be the record's --SEQ"
    if errors:
        return JSONResponse({"detail": "; ".join(errors.values()), "errors": errors},
                            status_code=422)
    store = store_of(request)
    await run_in_threadpool(data.subject_or_404, store, study_id, usubjid, user)
    try:
        record = await run_in_threadpool(
            void, store, study_id, str(domain), (usubjid, seq), user=user.username,
            reason=body.get("reason"), version=body.get("version"))
    except StaleRecord as exc:
        return JSONResponse({"detail": exc.message, "current": data.records_one(exc.current)},
                            status_code=409)
    except FieldErrors as exc:
        return _refused(exc)
    except LookupError as exc:
        raise data.NotFound(str(exc)) from exc
    return JSONResponse({"domain": domain, "record": data.records_one(record)})


@router.get("/studies/{study_id}/audit")
def audit(request: Request, study_id: str) -> list[dict[str, Any]]:
    user = current_user(request)
    data.study_or_404(store_of(request), study_id)
    if not rule_of(user).audit:
        raise Forbidden(f"Role {user.role} may not read the audit trail")
    return data.audit(store_of(request), study_id, user)
