"""The dose-escalation committee's page, its decisions and signatures, and the enrolment page
that allows only the dose level the signed decision opened (issue 15 part 5), as HTML pages
and as JSON under ``/api``.

- ``/studies/{study_id}/committee``: the current cohort's patients with each one's DLT
  adjudication (:func:`celltrial.derive.dlt.adjudicate`, the protocol's DLT rules), the
  design's recommended decision on the live data (:func:`celltrial.conduct.escalation.decide`),
  what enrolment allows now, the form to record a decision (action, dose level, a reason when
  it differs from the recommendation, the password re-entered to sign it), the other members'
  signing, and the history of decisions with their signatures (valid or broken).
- ``/studies/{study_id}/subjects/{usubjid}/enrol``: enrolment of a screened subject at the one
  dose level open now.

The review is computed once per version of the study's records and kept
(:data:`celltrial.store.committee.REVIEW_CACHE`, keyed by the newest audit row of the study's
clinical domains, read from the database, so both uvicorn workers answer from current data): a
repeat request with no new record answers in milliseconds instead of rebuilding ADSL.

The rules live in the store (:mod:`celltrial.store.committee`,
:mod:`celltrial.store.signatures`, :mod:`celltrial.store.permissions`): investigators of the
study record and sign decisions (FDA guidance on data monitoring committees 2006; ICH E6(R3)
3.10), investigators and coordinators enrol within their site, every other role reads. The
committee reviews the whole cohort, so the page lists its patients of every site (by USUBJID
only; a link only to the subjects the user may open). A refusal answers 422 with the message
next to its field and nothing written; a role 403; a locked study 423.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from celltrial.errors import StoreError
from celltrial.store import Store, UserInfo
from celltrial.store.committee import (ACTION_TEXT, ACTIONS, COMMITTEE, DecisionView, Opening,
                                       Review, decisions, enrol, enrolment_problem,
                                       get_decision, levels_of, opening, record_decision,
                                       review_study, sign_decision)
from celltrial.store.permissions import may
from celltrial.store.signatures import DECISION_MEANING_TEXT, WRONG_PASSWORD
from celltrial.web import data, path
from celltrial.web.api import _body
from celltrial.web.auth import check_api_csrf, check_form_csrf, current_user, store_of
from celltrial.web.oversight import _store_call as store_refusal  # (result, refusal message)
from celltrial.web.sessions import settings_of

router = APIRouter()
api_router = APIRouter(prefix="/api")

FIELDS = ("action", "dose_level", "reason", "meaning", "username", "password")
"""The fields of the decision and signature forms; a refusal is shown next to the one it
names."""


def protocol_or_404(study_id: str) -> Any:
    """The library protocol of the study (its DLT rules, dose levels and design)."""
    protocol = path.protocol_of(study_id)
    if protocol is None:
        raise data.NotFound(f"protocol of {study_id}")
    return protocol


def field_of(message: str) -> str:
    """The form field a store refusal names (``Invalid `reason`: ...`` -> reason; a wrong
    password -> password), ``_form`` otherwise. Pure."""
    if message.startswith(WRONG_PASSWORD[:30]):
        return "password"
    found = re.match(r"Invalid `(\w+)`", message)
    name = found.group(1) if found else ""
    return {"dose": "dose_level"}.get(name, name) if name in (*FIELDS, "dose") else "_form"


def lockout_of(request: Request) -> int:
    """Consecutive failed password entries that lock an account (the app's login policy,
    ``CELLTRIAL_LOGIN_LOCKOUT_FAILURES``): signing counts towards it as logging in does."""
    return settings_of(request).login.lockout_after


async def posted_form(request: Request) -> tuple[UserInfo, Any, Store]:
    """The signed-in user, the posted form (its CSRF token checked) and the store."""
    user = current_user(request)
    form = await request.form()
    check_form_csrf(request, form)
    return user, form, store_of(request)


async def decision_or_404(store: Store, study_id: str, decision_id: int) -> Any:
    """The study's protocol when ``decision_id`` is one of its decisions; NotFound else."""
    await run_in_threadpool(data.study_or_404, store, study_id)
    protocol = protocol_or_404(study_id)
    try:
        await run_in_threadpool(get_decision, store, study_id, decision_id)
    except StoreError as exc:
        raise data.NotFound(str(decision_id)) from exc
    return protocol


