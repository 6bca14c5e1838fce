"""HTML pages: studies, subjects, entry forms (labs, CRS/ICANS, adverse events),
corrections and the audit trail. Plain server-rendered Jinja2, no JavaScript."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from celltrial.clinical.ae_terms import OUTCOMES
from celltrial.clinical.crs_icans import CRS_LEVELS, ICANS_LEVELS, ICE_ITEMS
from celltrial.errors import StoreError
from celltrial.store import DOMAINS, StaleRecord, UserInfo, list_studies
from celltrial.store.crosscheck import cross_check_warnings
from celltrial.store.locks import Locked
from celltrial.store.permissions import NotPermitted
from celltrial.store.plausibility import vocabularies
from celltrial.web import data, oversight
from celltrial.web.access import rule_of
from celltrial.web.auth import (CSRF_FIELD, Forbidden, check_form_csrf, csrf_token,
                                current_user, optional_user, store_of)
from celltrial.web.capture import (CORRECTABLE, ENTRY_DOMAINS, LAB_TESTS, FieldErrors,
                                   correct, enter, void)
from celltrial.web.forms import FormField, choices_of, plain_message, read_form

templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
router = APIRouter()


def render(request: Request, name: str, *, status_code: int = 200, **context: Any) -> Response:
    """A page with the user (if any) and the session's CSRF token in its context."""
    user = optional_user(request)
    return templates.TemplateResponse(request, name, {
        "user": user, "user_rule": rule_of(user) if user else None, "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token(request), **context}, status_code=status_code)


FORMS: dict[str, tuple[str, tuple[FormField, ...]]] = {
    "labs": ("Lab value (graded with CTCAE v5.0)", (
        FormField("test", "Test", "LBTESTCD", "select", required=True, choices=tuple(
            (t.code, f"{t.name} ({t.unit})") for t in LAB_TESTS.values())),
        FormField("value", "Result", "LBORRES", "number", required=True),
        FormField("unit", "Unit of the result", "LBORRESU",
                  hint="empty = the unit shown with the test, e.g. cells/uL or mg/dL"),
        FormField("lln", "Lower limit of normal", "LBORNRLO", "number",
                  hint="in the unit of the result"),
        FormField("uln", "Upper limit of normal", "LBORNRHI", "number",
                  hint="in the unit of the result"),
        FormField("date", "Collected on", "LBDTC", "datetime", required=True),
    )),
    "observations": ("Daily CRS/ICANS observation (graded with ASTCT 2019)", (
        FormField("date", "Observed on", "XCDTC", "datetime", required=True),
        FormField("temperature_c", "Temperature", "XCTEMP", "number", unit="\u00b0C"),
        FormField("fever_masked", "Fever masked by antipyretics or anti-cytokine therapy",
                  "XCFEVMSK", "yesno"),
        *(FormField(k, {"hypotension": "Hypotension", "oxygen": "Oxygen support"}[k],
                    f"XC{'HYPOT' if k == 'hypotension' else 'OXY'}", "select",
                    choices=choices_of(k, v)) for k, v in CRS_LEVELS.items()),
        FormField("ice_score", "ICE score", "XCICE", "integer",
                  hint="0-10; or give the five items below; empty = not assessable"),
        *(FormField(k, f"ICE: {k} (0-{most} points)", "", "integer")
          for k, most in ICE_ITEMS.items()),
        *(FormField(k, {"consciousness": "Level of consciousness", "seizure": "Seizure",
                        "motor": "Motor findings", "edema": "Raised intracranial pressure / "
                        "cerebral edema"}[k],
                    {"consciousness": "XCLOC", "seizure": "XCSEIZ", "motor": "XCMOTOR",
                     "edema": "XCEDEMA"}[k], "select", choices=choices_of(k, v))
          for k, v in ICANS_LEVELS.items()),
    )),
    "adverse-events": ("Adverse event", (
        FormField("term", "Reported term", "AETERM", required=True),
        FormField("decod", "CTCAE v5.0 term", "AEDECOD",
                  hint="empty = the reported term; spelt as in CTCAE v5.0"),
        FormField("grade", "Grade", "AETOXGR", "select", required=True,
                  choices=choices_of("grade", ("1", "2", "3", "4", "5"))),
        FormField("scale", "Grading scale", "AETOXSCL", "select",
                  choices=choices_of("scale", vocabularies("AE")["AETOXSCL"]),
                  hint="empty = ASTCT 2019 for CRS/ICANS, else CTCAE v5.0"),
        FormField("start", "Started on", "AESTDTC", "date", required=True),
        FormField("end", "Ended on", "AEENDTC", "date", hint="empty = ongoing"),
        FormField("serious", "Serious", "AESER", "yesno", required=True),
        FormField("related", "Relatedness to the CAR-T product", "AEREL", "select",
                  required=True, choices=choices_of("related", vocabularies("AE")["AEREL"])),
        FormField("outcome", "Outcome", "AEOUT", "select",
                  choices=choices_of("outcome", OUTCOMES)),
    )),
}
"""The entry forms (:mod:`celltrial.web.forms`): human labels, the SDTM variable as the
tooltip, readable choices, date pickers, required fields marked."""


def _writer(request: Request) -> UserInfo:
    user = current_user(request)
    if not rule_of(user).write:
        raise Forbidden(f"Role {user.role} is read-only")
    return user


@router.get("/")
def home(request: Request) -> Response:
    current_user(request)
    return RedirectResponse("/studies", status_code=303)


@router.get("/studies")
def studies(request: Request) -> Response:
    current_user(request)
    return render(request, "studies.html", studies=list_studies(store_of(request)))


@router.get("/studies/{study_id}")
def study(request: Request, study_id: str) -> Response:
    user = current_user(request)
    store = store_of(request)
    info = data.study_or_404(store, study_id)
    return render(request, "study.html", study=info,
                  subjects=data.subjects(store, study_id, user), rule=rule_of(user),
                  **oversight.dashboard(store, study_id, user))


@router.get("/studies/{study_id}/subjects/{usubjid}")
def subject(request: Request, study_id: str, usubjid: str) -> Response:
    user = current_user(request)
    store = store_of(request)
    domains = data.subject_domains(store, study_id, usubjid, user)
    from celltrial.web.path_pages import subject_context

    path_context = subject_context(store, study_id, usubjid, domains,
                                   dict(request.query_params))
    return render(request, "subject.html", study=data.study_or_404(store, study_id),
                  usubjid=usubjid, domains=domains, labels=DOMAINS, rule=rule_of(user),
                  warnings=cross_check_warnings(domains),
                  correctable=CORRECTABLE,
                  oversight=oversight.record_states(store, study_id, usubjid, domains),
                  **oversight.abilities(user), **path_context)


def _form_page(request: Request, study_id: str, usubjid: str, kind: str, *, values: Any,
               errors: Any, status_code: int = 200, submission: str | None = None) -> Response:
    title, fields = FORMS[kind]
    return render(request, "entry.html", status_code=status_code, study_id=study_id,
                  usubjid=usubjid, kind=kind, title=title, fields=fields, values=values,
                  errors=errors, submission=submission or uuid.uuid4().hex)


@router.get("/studies/{study_id}/subjects/{usubjid}/{kind}/new")
def entry_form(request: Request, study_id: str, usubjid: str, kind: str) -> Response:
    user = _writer(request)
    if kind not in FORMS:
        raise data.NotFound(kind)
    data.subject_or_404(store_of(request), study_id, usubjid, user)
    return _form_page(request, study_id, usubjid, kind, values={}, errors={})


@router.post("/studies/{study_id}/subjects/{usubjid}/{kind}/new")
async def entry_submit(request: Request, study_id: str, usubjid: str, kind: str) -> Response:
    """Write the entry once (the form's ``submission`` key), then redirect to its page
    (post/redirect/get: reloading the result never submits again)."""
    user = current_user(request)
    form = await request.form()
    check_form_csrf(request, form)
    if not rule_of(user).write:
        raise Forbidden(f"Role {user.role} is read-only")
    if kind not in FORMS:
        raise data.NotFound(kind)
    store = store_of(request)
    await run_in_threadpool(data.subject_or_404, store, study_id, usubjid, user)
    values = {f.name: str(form.get(f.name) or "") for f in FORMS[kind][1]}
    submission = str(form.get("submission") or "") or None
    _typed, plain = read_form(FORMS[kind][1], form)  # missing, not a number, not a date
    try:
        if plain:
            raise FieldErrors(plain)
        record, grading, replayed = await run_in_threadpool(
            enter, store, study_id, kind, usubjid, values, user=user.username,
            submission=submission)
    except FieldErrors as exc:
        errors = {k: plain_message(v) for k, v in exc.errors.items()}
        return _form_page(request, study_id, usubjid, kind, values=values,
                          errors=errors, status_code=422, submission=submission)
    domain = ENTRY_DOMAINS[kind]
    seq = int(record[f"{domain}SEQ"])
    request.session["saved"] = {"domain": domain, "seq": seq, "grading": grading,
                                "replayed": replayed}
    return RedirectResponse(f"/studies/{study_id}/subjects/{usubjid}/{kind}/saved/{seq}",
                            status_code=303)


@router.get("/studies/{study_id}/subjects/{usubjid}/{kind}/saved/{seq}")
def entry_saved(request: Request, study_id: str, usubjid: str, kind: str, seq: int
                ) -> Response:
    """The stored entry with its grade (the grading details of the save just made)."""
    user = current_user(request)
    if kind not in FORMS:
        raise data.NotFound(kind)
    domain = ENTRY_DOMAINS[kind]
    record = _stored(request, study_id, usubjid, domain, seq, user)
    saved = request.session.get("saved") or {}
    if (saved.get("domain"), saved.get("seq")) == (domain, seq):
        grading, replayed = saved["grading"], saved.get("replayed", False)
    else:
        grading, replayed = _stored_grading(domain, record), False
    return render(request, "saved.html", study_id=study_id, usubjid=usubjid, kind=kind,
                  title=FORMS[kind][0], record=data.records_one(record), grading=grading,
                  replayed=replayed)


def _stored_grading(domain: str, record: dict[str, Any]) -> dict[str, Any]:
    """The grades as stored (when the page is opened later than the save)."""
    if domain == "LB":
        return {"grade": record.get("LBTOXGR"), "term": record.get("LBTEST"), "rule": None,
                "assumed": None}
    if domain == "XC":
        return {"crs": record.get("XCCRSGR"), "icans": record.get("XCICAGR")}
    return {"grade": record.get("AETOXGR"), "scale": record.get("AETOXSCL")}


def _correction_page(request: Request, study_id: str, usubjid: str, domain: str, seq: int,
                     *, record: dict[str, Any], values: dict[str, Any], errors: Any,
                     reason: str = "", status_code: int = 200,
                     query: int | None = None) -> Response:
    labels = {v.name: v.label for v in DOMAINS[domain].variables}
    return render(request, "correct.html", status_code=status_code, study_id=study_id,
                  usubjid=usubjid, domain=domain, seq=seq, record=record, values=values,
                  fields=[(c, labels[c]) for c in CORRECTABLE[domain]], errors=errors,
                  reason=reason, query=query)


def _stored(request: Request, study_id: str, usubjid: str, domain: str, seq: int,
            user: UserInfo) -> dict[str, Any]:
    if domain not in CORRECTABLE:
        raise data.NotFound(domain)
    rows = data.subject_domains(store_of(request), study_id, usubjid, user)[domain]
    for row in rows:
        if row.get(f"{domain}SEQ") == seq:
            return row
    raise data.NotFound(f"{domain} {seq}")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    return str(value)


@router.get("/studies/{study_id}/subjects/{usubjid}/records/{domain}/{seq}/correct")
def correction_form(request: Request, study_id: str, usubjid: str, domain: str,
                    seq: int, query: int | None = None) -> Response:
    """The correction form; ``query``: the query this correction answers (its page links
    here), checked to be a query on this record that the user sees."""
    user = _writer(request)
    record = _stored(request, study_id, usubjid, domain, seq, user)
    if query is not None:
        _query_on(request, query, study_id, usubjid, domain, seq, user)
    values = {c: _text(record.get(c)) for c in CORRECTABLE[domain]}
    return _correction_page(request, study_id, usubjid, domain, seq, record=record,
                            values=values, errors={}, query=query)


def _query_on(request: Request, query_id: Any, study_id: str, usubjid: str, domain: str,
              seq: int, user: UserInfo) -> int:
    """The id of a query on this very record in the user's scope; NotFound otherwise."""
    try:
        number = int(str(query_id))
    except ValueError as exc:
        raise data.NotFound(str(query_id)) from exc
    found = oversight.query_or_404(store_of(request), study_id, number, user)
    if (found.usubjid, found.domain, found.seq) != (usubjid, domain, seq):
        raise data.NotFound(str(query_id))
    return number


@router.post("/studies/{study_id}/subjects/{usubjid}/records/{domain}/{seq}/correct")
async def correction_submit(request: Request, study_id: str, usubjid: str, domain: str,
                            seq: int) -> Response:
    user = current_user(request)
    form = await request.form()
    check_form_csrf(request, form)
    if not rule_of(user).write:
        raise Forbidden(f"Role {user.role} is read-only")
    record = await run_in_threadpool(_stored, request, study_id, usubjid, domain, seq, user)
    values = {c: str(form.get(c) or "") for c in CORRECTABLE[domain] if c in form}
    reason = str(form.get("reason") or "")
    query = form.get("query") or None
    if query is not None:
        query = await run_in_threadpool(_query_on, request, query, study_id, usubjid, domain,
                                        seq, user)
    store = store_of(request)

    def save() -> Any:
        return correct(store, study_id, domain, (usubjid, seq), values, user=user.username,
                       reason=reason, version=form.get("version"))

    try:
        if query is None:
            await run_in_threadpool(save)
        else:  # the correction and the query's answer: one transaction
            await run_in_threadpool(oversight.correct_and_answer, store, study_id, query, save,
                                    user=user.username, reason=reason)
    except StaleRecord as exc:
        # Show what is stored now; the form now carries the current version, so saving
        # again is a decision taken with the other person's change in view.
        current = {c: _text(exc.current.get(c)) for c in CORRECTABLE[domain]}
        changed = [c for c in CORRECTABLE[domain] if current[c] != _text(record.get(c))]
        return _correction_page(request, study_id, usubjid, domain, seq,
                                record={**record, "version": exc.current["version"]},
                                values=current | {c: v for c, v in values.items()
                                                  if c not in changed},
                                errors={"_form": exc.message, **{
                                    c: f"Changed by someone else to `{current[c]}`"
                                    for c in changed}},
                                reason=reason, status_code=409, query=query)
    except FieldErrors as exc:
        shown = {c: _text(record.get(c)) for c in CORRECTABLE[domain]} | values
        return _correction_page(request, study_id, usubjid, domain, seq, record=record,
                                values=shown, errors=exc.errors, reason=reason,
                                status_code=422, query=query)
    except (Locked, NotPermitted):
        raise
    except StoreError as exc:  # the query's answer refused (e.g. no longer open)
        shown = {c: _text(record.get(c)) for c in CORRECTABLE[domain]} | values
        return _correction_page(request, study_id, usubjid, domain, seq, record=record,
                                values=shown, errors={"_form": exc.message}, reason=reason,
                                status_code=422, query=query)
    if query is not None:
        return RedirectResponse(f"/studies/{study_id}/queries/{query}", status_code=303)
    return RedirectResponse(f"/studies/{study_id}/subjects/{usubjid}", status_code=303)


@router.get("/studies/{study_id}/subjects/{usubjid}/records/{domain}/{seq}/void")
def void_form(request: Request, study_id: str, usubjid: str, domain: str, seq: int) -> Response:
    user = _writer(request)
    record = _stored(request, study_id, usubjid, domain, seq, user)
    return render(request, "void.html", study_id=study_id, usubjid=usubjid, domain=domain,
                  seq=seq, record=record, errors={}, reason="")


@router.post("/studies/{study_id}/subjects/{usubjid}/records/{domain}/{seq}/void")
async def void_submit(request: Request, study_id: str, usubjid: str, domain: str,
                      seq: int) -> Response:
    user = current_user(request)
    form = await request.form()
    check_form_csrf(request, form)
    if not rule_of(user).write:
        raise Forbidden(f"Role {user.role} is read-only")
    record = await run_in_threadpool(_stored, request, study_id, usubjid, domain, seq, user)
    reason = str(form.get("reason") or "")
    try:
        await run_in_threadpool(void, store_of(request), study_id, domain, (usubjid, seq),
                                user=user.username, reason=reason,
                                version=form.get("version"))
    except StaleRecord as exc:
        return render(request, "void.html", status_code=409, study_id=study_id,
                      usubjid=usubjid, domain=domain, seq=seq,
                      record={**record, **exc.current}, errors={"_form": exc.message},
                      reason=reason)
    except FieldErrors as exc:
        return render(request, "void.html", status_code=422, study_id=study_id,
                      usubjid=usubjid, domain=domain, seq=seq, record=record,
                      errors=exc.errors, reason=reason)
    return RedirectResponse(f"/studies/{study_id}/subjects/{usubjid}", status_code=303)


@router.get("/studies/{study_id}/audit")
def audit(request: Request, study_id: str) -> Response:
    user = current_user(request)
    store = store_of(request)
    info = data.study_or_404(store, study_id)
    if not rule_of(user).audit:
        raise Forbidden(f"Role {user.role} may not read the audit trail")
    return render(request, "audit.html", study=info, rows=data.audit(store, study_id, user))
