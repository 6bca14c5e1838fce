"""Pages of a subject's path (issue 10 parts 1-2): screening, infusion, response, samples,
concomitant medications, disposition, the site dashboard, and what the subject page shows of
the path (status, the next steps, the visit timeline).

Each form is declared as data (:mod:`celltrial.web.forms`): human labels, the SDTM variable
only as the field's tooltip, dropdowns with readable text, date pickers, required fields
marked, plain messages next to the field (HTTP 422, nothing written). A save is answered with
a redirect (post/redirect/get) to the page of what was recorded; the form's ``submission``
key makes a repeated submit write nothing. The records and rules are those of
:mod:`celltrial.web.path`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from celltrial.store import Store, UserInfo
from celltrial.web import data, path
from celltrial.web.access import rule_of
from celltrial.web.auth import Forbidden, check_form_csrf, current_user, store_of
from celltrial.web.forms import FormField, FormProblems, echo, read_form
from celltrial.web.timeline import WINDOW_NOTE, counts, found_records, timeline

router = APIRouter()


def _render(request: Request, name: str, *, status_code: int = 200, **context: Any
            ) -> Response:
    from celltrial.web.pages import render

    return render(request, name, status_code=status_code, **context)


def _writer(request: Request) -> UserInfo:
    user = current_user(request)
    if not rule_of(user).write:
        raise Forbidden(f"Role {user.role} is read-only: it enters no data")
    return user


def _protocol(study_id: str) -> Any:
    protocol = path.protocol_of(study_id)
    if protocol is None:
        raise data.NotFound(f"protocol of {study_id}")
    return protocol


async def _form(request: Request) -> Any:
    form = await request.form()
    check_form_csrf(request, form)
    return form


def _page(request: Request, study_id: str, usubjid: str | None, title: str,
          fields: tuple[FormField, ...], *, values: dict[str, str] | None = None,
          errors: dict[str, str] | None = None, status_code: int = 200,
          submission: str | None = None, buttons: tuple[tuple[str, str], ...] = (
              ("save", "Save"),), **extra: Any) -> Response:
    return _render(request, "path_form.html", status_code=status_code, study_id=study_id,
                   usubjid=usubjid, title=title, fields=fields, values=values or {},
                   errors=errors or {}, submission=submission or uuid.uuid4().hex,
                   buttons=buttons, **extra)


def _saved(request: Request, study_id: str, usubjid: str, title: str, lines: list[str], *,
           replayed: bool = False, **extra: Any) -> Response:
    request.session["path_saved"] = {"title": title, "lines": lines, "replayed": replayed,
                                     **extra}
    return RedirectResponse(f"/studies/{study_id}/subjects/{usubjid}/recorded",
                            status_code=303)


@router.get("/studies/{study_id}/subjects/{usubjid}/recorded")
def recorded(request: Request, study_id: str, usubjid: str) -> Response:
    """What the last step saved (post/redirect/get: reloading it submits nothing)."""
    user = current_user(request)
    data.subject_or_404(store_of(request), study_id, usubjid, user)
    saved = request.session.get("path_saved") or {"title": "Nothing new", "lines": []}
    return _render(request, "path_saved.html", study_id=study_id, usubjid=usubjid,
                   saved=saved)


# ---------------------------------------------------------------- screening
def _site_of(user: UserInfo) -> str | None:
    return None if rule_of(user).scope == "all" else user.site_id


@router.get("/studies/{study_id}/screening")
def screening_form(request: Request, study_id: str) -> Response:
    user = _writer(request)
    data.study_or_404(store_of(request), study_id)
    protocol = _protocol(study_id)
    fields = path.screening_fields(protocol, site_fixed=_site_of(user))
    return _page(request, study_id, None, "Screening: register a consented subject", fields,
                 buttons=(("check", "Check eligibility"), ("save", "Register the subject")),
                 protocol=protocol, site=_site_of(user))


@router.post("/studies/{study_id}/screening")
async def screening_submit(request: Request, study_id: str) -> Response:
    user = current_user(request)
    form = await _form(request)
    if not rule_of(user).write:
        raise Forbidden(f"Role {user.role} is read-only: it enters no data")
    store = store_of(request)
    await run_in_threadpool(data.study_or_404, store, study_id)
    protocol = _protocol(study_id)
    site = _site_of(user)
    if site is None and rule_of(user).scope != "all":
        raise Forbidden("Your account has no site: it cannot register subjects")
    fields = path.screening_fields(protocol, site_fixed=site)
    values, errors = read_form(fields, form)
    submission = str(form.get("submission") or "") or None
    shown = echo(fields, form)
    common = {"buttons": (("check", "Check eligibility"), ("save", "Register the subject")),
              "protocol": protocol, "site": site, "submission": submission}
    title = "Screening: register a consented subject"
    result = None
    if not errors:
        try:
            result = path.screening_result(protocol, values)
        except FormProblems as exc:
            errors = exc.errors
    if errors or form.get("action") != "save":
        return _page(request, study_id, None, title, fields, values=shown, errors=errors,
                     status_code=422 if errors else 200, screening=result, **common)
    try:
        done = await run_in_threadpool(
            lambda: path.register_subject(store, study_id, protocol, values,
                                          site=site or values["site"], user=user.username,
                                          submission=submission))
    except FormProblems as exc:
        return _page(request, study_id, None, title, fields, values=shown, errors=exc.errors,
                     status_code=422, screening=result, **common)
    res = done.result
    lines = [f"Subject {done.usubjid} registered (informed consent {values['consent']})."]
    lines.append("Eligible: the subject can be enrolled." if res.eligible else
                 "Not eligible: recorded as a screen failure (" + path.failure_term(res)
                 + ").")
    return _saved(request, study_id, done.usubjid, "Screening", lines,
                  replayed=done.replayed, criteria=_criteria(res))


def _criteria(result: Any) -> list[dict[str, Any]]:
    return [{"id": c.id, "kind": c.kind, "text": c.text, "finding": c.finding,
             "missing": list(c.missing)} for c in result.criteria]


# ---------------------------------------------------------------- infusion
def _subject(request: Request, study_id: str, usubjid: str, user: UserInfo) -> Store:
    store = store_of(request)
    data.subject_or_404(store, study_id, usubjid, user)
    return store


def _infusion_page(request: Request, store: Store, study_id: str, usubjid: str,
                   protocol: Any, *, values: dict[str, str] | None = None,
                   errors: dict[str, str] | None = None, status_code: int = 200,
                   plan: Any = None, submission: str | None = None) -> Response:
    state = path.infusion_state(store, study_id, usubjid, protocol)
    fraction = state["next"]
    fields = path.INFUSION_PLAN_FIELDS + (path.infusion_fields(fraction) if fraction else ())
    shown = values if values is not None else (
        {"weight": f"{state['weight']:g}"} if state["weight"] else {})
    decision = None
    if fraction and fraction > 1:
        decision = path.hold_decision(store, study_id, usubjid, protocol, fraction, None, None)
    return _page(request, study_id, usubjid, f"Infusion: {usubjid}", fields, values=shown,
                 errors=errors, status_code=status_code, submission=submission,
                 buttons=(("plan", "Show the dose plan"), ("save", f"Record fraction "
                          f"{fraction}")) if fraction else (),
                 infusion=state, plan=plan, decision=decision, protocol=protocol)


@router.get("/studies/{study_id}/subjects/{usubjid}/infusion")
def infusion_form(request: Request, study_id: str, usubjid: str) -> Response:
    user = _writer(request)
    store = _subject(request, study_id, usubjid, user)
    return _infusion_page(request, store, study_id, usubjid, _protocol(study_id))


@router.post("/studies/{study_id}/subjects/{usubjid}/infusion")
async def infusion_submit(request: Request, study_id: str, usubjid: str) -> Response:
    user = current_user(request)
    form = await _form(request)
    if not rule_of(user).write:
        raise Forbidden(f"Role {user.role} is read-only: it enters no data")
    store = await run_in_threadpool(_subject, request, study_id, usubjid, user)
    protocol = _protocol(study_id)
    state = await run_in_threadpool(path.infusion_state, store, study_id, usubjid, protocol)
    fraction = state["next"]
    submission = str(form.get("submission") or "") or None
    if not state["level"]:
        return _infusion_page(request, store, study_id, usubjid, protocol,
                              errors={"_form": "The subject is not enrolled: no dose level "
                                               "assigned yet"}, status_code=422)
    action = form.get("action")
    fields = path.INFUSION_PLAN_FIELDS + (
        path.infusion_fields(fraction) if fraction and action == "save" else ())
    values, errors = read_form(fields, form)
    shown = echo(path.INFUSION_PLAN_FIELDS + (path.infusion_fields(fraction) if fraction
                                              else ()), form)
    plan = None
    if not any(f.name in errors for f in path.INFUSION_PLAN_FIELDS):
        try:
            plan = path.plan_for(protocol, state["level"], values)
        except FormProblems as exc:
            errors = {**exc.errors, **errors}
    if errors or action != "save" or fraction is None:
        return _infusion_page(request, store, study_id, usubjid, protocol, values=shown,
                              errors=errors, status_code=422 if errors else 200, plan=plan,
                              submission=submission)
    try:
        record, decision = await run_in_threadpool(
            lambda: path.record_fraction(store, study_id, usubjid, protocol, plan, fraction,
                                         values, user=user.username, submission=submission))
    except FormProblems as exc:
        return _infusion_page(request, store, study_id, usubjid, protocol, values=shown,
                              errors=exc.errors, status_code=422, plan=plan,
                              submission=submission)
    if decision.give:
        lines = [f"Fraction {fraction} given on {record['EXSTDTC']}: "
                 f"{record['EXVOL']:g} mL in {int(record['EXBAGN'])} bag(s), "
                 f"{record['EXDOSE']:.3g} CAR+ cells/kg ({record['EXDOSTOT']:.3g} cells)."]
    else:
        lines = [f"Fraction {fraction} withheld: {decision.reason}."]
    return _saved(request, study_id, usubjid, "Infusion", lines, next_link=(
        f"/studies/{study_id}/subjects/{usubjid}/infusion", "Record the next fraction")
        if fraction < state["fractions"] else None)


# ---------------------------------------------------------------- response, samples, end
StepWrite = Callable[..., Any]


async def _simple_step(request: Request, study_id: str, usubjid: str, title: str,
                       fields: tuple[FormField, ...], write: StepWrite,
                       lines: Callable[[Any], list[str]], **extra: Any) -> Response:
    user = current_user(request)
    form = await _form(request)
    if not rule_of(user).write:
        raise Forbidden(f"Role {user.role} is read-only: it enters no data")
    store = await run_in_threadpool(_subject, request, study_id, usubjid, user)
    values, errors = read_form(fields, form)
    submission = str(form.get("submission") or "") or None
    shown = echo(fields, form)
    if not errors:
        try:
            result = await run_in_threadpool(
                lambda: write(store, values, user=user.username, submission=submission))
        except FormProblems as exc:
            errors = exc.errors
    if errors:
        return _page(request, study_id, usubjid, title, fields, values=shown, errors=errors,
                     status_code=422, submission=submission, **extra)
    return _saved(request, study_id, usubjid, title.split(":")[0], lines(result))


RESPONSE_TITLE = "Response assessment"


@router.get("/studies/{study_id}/subjects/{usubjid}/response/new")
def response_form(request: Request, study_id: str, usubjid: str) -> Response:
    user = _writer(request)
    _subject(request, study_id, usubjid, user)
    protocol = _protocol(study_id)
    return _page(request, study_id, usubjid, f"{RESPONSE_TITLE}: {usubjid}",
                 path.response_fields(protocol))


@router.post("/studies/{study_id}/subjects/{usubjid}/response/new")
async def response_submit(request: Request, study_id: str, usubjid: str) -> Response:
    protocol = _protocol(study_id)

    def write(store: Store, values: dict[str, Any], **kw: Any) -> Any:
        return path.record_response(store, study_id, usubjid, protocol, values, **kw)

    def lines(result: Any) -> list[str]:
        _record, marrow, overall = result
        return [f"Marrow response ({marrow.criteria or 'criteria'}): "
                f"{path.CATEGORY_TEXT.get(marrow.category, marrow.category)}",
                f"Overall response: {path.CATEGORY_TEXT.get(overall, overall)}",
                *(f"Why: {r}" for r in marrow.reasons)]

    return await _simple_step(request, study_id, usubjid, f"{RESPONSE_TITLE}: {usubjid}",
                              path.response_fields(protocol), write, lines)


@router.get("/studies/{study_id}/subjects/{usubjid}/samples/new")
def sample_form(request: Request, study_id: str, usubjid: str) -> Response:
    user = _writer(request)
    _subject(request, study_id, usubjid, user)
    return _page(request, study_id, usubjid, f"Sample result: {usubjid}", path.SAMPLE_FIELDS)


@router.post("/studies/{study_id}/subjects/{usubjid}/samples/new")
async def sample_submit(request: Request, study_id: str, usubjid: str) -> Response:
    def write(store: Store, values: dict[str, Any], **kw: Any) -> Any:
        return path.record_sample(store, study_id, usubjid, values, **kw)

    def lines(record: Any) -> list[str]:
        code = record.get("PCTESTCD") or record.get("ISTESTCD") or record.get("LBTESTCD")
        result = record.get("PCORRES") or record.get("ISSTRESC") or record.get("LBORRES")
        return [f"{path.ASSAYS[code].text}: {result} {path.ASSAYS[code].unit}"
                if code != "ADACAR" else f"{path.ASSAYS[code].text}: {result}"]

    return await _simple_step(request, study_id, usubjid, f"Sample result: {usubjid}",
                              path.SAMPLE_FIELDS, write, lines)


@router.get("/studies/{study_id}/subjects/{usubjid}/disposition/new")
def disposition_form(request: Request, study_id: str, usubjid: str) -> Response:
    user = _writer(request)
    _subject(request, study_id, usubjid, user)
    return _page(request, study_id, usubjid, f"End of study: {usubjid}",
                 path.DISPOSITION_FIELDS)


@router.post("/studies/{study_id}/subjects/{usubjid}/disposition/new")
async def disposition_submit(request: Request, study_id: str, usubjid: str) -> Response:
    def write(store: Store, values: dict[str, Any], **kw: Any) -> Any:
        return path.record_disposition(store, study_id, usubjid, values, **kw)

    def lines(record: Any) -> list[str]:
        text = dict(path.DISPOSITIONS)[record["DSDECOD"]]
        return [f"{text} on {record['DSSTDTC']}: {record['DSTERM']}"]

    return await _simple_step(request, study_id, usubjid, f"End of study: {usubjid}",
                              path.DISPOSITION_FIELDS, write, lines)


@dataclass(frozen=True)
class Upload:
    """What an upload page says: its title, the file field's label, the CSV columns (those
    required), an example line, the single-entry form it mirrors and how it checks a line."""

    title: str
    label: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    example: str
    form: str
    form_text: str
    checked: str
    checks: str
    note: str = ""


LAB_FILE = Upload("Lab results from a file", "Lab results file (CSV)", path.LAB_CSV_COLUMNS,
                  ("test", "value", "date"), "NEUT,400,cells/uL,1800,7500,2024-03-12T08:00,",
                  "labs/new", "lab form", "graded", "grades")
SAMPLE_FILE = Upload("Sample results from a file", "Sample results file (CSV)",
                     path.SAMPLE_CSV_COLUMNS, ("test", "date"),
                     "CARTQPCR,2024-03-17T08:00,12000,,,", "samples/new", "sample form",
                     "checked", "checks", "test: " + "; ".join(
                         f"{a.code} ({a.text}, {a.unit})" for a in path.ASSAYS.values())
                     + "; below: Y or N; antibody: POSITIVE or NEGATIVE.")


def _upload_page(request: Request, study_id: str, usubjid: str, upload: Upload, *,
                 errors: dict[str, str] | None = None, status_code: int = 200,
                 submission: str | None = None) -> Response:
    return _render(request, "path_upload.html", status_code=status_code, study_id=study_id,
                   usubjid=usubjid, title=f"{upload.title}: {usubjid}", upload=upload,
                   errors=errors or {}, submission=submission or uuid.uuid4().hex)


def _open_upload(request: Request, study_id: str, usubjid: str, upload: Upload) -> Response:
    """The empty upload page, for a writer who may see the subject."""
    _subject(request, study_id, usubjid, _writer(request))
    return _upload_page(request, study_id, usubjid, upload)


async def _upload_submit(request: Request, study_id: str, usubjid: str, upload: Upload,
                         write: Callable[..., list[dict[str, Any]]],
                         lines: Callable[[list[dict[str, Any]]], list[str]]) -> Response:
    """Every line of the file checked and stored in one write, or nothing (the lines refused
    named next to the file field); the same upload again writes nothing."""
    user = current_user(request)
    form = await _form(request)
    if not rule_of(user).write:
        raise Forbidden(f"Role {user.role} is read-only: it enters no data")
    store = await run_in_threadpool(_subject, request, study_id, usubjid, user)
    submission = str(form.get("submission") or "") or None
    sent = form.get("file")
    data = await sent.read() if hasattr(sent, "read") else b""
    if await run_in_threadpool(path.was_accepted, store, submission):
        return _saved(request, study_id, usubjid, upload.title,
                      ["This file was already stored with this form."], replayed=True)
    try:
        if not data:
            raise FormProblems({"file": "Required: choose a CSV file"})
        records = await run_in_threadpool(
            lambda: write(store, study_id, usubjid, data, user=user.username,
                          submission=submission))
    except FormProblems as exc:
        return _upload_page(request, study_id, usubjid, upload, errors=exc.errors,
                            status_code=422, submission=submission)
    return _saved(request, study_id, usubjid, upload.title, lines(records))


@router.get("/studies/{study_id}/subjects/{usubjid}/labs/upload")
def lab_file_form(request: Request, study_id: str, usubjid: str) -> Response:
    return _open_upload(request, study_id, usubjid, LAB_FILE)


@router.post("/studies/{study_id}/subjects/{usubjid}/labs/upload")
async def lab_file_submit(request: Request, study_id: str, usubjid: str) -> Response:
    """Every line of the file graded and stored in one write, or nothing."""
    def lines(records: list[dict[str, Any]]) -> list[str]:
        grades = [r.get("LBTOXGR") for r in records]
        return [f"{len(records)} lab result(s) stored and graded (CTCAE v5.0 grades: "
                + ", ".join("-" if g is None else str(g) for g in grades) + ")."]

    return await _upload_submit(request, study_id, usubjid, LAB_FILE, path.record_lab_file,
                                lines)


@router.get("/studies/{study_id}/subjects/{usubjid}/samples/upload")
def sample_file_form(request: Request, study_id: str, usubjid: str) -> Response:
    return _open_upload(request, study_id, usubjid, SAMPLE_FILE)


@router.post("/studies/{study_id}/subjects/{usubjid}/samples/upload")
async def sample_file_submit(request: Request, study_id: str, usubjid: str) -> Response:
    """Every line checked as the sample form checks it (PC and IS) and stored in one write,
    or nothing."""
    def lines(records: list[dict[str, Any]]) -> list[str]:
        pc = sum(1 for r in records if "PCTESTCD" in r)
        return [f"{len(records)} sample result(s) stored ({pc} CAR-T kinetics, "
                f"{len(records) - pc} anti-CAR antibodies)."]

    return await _upload_submit(request, study_id, usubjid, SAMPLE_FILE,
                                path.record_sample_file, lines)


@router.get("/studies/{study_id}/subjects/{usubjid}/medications/new")
def medication_form(request: Request, study_id: str, usubjid: str) -> Response:
    user = _writer(request)
    _subject(request, study_id, usubjid, user)
    return _page(request, study_id, usubjid, f"Concomitant medication: {usubjid}",
                 path.medication_fields())


@router.post("/studies/{study_id}/subjects/{usubjid}/medications/new")
async def medication_submit(request: Request, study_id: str, usubjid: str) -> Response:
    def write(store: Store, values: dict[str, Any], **kw: Any) -> Any:
        return path.record_medication(store, study_id, usubjid, values, **kw)

    def lines(record: Any) -> list[str]:
        end = f" to {record['CMENDTC']}" if record.get("CMENDTC") else " (ongoing)"
        route = path.ROUTE_TEXT.get(record["CMROUTE"], record["CMROUTE"]).lower()
        return [f"{record['CMDECOD'].capitalize()} {record['CMDOSE']:g} {record['CMDOSU']} "
                f"{route} from {record['CMSTDTC']}{end}"
                + (f", for {record['CMINDC']}" if record.get("CMINDC") else "") + "."]

    return await _simple_step(request, study_id, usubjid,
                              f"Concomitant medication: {usubjid}", path.medication_fields(),
                              write, lines)


# ---------------------------------------------------------------- subject page, dashboard
COLUMN_TEXT: dict[str, str] = {
    "SUBJID": "Subject number", "SITEID": "Site", "AGE": "Age", "AGEU": "Age unit",
    "SEX": "Sex", "DISEASE": "Diagnosis", "ARMCD": "Dose level", "ARM": "Arm",
    "RFICDTC": "Consent", "RFSTDTC": "First infusion (day 0)", "RFPENDTC": "End of study",
    "DTHDTC": "Death", "DTHFL": "Died",
    "EXTRT": "Product", "EXFRACN": "Fraction", "EXDOSE": "Dose", "EXDOSU": "Dose unit",
    "EXDOSTOT": "CAR+ cells", "EXVOL": "Volume (mL)", "EXBAGN": "Bags",
    "EXSTDTC": "Started", "EXADJ": "Adjustment",
    "AETERM": "Reported term", "AEDECOD": "CTCAE term", "AETOXGR": "Grade",
    "AETOXSCL": "Scale", "AESTDTC": "Start", "AEENDTC": "End", "AESER": "Serious",
    "AEREL": "Related", "AEOUT": "Outcome",
    "LBCAT": "Category", "LBTESTCD": "Test", "LBTEST": "Test name", "LBSPEC": "Specimen",
    "LBORRES": "Result as entered", "LBORRESU": "Unit entered", "LBSTRESN": "Result",
    "LBSTRESU": "Unit", "LBORNRLO": "Lower limit of normal (unit entered)",
    "LBORNRHI": "Upper limit of normal (unit entered)", "LBTOXGR": "CTCAE grade",
    "LBDTC": "Collected", "LBMETHOD": "Method",
    "XCDTC": "Observed", "XCTEMP": "Temperature (C)", "XCFEVMSK": "Fever masked",
    "XCHYPOT": "Hypotension", "XCOXY": "Oxygen", "XCICE": "ICE score",
    "XCLOC": "Consciousness", "XCSEIZ": "Seizure", "XCMOTOR": "Motor findings",
    "XCEDEMA": "Cerebral edema", "XCCRSGR": "CRS grade", "XCICAGR": "ICANS grade",
    "RSTESTCD": "Assessment", "RSCAT": "Criteria", "RSORRES": "Result",
    "RSSTRESC": "Category", "RSDTC": "Date", "RSEVAL": "Evaluator",
    "PCTESTCD": "Test", "PCSTRESN": "Result", "PCSTRESU": "Unit", "PCORRES": "As entered",
    "PCLLOQ": "Limit of quantitation", "PCSPEC": "Specimen", "PCDTC": "Collected",
    "ISTESTCD": "Test", "ISORRES": "As entered", "ISSTRESC": "Result", "ISSTRESN": "Titre",
    "ISDTC": "Collected", "DSDECOD": "Event", "DSTERM": "Reason", "DSSTDTC": "Date",
    "SCTESTCD": "Characteristic", "SCORRES": "Value", "SCORRESU": "Unit", "SCDTC": "Date",
    "VSTESTCD": "Test", "VSSTRESN": "Result", "VSSTRESU": "Unit", "VSDTC": "Date",
    "PRTRT": "Procedure", "PRSTDTC": "Date", "version": "Version",
    "CMTRT": "Medication", "CMDECOD": "Standard name", "CMCAT": "Category",
    "CMINDC": "Indication", "CMDOSE": "Dose", "CMDOSU": "Unit", "CMROUTE": "Route",
    "CMSTDTC": "Started", "CMENDTC": "Stopped",
    "LBSTNRLO": "Lower limit of normal (standard unit)",
    "LBSTNRHI": "Upper limit of normal (standard unit)",
}
"""Column headings of the subject page (the SDTM name is the heading's tooltip); a column
not listed shows its SDTM label."""

PAGE_ROWS = 20


def tables_of(domains: dict[str, list[dict[str, Any]]], query: dict[str, str]
              ) -> dict[str, dict[str, Any]]:
    """Per domain, the rows of the page asked for (``page_LB=2``; ``PAGE_ROWS`` a page,
    newest first) and, for labs, those of one test (``lbtest=NEUT``)."""
    out: dict[str, dict[str, Any]] = {}
    for name, rows in domains.items():
        tests: list[str] = []
        chosen = ""
        if name == "LB":
            tests = sorted({str(r.get("LBTESTCD")) for r in rows if r.get("LBTESTCD")})
            chosen = query.get("lbtest", "")
            if chosen:
                rows = [r for r in rows if r.get("LBTESTCD") == chosen]
        ordered = list(reversed(rows))
        pages = max(1, -(-len(ordered) // PAGE_ROWS))
        try:
            page = min(max(1, int(query.get(f"page_{name}", "1"))), pages)
        except ValueError:
            page = 1
        out[name] = {"rows": ordered[(page - 1) * PAGE_ROWS: page * PAGE_ROWS],
                     "total": len(ordered), "page": page, "pages": pages, "tests": tests,
                     "test": chosen}
    return out


def subject_context(store: Store, study_id: str, usubjid: str,
                    domains: dict[str, list[dict[str, Any]]],
                    query: dict[str, str] | None = None) -> dict[str, Any]:
    """What the subject page shows of the path: status, next steps, the timeline, and the
    domain tables paged and filtered."""
    import datetime as dt

    from celltrial.store import DOMAINS

    dm = (domains.get("DM") or [{}])[0]
    ds = [r for r in domains.get("DS", []) if not r.get("voided")]
    status = path.status_of(dm, ds)
    protocol = path.protocol_of(study_id)
    visits = []
    if protocol is not None:
        found = found_records(store, study_id, usubjid).get(usubjid, [])
        visits = timeline(protocol.schedule, dm, found, ds[-1]["DSSTDTC"] if ds else None,
                          dt.datetime.now(dt.timezone.utc).date())
    return {"path_status": status, "path_status_text": path.STATUS_TEXT.get(status, status),
            "path_protocol": protocol is not None, "visits": visits,
            "visit_counts": counts(visits), "window_note": WINDOW_NOTE,
            "enrol_link": f"/studies/{study_id}/subjects/{usubjid}/enrol"
            if status == "SCREENED" else None,
            "tables": tables_of(domains, query or {}),
            "column_text": {**{v.name: v.label for d in DOMAINS.values()
                               for v in d.variables}, **COLUMN_TEXT}}


@router.get("/studies/{study_id}/dashboard")
def dashboard(request: Request, study_id: str) -> Response:
    """The site dashboard: subjects by status, overdue assessments, queries not closed."""
    import datetime as dt

    from celltrial.web import oversight

    user = current_user(request)
    store = store_of(request)
    info = data.study_or_404(store, study_id)
    subjects = data.subjects(store, study_id, user)
    protocol = path.protocol_of(study_id)
    found = found_records(store, study_id) if protocol is not None else {}
    today = dt.datetime.now(dt.timezone.utc).date()
    board = oversight.dashboard(store, study_id, user)
    rows, by_status = [], {}
    for s in subjects:
        ds_end = s.get("RFPENDTC") if s["STATUS"] not in ("INFUSED", "ENROLLED",
                                                          "SCREENED") else None
        visits = timeline(protocol.schedule, s, found.get(s["USUBJID"], []), ds_end, today) \
            if protocol is not None else []
        overdue = [v for v in visits if v.status == "overdue"]
        due = [v for v in visits if v.status == "due"]
        text = path.STATUS_TEXT.get(s["STATUS"], s["STATUS"].capitalize())
        by_status[text] = by_status.get(text, 0) + 1
        rows.append({"usubjid": s["USUBJID"], "site": s.get("SITEID"), "status": text,
                     "level": s.get("ARMCD"), "overdue": overdue, "due": due,
                     "queries": board["query_counts"].get(s["USUBJID"], 0)})
    return _render(request, "dashboard.html", study=info, rows=rows, by_status=by_status,
                   open_queries=board["open_queries"], window_note=WINDOW_NOTE,
                   rule=rule_of(user), has_protocol=protocol is not None)