# ---------------------------------------------------------------- what the page shows
def decision_status(d: DecisionView, now_open: Opening) -> str:
    """``in effect``, ``superseded``, ``awaiting signatures (1 of 2)`` or ``changed after
    signing: not valid``. Pure."""
    if not d.intact:
        return "changed after signing: not valid"
    if not d.signed:
        members = {s.username for s in d.signatures if s.valid and s.meaning == "approved"
                   and s.role in COMMITTEE.signer_roles}
        return f"awaiting signatures ({len(members)} of {COMMITTEE.quorum})"
    return "in effect" if d.id == now_open.decision else "superseded"


def decision_json(d: DecisionView, now_open: Opening | None = None) -> dict[str, Any]:
    """A decision as JSON: its fields, basis, signatures (each with status) and status."""
    out = {name: getattr(d, name) for name in (
        "id", "cohort", "current_dose", "recommended_action", "recommended_dose",
        "recommended_reason", "action", "dose", "dose_level", "reason", "recorded_by",
        "recorded_at", "content_hash", "intact", "signed", "follows_recommendation",
        "basis")}
    out["signatures"] = [{"username": s.username, "full_name": s.full_name, "role": s.role,
                          "meaning": s.meaning, "statement": s.statement,
                          "signed_at": s.signed_at, "status": s.status}
                         for s in d.signatures]
    if now_open is not None:
        out["status"] = decision_status(d, now_open)
    return jsonable_encoder(out)


def opening_json(now_open: Opening) -> dict[str, Any]:
    return {"open": now_open.open, "dose_level": now_open.level.id if now_open.level else None,
            "label": now_open.level.label if now_open.level else None,
            "decision": now_open.decision, "places_left": now_open.slots,
            "reason": now_open.reason, "pending": list(now_open.pending)}


def review_json(r: Review, protocol: Any) -> dict[str, Any]:
    levels = levels_of(protocol)
    return jsonable_encoder({
        "cohort": None if r.cohort is None else {
            "number": r.cohort.number, "dose_level": r.cohort.level,
            "subjects": list(r.cohort.subjects), "first_infusion": r.cohort.first_infusion},
        "patients": r.patients, "counts": r.counts, "window_days": r.window_days,
        "current_dose_level": levels[r.current_dose - 1].id,
        "recommendation": {"action": r.action,
                           "dose_level": None if r.dose is None else levels[r.dose - 1].id,
                           "reason": r.reason, "design": r.design, "phase": r.phase,
                           "note": r.design_note}})


def committee_state(store: Store, protocol: Any) -> dict[str, Any]:
    """The review, what enrolment allows now, and every decision (newest first)."""
    study_id = str(protocol.id)
    r = review_study(store, protocol)
    return {"review": r, "opening": opening(store, protocol),
            "decisions": list(reversed(decisions(store, study_id)))}


def _signed_by(d: DecisionView, username: str) -> bool:
    return any(s.username == username and s.valid for s in d.signatures)


def _page(request: Request, study_id: str, protocol: Any, user: UserInfo, *,
          values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
          sign_errors: dict[int, str] | None = None, status_code: int = 200) -> Response:
    from celltrial.web.pages import render

    store = store_of(request)
    state = committee_state(store, protocol)
    r, now_open = state["review"], state["opening"]
    levels = levels_of(protocol)
    in_force = now_open.decision or 0
    can_decide = may(user.role, "sign.decision")
    rows = [{"d": d, "status": decision_status(d, now_open),
             "may_sign": can_decide and d.intact and d.id >= in_force
             and not _signed_by(d, user.username)} for d in state["decisions"]]
    subjects = {s["USUBJID"] for s in data.subjects(store, study_id, user)}
    recommended = (r.action, r.dose)
    return render(request, "committee.html", status_code=status_code,
                  study=data.study_or_404(store, study_id), review=r, opening=now_open,
                  levels=levels, rows=rows, can_decide=can_decide, actions=ACTIONS,
                  action_text=ACTION_TEXT, statement=DECISION_MEANING_TEXT,
                  recommended_level=None if r.dose is None else levels[r.dose - 1].id,
                  current_level=levels[r.current_dose - 1],
                  seen_action=recommended[0],
                  seen_dose="" if recommended[1] is None else str(recommended[1]),
                  linked=subjects, quorum=COMMITTEE.quorum,
                  values=values or {}, errors=errors or {}, sign_errors=sign_errors or {})


