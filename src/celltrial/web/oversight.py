"""Pages for the trial's oversight: monitoring queries, source-data verification and locks.

Every route needs a session, every form carries the session's CSRF token, and every subject
is looked up in the user's site scope first (outside it: 404, as for every other page). The
rules themselves (who may take which step, the query life cycle, what a lock refuses) live in
the store (:mod:`celltrial.store.permissions`, :mod:`celltrial.store.queries`,
:mod:`celltrial.store.sdv`, :mod:`celltrial.store.locks`); these routes only call them. A
store refusal for a role answers 403, a lock 423, a step the life cycle does not allow or a
missing reason 422 with the message on the page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from celltrial.errors import StoreError
from celltrial.store import DOMAINS, Store, UserInfo
from celltrial.store.engine import write_transaction
from celltrial.store.locks import (Locked, locks_of, set_record_lock, set_study_lock,
                                   set_subject_lock, stamp)
from celltrial.store.permissions import NotPermitted, may
from celltrial.store.queries import (STATUS_LABELS, Query, answer_query, close_query, get_query,
                                     list_queries, query_history, raise_query, reopen_query)
from celltrial.store.sdv import describe, sdv_current, set_sdv, verifications
from celltrial.store.signatures import (MEANINGS, OBJECTS, record_key, record_signatures,
                                        sign, signatures)
from celltrial.web import data
from celltrial.web.access import all_sites, sees_site
from celltrial.web.auth import Forbidden, check_form_csrf, current_user, store_of

router = APIRouter()
SOURCE = "web"
QUERY_ACTIONS = ("answer", "close", "reopen")


def _render(request: Request, name: str, **context: Any) -> Response:
    from celltrial.web.pages import render

    return render(request, name, **context)


def _allowed(user: UserInfo, action: str) -> None:
    if not may(user.role, action):
        raise Forbidden(f"Role {user.role} may not {action.replace('query.', '')} here")


def record_or_404(store: Store, study_id: str, usubjid: str, domain: str, seq: int,
                  user: UserInfo) -> dict[str, Any]:
    """One record of a subject in the user's scope (seq 0 for DM); NotFound otherwise."""
    if domain not in data.SUBJECT_DOMAINS:
        raise data.NotFound(domain)
    spec = DOMAINS[domain]
    for row in data.subject_domains(store, study_id, usubjid, user)[domain]:
        if spec.seq is None or row.get(spec.seq) == seq:
            return row
    raise data.NotFound(f"{domain} {seq}")


def visible_queries(store: Store, study_id: str, user: UserInfo, *,
                    usubjid: str | None = None,
                    statuses: tuple[str, ...] | None = None) -> list[Query]:
    """The study's queries on subjects the user sees."""
    data.study_or_404(store, study_id)
    return [q for q in list_queries(store, study_id, usubjid=usubjid, statuses=statuses)
            if sees_site(user, q.site_id)]


def query_or_404(store: Store, study_id: str, query_id: int, user: UserInfo) -> Query:
    """A query of a subject in the user's scope; NotFound otherwise (no leak)."""
    data.study_or_404(store, study_id)
    try:
        query = get_query(store, study_id, query_id)
    except StoreError as exc:
        raise data.NotFound(str(query_id)) from exc
    if not sees_site(user, query.site_id):
        raise data.NotFound(str(query_id))
    return query


