"""The JSON API for queries, source-data verification and locks (under /api, the session
cookie, ``X-CSRF-Token`` on every write; the same store rules as the pages of
:mod:`celltrial.web.oversight`).

Errors as the rest of the API, plus: 403 a role the store's rule does not allow (or a
subject outside the user's site; a subject the user cannot see at all is 404), 423 the
record, subject or study is locked (nothing written), 422 a step the query life cycle does not
allow or a missing reason or text.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from celltrial.errors import StoreError
from celltrial.store import DOMAINS, StaleRecord, UserInfo
from celltrial.store.locks import (Locked, locks_of, set_record_lock, set_study_lock,
                                   set_subject_lock)
from celltrial.store.permissions import NotPermitted
from celltrial.store.queries import (Query, answer_query, close_query, raise_query,
                                     reopen_query)
from celltrial.store.sdv import set_sdv, verifications
from celltrial.web import data, oversight
from celltrial.web.access import all_sites
from celltrial.web.api import _body
from celltrial.web.auth import Forbidden, check_api_csrf, current_user, store_of
from celltrial.web.capture import FieldErrors, correct

router = APIRouter(prefix="/api")
SOURCE = "api"


def _user(request: Request) -> UserInfo:
    user = current_user(request)
    check_api_csrf(request)
    return user


def query_json(query: Query) -> dict[str, Any]:
    """A query as JSON (times ISO 8601 UTC)."""
    out = asdict(query)
    for name in ("raised_at", "answered_at", "closed_at"):
        if out[name] is not None:
            out[name] = out[name].isoformat()
    out["record"] = query.record
    return out


def _problem(message: str, status: int = 422) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def _record_ref(body: dict[str, Any]) -> tuple[str, str, int] | JSONResponse:
    usubjid, domain, seq = body.get("usubjid"), body.get("domain"), body.get("seq", 0)
    if not isinstance(usubjid, str) or not usubjid:
        return _problem(f"Invalid `usubjid`: got `{usubjid!r}`, must name a subject")
    if domain not in data.SUBJECT_DOMAINS:
        return _problem(f"Invalid `domain`: got `{domain!r}`, must be one of "
                        f"{list(data.SUBJECT_DOMAINS)}")
    if DOMAINS[str(domain)].seq is None:
        seq = 0
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**31:
        return _problem(f"Invalid `seq`: got `{seq!r}`, must be the record's --SEQ")
    return usubjid, str(domain), seq


async def _call(call: Any) -> Any:
    try:
        return await run_in_threadpool(call)
    except (Locked, NotPermitted, StaleRecord):
        raise
    except StoreError as exc:
        return _problem(exc.message)


@router.get("/studies/{study_id}/queries")
def queries(request: Request, study_id: str, status: str | None = None) -> Any:
    """Queries on subjects the user sees; ``status`` open, answered or closed filters."""
    user = current_user(request)
    wanted = None if status is None else (status,)
    if status not in (None, "open", "answered", "closed"):
        return _problem(f"Invalid `status`: got `{status!r}`, must be open, answered or "
                        "closed")
    return [query_json(q) for q in oversight.visible_queries(
        store_of(request), study_id, user, statuses=wanted)]


@router.post("/studies/{study_id}/queries")
async def raise_(request: Request, study_id: str) -> Response:
    """``{"usubjid", "domain", "seq", "field" (optional), "text"}`` -> 201 the query."""
    user = _user(request)
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    ref = _record_ref(body)
    if isinstance(ref, JSONResponse):
        return ref
    usubjid, domain, seq = ref
    store = store_of(request)
    await run_in_threadpool(oversight.record_or_404, store, study_id, usubjid, domain, seq,
                            user)
    field = body.get("field")
    if field is not None and not isinstance(field, str):
        return _problem(f"Invalid `field`: got `{field!r}`, must be a variable name")
    text = body.get("text")
    result = await _call(lambda: raise_query(
        store, study_id, domain, usubjid, seq, text if isinstance(text, str) else "",
        user=user.username, field=field or None, source=SOURCE))
    if isinstance(result, JSONResponse):
        return result
    return JSONResponse(query_json(result), status_code=201)


@router.post("/studies/{study_id}/queries/{query_id}/{action}")
async def step(request: Request, study_id: str, query_id: int, action: str) -> Response:
    """``answer`` ``{"text", "correction" (optional: {"changes", "version", "reason"})}``,
    ``close`` ``{"text" (optional)}``, ``reopen`` ``{"text"}`` -> the query. With a
    correction, the record is corrected (409 when ``version`` is stale) and the query
    answered in one transaction."""
    user = _user(request)
    if action not in oversight.QUERY_ACTIONS:
        raise data.NotFound(action)
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    store = store_of(request)
    query = await run_in_threadpool(oversight.query_or_404, store, study_id, query_id, user)
    text = body.get("text") if isinstance(body.get("text"), str) else ""
    correction = body.get("correction")
    if correction is not None:
        if action != "answer" or not isinstance(correction, dict) or not isinstance(
                correction.get("changes"), dict) or query.seq is None:
            return _problem("Invalid `correction`: must be an object with `changes`, "
                            "`version` and `reason`, only when answering a query on an "
                            "LB, XC or AE record")
        return await _correct_and_answer(store, query, correction, user)
    steps = {"answer": lambda: answer_query(store, study_id, query.id, text,
                                            user=user.username, source=SOURCE),
             "close": lambda: close_query(store, study_id, query.id, user=user.username,
                                          note=text, source=SOURCE),
             "reopen": lambda: reopen_query(store, study_id, query.id, text,
                                            user=user.username, source=SOURCE)}
    result = await _call(steps[action])
    return result if isinstance(result, JSONResponse) else JSONResponse(query_json(result))


async def _correct_and_answer(store: Any, query: Query, correction: dict[str, Any],
                              user: UserInfo) -> Response:
    from celltrial.store.queries import get_query

    reason = correction.get("reason")
    assert query.seq is not None

    def save() -> Any:
        return correct(store, query.study_id, query.domain, (query.usubjid, query.seq),
                       correction["changes"], user=user.username, reason=reason,
                       version=correction.get("version"))

    try:
        record = await run_in_threadpool(
            oversight.correct_and_answer, store, query.study_id, query.id, save,
            user=user.username, reason=str(reason or ""))
    except StaleRecord as exc:
        return JSONResponse({"detail": exc.message, "current": data.records_one(exc.current)},
                            status_code=409)
    except FieldErrors as exc:
        return JSONResponse({"detail": exc.message, "errors": exc.errors}, status_code=422)
    except (Locked, NotPermitted):
        raise
    except StoreError as exc:
        return _problem(exc.message)
    now = await run_in_threadpool(get_query, store, query.study_id, query.id)
    return JSONResponse({**query_json(now), "corrected": data.records_one(record)})


@router.post("/studies/{study_id}/sdv")
async def sdv(request: Request, study_id: str) -> Response:
    """``{"usubjid", "domain", "seq", "verified": true|false, "reason"}`` -> ``{"changed"}``."""
    user = _user(request)
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    ref = _record_ref(body)
    if isinstance(ref, JSONResponse):
        return ref
    usubjid, domain, seq = ref
    verified = body.get("verified")
    if not isinstance(verified, bool):
        return _problem(f"Invalid `verified`: got `{verified!r}`, must be true or false")
    store = store_of(request)
    await run_in_threadpool(oversight.record_or_404, store, study_id, usubjid, domain, seq,
                            user)
    result = await _call(lambda: set_sdv(
        store, study_id, domain, usubjid, seq, verified=verified, user=user.username,
        reason=body.get("reason") if isinstance(body.get("reason"), str) else None,
        source=SOURCE))
    return result if isinstance(result, JSONResponse) else JSONResponse({"changed": result})


@router.post("/studies/{study_id}/locks")
async def locks(request: Request, study_id: str) -> Response:
    """``{"level": "record"|"subject"|"study", "locked": true|false, "reason", "usubjid",
    "domain", "seq"}`` -> ``{"changed"}``; unlocking needs a reason."""
    user = _user(request)
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    level, locked = body.get("level"), body.get("locked")
    reason = body.get("reason") if isinstance(body.get("reason"), str) else None
    if level not in ("record", "subject", "study"):
        return _problem(f"Invalid `level`: got `{level!r}`, must be record, subject or study")
    if not isinstance(locked, bool):
        return _problem(f"Invalid `locked`: got `{locked!r}`, must be true or false")
    store = store_of(request)
    await run_in_threadpool(data.study_or_404, store, study_id)
    if level == "study":
        if not all_sites(user):
            raise Forbidden("Only a user of every site may lock or unlock the study database")
        call: Any = lambda: set_study_lock(  # noqa: E731
            store, study_id, locked=locked, user=user.username, reason=reason, source=SOURCE)
    elif level == "subject":
        usubjid = body.get("usubjid")
        if not isinstance(usubjid, str) or not usubjid:
            return _problem(f"Invalid `usubjid`: got `{usubjid!r}`, must name a subject")
        await run_in_threadpool(data.subject_or_404, store, study_id, usubjid, user)
        call = lambda: set_subject_lock(store, study_id, usubjid, locked=locked,  # noqa: E731
                                        user=user.username, reason=reason, source=SOURCE)
    else:
        ref = _record_ref(body)
        if isinstance(ref, JSONResponse):
            return ref
        usubjid, domain, seq = ref
        await run_in_threadpool(oversight.record_or_404, store, study_id, usubjid, domain,
                                seq, user)
        call = lambda: set_record_lock(store, study_id, domain, usubjid, seq,  # noqa: E731
                                       locked=locked, user=user.username, reason=reason,
                                       source=SOURCE)
    result = await _call(call)
    return result if isinstance(result, JSONResponse) else JSONResponse({"changed": result})


@router.get("/studies/{study_id}/locks")
def lock_state(request: Request, study_id: str) -> dict[str, Any]:
    """The study's database lock, and the locks and SDV flags of subjects the user sees."""
    user = current_user(request)
    store = store_of(request)
    data.study_or_404(store, study_id)
    sites = {s["USUBJID"] for s in data.subjects(store, study_id, user)}
    state = locks_of(store, study_id)

    def lock(info: Any) -> dict[str, Any] | None:
        return None if info is None else {"by": info.by, "at": info.at.isoformat(),
                                          "reason": info.reason}

    return {
        "study": lock(state["study"]),
        "subjects": {u: lock(i) for u, i in state["subjects"].items() if u in sites},
        "records": [{"domain": d, "usubjid": u, "seq": s, **(lock(i) or {})}
                    for (d, u, s), i in state["records"].items() if u in sites],
        "sdv": [{"domain": d, "usubjid": u, "seq": s, "by": v.by, "at": v.at.isoformat(),
                 "version": v.version}
                for (d, u, s), v in verifications(store, study_id).items() if u in sites],
    }