@router.get("/studies/{study_id}/committee")
def committee_page(request: Request, study_id: str) -> Response:
    user = current_user(request)
    data.study_or_404(store_of(request), study_id)
    return _page(request, study_id, protocol_or_404(study_id), user)


def _seen(action: Any, dose: Any) -> tuple[str, int | None] | None:
    if not action:
        return None
    try:
        return str(action), (int(dose) if dose not in (None, "") else None)
    except (TypeError, ValueError):
        return None


@router.post("/studies/{study_id}/committee/decisions")
async def decide_form(request: Request, study_id: str) -> Response:
    user, form, store = await posted_form(request)
    await run_in_threadpool(data.study_or_404, store, study_id)
    protocol = protocol_or_404(study_id)
    values = {name: str(form.get(name) or "") for name in ("action", "dose_level", "reason",
                                                           "username")}
    _decision, error = await store_refusal(lambda: record_decision(
        store, protocol, action=values["action"], dose_level=values["dose_level"] or None,
        reason=values["reason"], user=user.username, username=values["username"],
        password=str(form.get("password") or ""),
        seen=_seen(form.get("seen_action"), form.get("seen_dose")),
        lockout_after=lockout_of(request), source="web"))
    if error:
        return await run_in_threadpool(lambda: _page(
            request, study_id, protocol, user, values=values,
            errors={field_of(error): error}, status_code=422))
    return RedirectResponse(f"/studies/{study_id}/committee#decision-{_decision.id}",
                            status_code=303)


@router.post("/studies/{study_id}/committee/decisions/{decision_id}/sign")
async def sign_form(request: Request, study_id: str, decision_id: int) -> Response:
    user, form, store = await posted_form(request)
    protocol = await decision_or_404(store, study_id, decision_id)
    _done, error = await store_refusal(lambda: sign_decision(
        store, study_id, decision_id, user=user.username,
        username=str(form.get("username") or ""), password=str(form.get("password") or ""),
        lockout_after=lockout_of(request), source="web"))
    if error:
        return await run_in_threadpool(lambda: _page(
            request, study_id, protocol, user, sign_errors={decision_id: error},
            status_code=422))
    return RedirectResponse(f"/studies/{study_id}/committee#decision-{decision_id}",
                            status_code=303)


# ---------------------------------------------------------------- enrolment
def _enrol_page(request: Request, study_id: str, usubjid: str, protocol: Any, *,
                error: str | None = None, status_code: int = 200) -> Response:
    from celltrial.web.pages import render

    store = store_of(request)
    user = current_user(request)
    return render(request, "enrol.html", status_code=status_code, study_id=study_id,
                  usubjid=usubjid, opening=opening(store, protocol),
                  problem=enrolment_problem(store, study_id, usubjid), error=error,
                  can_enrol=may(user.role, "enrol"), protocol=protocol)


@router.get("/studies/{study_id}/subjects/{usubjid}/enrol")
def enrol_page(request: Request, study_id: str, usubjid: str) -> Response:
    user = current_user(request)
    data.subject_or_404(store_of(request), study_id, usubjid, user)
    return _enrol_page(request, study_id, usubjid, protocol_or_404(study_id))


@router.post("/studies/{study_id}/subjects/{usubjid}/enrol")
async def enrol_submit(request: Request, study_id: str, usubjid: str) -> Response:
    user, form, store = await posted_form(request)
    await run_in_threadpool(data.subject_or_404, store, study_id, usubjid, user)
    protocol = protocol_or_404(study_id)
    _dm, error = await store_refusal(lambda: enrol(
        store, protocol, usubjid, str(form.get("dose_level") or ""), user=user.username,
        source="web"))
    if error:
        return await run_in_threadpool(lambda: _enrol_page(
            request, study_id, usubjid, protocol, error=error, status_code=422))
    return RedirectResponse(f"/studies/{study_id}/subjects/{usubjid}", status_code=303)