def record_states(store: Store, study_id: str, usubjid: str,
                  domains: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """For the subject page: per record (``"LB 2"``; ``"DM 0"``) its SDV label, whether the
    flag is current, its lock and its queries not closed; plus the subject's and study's
    locks and the subject's queries."""
    flags = verifications(store, study_id, usubjid)
    locks = locks_of(store, study_id)
    queries = list_queries(store, study_id, usubjid=usubjid)
    signed: dict[str, list[str]] = {}
    for s in signatures(store, study_id, object_type="record", usubjid=usubjid):
        signed.setdefault(s.object_key, []).append(s.status)
    states: dict[str, Any] = {}
    for name, rows in domains.items():
        seq_name = DOMAINS[name].seq
        for row in rows:
            seq = int(row[seq_name]) if seq_name else 0
            flag = flags.get((name, usubjid, seq))
            lock = locks["records"].get((name, usubjid, seq))
            statuses = signed.get(record_key(name, usubjid, seq if seq_name else None), [])
            states[f"{name} {seq}"] = {
                "signatures": signature_summary(statuses),
                "seq": seq, "sdv": describe(flag, row["version"]),
                "verified": sdv_current(flag, row["version"]), "flagged": flag is not None,
                "lock": None if lock is None else f"locked by {lock.by}, {stamp(lock.at)}",
                "queries": sum(1 for q in queries if q.domain == name
                               and (q.seq or 0) == seq and q.status != "closed")}
    subject_lock = locks["subjects"].get(usubjid)
    return {"records": states, "queries": queries, "study_lock": locks["study"],
            "subject_lock": subject_lock, "stamp": stamp}


def signature_summary(statuses: list[str]) -> str:
    """``""``, ``"signed"``, ``"2 signatures, 1 broken"``: a record's signatures on the
    subject page (each ``valid`` or ``broken``). Pure."""
    if not statuses:
        return ""
    broken = statuses.count("broken")
    head = "signed" if len(statuses) == 1 else f"{len(statuses)} signatures"
    if broken == len(statuses):
        return f"{head}: broken" if len(statuses) == 1 else f"{head}, all broken"
    return head + (f", {broken} broken" if broken else "")


def dashboard(store: Store, study_id: str, user: UserInfo) -> dict[str, Any]:
    """For the study page (the site's dashboard): the queries not closed on subjects the
    user sees, their count per subject, and whether the database is locked."""
    pending = visible_queries(store, study_id, user, statuses=("open", "answered"))
    counts: dict[str, int] = {}
    for q in pending:
        counts[q.usubjid] = counts.get(q.usubjid, 0) + 1
    return {"open_queries": pending, "query_counts": counts,
            "study_locked": locks_of(store, study_id)["study"] is not None,
            "status_labels": STATUS_LABELS}


def abilities(user: UserInfo) -> dict[str, Any]:
    """Which oversight controls the subject page offers the user (the store checks again)."""
    return {"can_query": may(user.role, "query.raise"), "can_sdv": may(user.role, "sdv"),
            "can_lock": may(user.role, "lock"), "can_sign_record": may(user.role, "sign.record"),
            "status_labels": STATUS_LABELS}


async def _store_call(call: Callable[[], Any]) -> tuple[Any, str | None]:
    """Run a store write; (result, None), or (None, the message) for a refusal the page
    shows (Locked and NotPermitted propagate to their 423/403 handlers)."""
    try:
        return await run_in_threadpool(call), None
    except (Locked, NotPermitted):
        raise
    except StoreError as exc:
        return None, exc.message


def _notice_page(request: Request, title: str, message: str, back: str) -> Response:
    return _render(request, "oversight_refused.html", status_code=422, title=title,
                   message=message, back=back)


# ---------------------------------------------------------------- queries
@router.get("/studies/{study_id}/queries")
def queries_page(request: Request, study_id: str, status: str = "open") -> Response:
    user = current_user(request)
    store = store_of(request)
    info = data.study_or_404(store, study_id)
    wanted = {"open": ("open", "answered"), "closed": ("closed",), "all": None}.get(status)
    if status not in ("open", "closed", "all"):
        raise data.NotFound(status)
    return _render(request, "queries.html", study=info, status=status,
                   queries=visible_queries(store, study_id, user, statuses=wanted),
                   status_labels=STATUS_LABELS)


@router.get("/studies/{study_id}/subjects/{usubjid}/records/{domain}/{seq}/query")
def query_form(request: Request, study_id: str, usubjid: str, domain: str,
               seq: int) -> Response:
    user = current_user(request)
    _allowed(user, "query.raise")
    record = record_or_404(store_of(request), study_id, usubjid, domain, seq, user)
    return _render(request, "query_new.html", study_id=study_id, usubjid=usubjid,
                   domain=domain, seq=seq, record=record, fields=DOMAINS[domain].variables,
                   values={}, error=None)


@router.post("/studies/{study_id}/subjects/{usubjid}/records/{domain}/{seq}/query")
async def query_raise(request: Request, study_id: str, usubjid: str, domain: str,
                      seq: int) -> Response:
    user = current_user(request)
    form = await request.form()
    check_form_csrf(request, form)
    _allowed(user, "query.raise")
    store = store_of(request)
    record = await run_in_threadpool(record_or_404, store, study_id, usubjid, domain, seq,
                                     user)
    values = {"field": str(form.get("field") or ""), "text": str(form.get("text") or "")}
    query, error = await _store_call(lambda: raise_query(
        store, study_id, domain, usubjid, seq, values["text"], user=user.username,
        field=values["field"] or None, source=SOURCE))
    if error:
        return _render(request, "query_new.html", status_code=422, study_id=study_id,
                       usubjid=usubjid, domain=domain, seq=seq, record=record,
                       fields=DOMAINS[domain].variables, values=values, error=error)
    return RedirectResponse(f"/studies/{study_id}/queries/{query.id}", status_code=303)


@router.get("/studies/{study_id}/queries/{query_id}")
def query_page(request: Request, study_id: str, query_id: int) -> Response:
    user = current_user(request)
    store = store_of(request)
    query = query_or_404(store, study_id, query_id, user)
    return _query_page(request, store, query, user)


def _query_page(request: Request, store: Store, query: Query, user: UserInfo, *,
                error: str | None = None, status_code: int = 200) -> Response:
    from celltrial.web.capture import CORRECTABLE

    history = query_history(store, query.study_id, query)
    record = record_or_404(store, query.study_id, query.usubjid, query.domain, query.seq or 0,
                           user)
    return _render(request, "query.html", status_code=status_code, query=query,
                   history=history, record=record, labels=STATUS_LABELS, stamp=stamp,
                   can={a: may(user.role, f"query.{a}") for a in QUERY_ACTIONS},
                   correctable=query.domain in CORRECTABLE, error=error)


@router.post("/studies/{study_id}/queries/{query_id}/{action}")
async def query_step(request: Request, study_id: str, query_id: int, action: str) -> Response:
    user = current_user(request)
    form = await request.form()
    check_form_csrf(request, form)
    if action not in QUERY_ACTIONS:
        raise data.NotFound(action)
    _allowed(user, f"query.{action}")
    store = store_of(request)
    query = await run_in_threadpool(query_or_404, store, study_id, query_id, user)
    text = str(form.get("text") or "")
    steps = {"answer": lambda: answer_query(store, study_id, query.id, text,
                                            user=user.username, source=SOURCE),
             "close": lambda: close_query(store, study_id, query.id, user=user.username,
                                          note=text, source=SOURCE),
             "reopen": lambda: reopen_query(store, study_id, query.id, text,
                                            user=user.username, source=SOURCE)}
    _, error = await _store_call(steps[action])
    if error:
        return await run_in_threadpool(lambda: _query_page(request, store, query, user,
                                                           error=error, status_code=422))
    return RedirectResponse(f"/studies/{study_id}/queries/{query.id}", status_code=303)


def correct_and_answer(store: Store, study_id: str, query_id: int, correct: Callable[[], Any],
                       *, user: str, reason: str) -> Any:
    """The site's correction (``correct``: the web's correction path, with the version the
    person read) and its answer to the query, in ONE write transaction: both or neither."""
    with write_transaction(store.engine):
        record = correct()
        answer_query(store, study_id, query_id, f"Record corrected: {reason}", user=user,
                     source=SOURCE)
    return record


# ---------------------------------------------------------------- SDV, locks, signing
async def _posted_record(request: Request, study_id: str, usubjid: str, domain: str, seq: int,
                         action: str) -> tuple[UserInfo, Any, Store]:
    """For a form posted on one record: the user (whose role must allow ``action``), the
    form (its CSRF token checked) and the store, once the record is found in the user's
    scope (404 otherwise)."""
    user = current_user(request)
    form = await request.form()
    check_form_csrf(request, form)
    _allowed(user, action)
    store = store_of(request)
    await run_in_threadpool(record_or_404, store, study_id, usubjid, domain, seq, user)
    return user, form, store


def _back(study_id: str, usubjid: str) -> str:
    return f"/studies/{study_id}/subjects/{usubjid}"


@router.post("/studies/{study_id}/subjects/{usubjid}/records/{domain}/{seq}/sdv")
async def sdv_submit(request: Request, study_id: str, usubjid: str, domain: str,
                     seq: int) -> Response:
    """``verified`` 1 (verify the record at its current version) or 0 (clear; ``reason``)."""
    user, form, store = await _posted_record(request, study_id, usubjid, domain, seq, "sdv")
    verified = str(form.get("verified") or "") == "1"
    _, error = await _store_call(lambda: set_sdv(
        store, study_id, domain, usubjid, seq, verified=verified, user=user.username,
        reason=str(form.get("reason") or ""), source=SOURCE))
    if error:
        return _notice_page(request, "Verification not changed", error,
                            _back(study_id, usubjid))
    return RedirectResponse(_back(study_id, usubjid), status_code=303)


@router.post("/studies/{study_id}/subjects/{usubjid}/records/{domain}/{seq}/lock")
async def record_lock_submit(request: Request, study_id: str, usubjid: str, domain: str,
                             seq: int) -> Response:
    """``locked`` 1 (lock the record) or 0 (unlock; ``reason`` required)."""
    user, form, store = await _posted_record(request, study_id, usubjid, domain, seq, "lock")
    _, error = await _store_call(lambda: set_record_lock(
        store, study_id, domain, usubjid, seq, locked=str(form.get("locked") or "") == "1",
        user=user.username, reason=str(form.get("reason") or ""), source=SOURCE))
    if error:
        return _notice_page(request, "Lock not changed", error, _back(study_id, usubjid))
    return RedirectResponse(_back(study_id, usubjid), status_code=303)


@router.post("/studies/{study_id}/subjects/{usubjid}/lock")
async def subject_lock_submit(request: Request, study_id: str, usubjid: str) -> Response:
    """``locked`` 1 (lock the subject's casebook) or 0 (unlock; ``reason`` required)."""
    user = current_user(request)
    form = await request.form()
    check_form_csrf(request, form)
    _allowed(user, "lock")
    store = store_of(request)
    await run_in_threadpool(data.subject_or_404, store, study_id, usubjid, user)
    _, error = await _store_call(lambda: set_subject_lock(
        store, study_id, usubjid, locked=str(form.get("locked") or "") == "1",
        user=user.username, reason=str(form.get("reason") or ""), source=SOURCE))
    if error:
        return _notice_page(request, "Lock not changed", error, _back(study_id, usubjid))
    return RedirectResponse(_back(study_id, usubjid), status_code=303)


# ---------------------------------------------------------------- signing one record
def _record_url(study_id: str, usubjid: str, domain: str, seq: int) -> str:
    return f"/studies/{study_id}/subjects/{usubjid}/records/{domain}/{seq}/sign"


def _record_sign_page(request: Request, study_id: str, usubjid: str, domain: str, seq: int,
                      *, values: dict[str, str] | None = None,
                      errors: dict[str, str] | None = None,
                      status_code: int = 200) -> Response:
    store = store_of(request)
    user = current_user(request)
    record = record_or_404(store, study_id, usubjid, domain, seq, user)
    spec = DOMAINS[domain]
    found = record_signatures(store, study_id, domain, usubjid,
                              None if spec.seq is None else seq)
    return _render(request, "record_sign.html", status_code=status_code, study_id=study_id,
                   usubjid=usubjid, domain=domain, seq=seq, label=spec.label,
                   record=record, fields=spec.variables, found=found,
                   signed=list(reversed(found.signatures)),
                   meanings={m: MEANINGS[m] for m in OBJECTS["record"]},
                   can_sign=may(user.role, "sign.record"), values=values or {},
                   errors=errors or {})


@router.get("/studies/{study_id}/subjects/{usubjid}/records/{domain}/{seq}/sign")
def record_sign_page(request: Request, study_id: str, usubjid: str, domain: str,
                     seq: int) -> Response:
    """One record, its signatures (each valid or broken: whether the content hash it was
    signed with is the record's now) and, for a role that signs records, the signing form:
    the meaning, the user name and the password again (21 CFR 11.50, 11.70, 11.200)."""
    return _record_sign_page(request, study_id, usubjid, domain, seq)


@router.post("/studies/{study_id}/subjects/{usubjid}/records/{domain}/{seq}/sign")
async def record_sign_submit(request: Request, study_id: str, usubjid: str, domain: str,
                             seq: int) -> Response:
    """``meaning``, ``username``, ``password`` -> 303 back to the record's signing page; a
    refusal (wrong password, meaning, voided record, a repeat of a valid signature) 422
    next to its field with nothing signed (a wrong password counts towards the lockout)."""
    from celltrial.web.committee import field_of, lockout_of

    user, form, store = await _posted_record(request, study_id, usubjid, domain, seq, "sign.record")
    values = {"meaning": str(form.get("meaning") or ""),
              "username": str(form.get("username") or "")}
    spec = DOMAINS[domain]
    _, error = await _store_call(lambda: sign(
        store, study_id, "record", values["meaning"], user=user.username,
        username=values["username"], password=str(form.get("password") or ""),
        usubjid=usubjid, domain=domain, seq=None if spec.seq is None else seq,
        lockout_after=lockout_of(request), source=SOURCE))
    if error:
        return await run_in_threadpool(lambda: _record_sign_page(
            request, study_id, usubjid, domain, seq, values=values,
            errors={field_of(error): error}, status_code=422))
    return RedirectResponse(_record_url(study_id, usubjid, domain, seq) + "#signatures",
                            status_code=303)


@router.get("/studies/{study_id}/lock")
def study_lock_page(request: Request, study_id: str) -> Response:
    user = current_user(request)
    store = store_of(request)
    info = data.study_or_404(store, study_id)
    return _study_lock_page(request, store, info, user)


def _study_lock_page(request: Request, store: Store, info: Any, user: UserInfo, *,
                     error: str | None = None, reason: str = "",
                     status_code: int = 200) -> Response:
    locks = locks_of(store, info.id)
    pending = visible_queries(store, info.id, user, statuses=("open", "answered"))
    visible = {s["USUBJID"] for s in data.subjects(store, info.id, user)}
    subjects = {u: lock for u, lock in locks["subjects"].items() if u in visible}
    return _render(request, "study_lock.html", status_code=status_code, study=info,
                   lock=locks["study"], subjects=subjects, stamp=stamp,
                   pending=len(pending), can_lock=may(user.role, "lock") and all_sites(user),
                   error=error, reason=reason)


@router.post("/studies/{study_id}/lock")
async def study_lock_submit(request: Request, study_id: str) -> Response:
    """``locked`` 1 (lock the study's database) or 0 (unlock; ``reason`` required)."""
    user = current_user(request)
    form = await request.form()
    check_form_csrf(request, form)
    _allowed(user, "lock")
    store = store_of(request)
    info = await run_in_threadpool(data.study_or_404, store, study_id)
    if not all_sites(user):
        raise Forbidden("Only a user of every site may lock or unlock the study database")
    reason = str(form.get("reason") or "")
    _, error = await _store_call(lambda: set_study_lock(
        store, study_id, locked=str(form.get("locked") or "") == "1", user=user.username,
        reason=reason, source=SOURCE))
    if error:
        return await run_in_threadpool(lambda: _study_lock_page(
            request, store, info, user, error=error, reason=reason, status_code=422))
    return RedirectResponse(f"/studies/{study_id}/lock", status_code=303)