# ---------------------------------------------------------------- JSON API
def _problem(message: str) -> JSONResponse:
    return JSONResponse({"detail": message, "field": field_of(message)}, status_code=422)


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    return value if isinstance(value, str) else ""


@api_router.get("/studies/{study_id}/committee")
def committee_json(request: Request, study_id: str) -> dict[str, Any]:
    """The review (cohort, DLT adjudications, counts, recommendation), what enrolment allows
    now, and every decision with its signatures, newest first."""
    current_user(request)
    store = store_of(request)
    data.study_or_404(store, study_id)
    protocol = protocol_or_404(study_id)
    state = committee_state(store, protocol)
    return {"review": review_json(state["review"], protocol),
            "opening": opening_json(state["opening"]),
            "decisions": [decision_json(d, state["opening"]) for d in state["decisions"]],
            "quorum": COMMITTEE.quorum, "signer_roles": list(COMMITTEE.signer_roles)}


@api_router.post("/studies/{study_id}/committee/decisions")
async def decide_json(request: Request, study_id: str) -> Response:
    """``{"action", "dose_level", "reason", "seen": {"action", "dose"}, "username",
    "password"}`` -> 201 the decision, signed by its recorder."""
    user = current_user(request)
    check_api_csrf(request)
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    store = store_of(request)
    await run_in_threadpool(data.study_or_404, store, study_id)
    protocol = protocol_or_404(study_id)
    seen = body.get("seen")
    seen_pair = _seen(seen.get("action"), seen.get("dose")) if isinstance(seen, dict) else None
    result, error = await store_refusal(lambda: record_decision(
        store, protocol, action=_text(body, "action"),
        dose_level=_text(body, "dose_level") or None, reason=_text(body, "reason"),
        user=user.username, username=_text(body, "username"),
        password=_text(body, "password"), seen=seen_pair, lockout_after=lockout_of(request),
        source="api"))
    if error:
        return _problem(error)
    return JSONResponse(decision_json(result, opening(store, protocol)), status_code=201)


@api_router.post("/studies/{study_id}/committee/decisions/{decision_id}/signatures")
async def sign_json(request: Request, study_id: str, decision_id: int) -> Response:
    """``{"username", "password"}`` -> 201 the decision with the new signature."""
    user = current_user(request)
    check_api_csrf(request)
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    store = store_of(request)
    protocol = await decision_or_404(store, study_id, decision_id)
    result, error = await store_refusal(lambda: sign_decision(
        store, study_id, decision_id, user=user.username, username=_text(body, "username"),
        password=_text(body, "password"), lockout_after=lockout_of(request), source="api"))
    if error:
        return _problem(error)
    return JSONResponse(decision_json(result, opening(store, protocol)), status_code=201)


@api_router.post("/studies/{study_id}/enrolments")
async def enrol_json(request: Request, study_id: str) -> Response:
    """``{"usubjid", "dose_level"}`` -> 201 the subject's DM record; 422 when the level is not
    the one open now (nothing written)."""
    user = current_user(request)
    check_api_csrf(request)
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    usubjid = _text(body, "usubjid")
    store = store_of(request)
    await run_in_threadpool(data.subject_or_404, store, study_id, usubjid, user)
    protocol = protocol_or_404(study_id)
    result, error = await store_refusal(lambda: enrol(
        store, protocol, usubjid, _text(body, "dose_level"), user=user.username,
        source="api"))
    if error:
        return _problem(error)
    return JSONResponse(jsonable_encoder({k: v for k, v in result.items()
                                          if k in ("USUBJID", "SITEID", "ARMCD", "ARM",
                                                   "version")}), status_code=201)



def committee_url(study_id: str) -> str | None:
    """The committee page of a study registered from a library protocol, else None (the
    study page links it only then)."""
    return None if path.protocol_of(study_id) is None else f"/studies/{study_id}/committee"


def install(templates: Any) -> None:
    """Make :func:`committee_url` a global of ``templates`` (the pages' Jinja2)."""
    templates.env.globals["committee_url"] = committee_url
