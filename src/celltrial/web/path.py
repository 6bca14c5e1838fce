"""A subject's path through the trial, as records: screening, infusion, response assessment,
samples and disposition (issue 10 part 1).

Every clinical decision is the one of :mod:`celltrial.clinical`, never re-made here:
eligibility by :func:`celltrial.clinical.eligibility.screen` (the protocol's criteria), the
dose plan by :func:`celltrial.clinical.dosing.plan_dose`, whether a later fraction of a split
infusion is given by :func:`celltrial.clinical.split_hold.next_fraction`, the response
category by :func:`celltrial.clinical.response.assess_response` and
:func:`~celltrial.clinical.response.overall_response`. Every write goes through the store
(:func:`celltrial.store.write_record`, :func:`~celltrial.store.write_domains`,
:func:`~celltrial.store.update_record`: validated, audited, refused when locked), the several
records of one step in ONE write transaction (all or nothing), at most once per form
submission (its idempotency key).

Records written, following the conventions of the virtual trial
(:mod:`celltrial.kinetics.virtual`) so that the SDTM export and the analysis datasets read
them as they read generated data:

- screening: DM (SUBJID, SITEID, AGE, SEX, DISEASE, RFICDTC; no ARMCD: the committee's
  enrolment assigns the dose level), SC (one row per eligibility variable given), VS WEIGHT;
  a subject not eligible also DS ``SCREEN FAILURE`` whose DSTERM names the failed criteria,
  and DM.RFPENDTC.
- infusion: EX per fraction (EXFRACN, cells/kg actually given, cells, volume, bags); a
  fraction withheld under a hold rule is EX with dose 0 and EXADJ ``WITHHELD: <rule>``; the
  first fraction sets DM.RFSTDTC (study day 0).
- response: LB BLAST (bone marrow, morphology) and RS MARROW and OVRLRESP (the category).
- samples: PC CARTQPCR / CARTPCT / CARTABS (below the limit of quantitation: PCORRES
  ``<LLOQ`` and no numeric result), IS ADACAR (anti-CAR antibodies); also a batch from a
  CSV file, each line by the form's rules (:func:`build_sample`), all in one write.
- disposition: DS (COMPLETED, DEATH, or the reason of discontinuation) and DM.RFPENDTC; a
  death also DM.DTHDTC and DTHFL ``Y``.
- concomitant medications: CM, the drug chosen from the controlled list
  (:mod:`celltrial.clinical.medications`: tocilizumab, corticosteroids, anakinra, IVIG,
  antimicrobials) with its CMCAT, dose, unit, route, start and end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from celltrial.errors import CelltrialError, StoreError
from celltrial.store import Store, update_record, write_domains, write_record
from celltrial.store.engine import write_transaction
from celltrial.store.locks import Locked
from celltrial.store.schema import TABLES
from celltrial.web.forms import FormField, FormProblems, day_of, plain_message

SOURCE = "web"

# ---------------------------------------------------------------- reading the subject


def protocol_of(study_id: str) -> Any | None:
    """The library protocol a study was registered from (its id), None when the study was
    registered by id alone (no protocol: the path pages need its rules)."""
    from celltrial.protocols import load

    try:
        return load(study_id)
    except (CelltrialError, OSError, ValueError):
        return None


def _rows(store: Store, study_id: str, usubjid: str, domain: str) -> list[dict[str, Any]]:
    """The subject's records of ``domain`` not entered in error, in the order written."""
    table = TABLES[domain]
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(table).where(
            table.c.STUDYID == study_id, table.c.USUBJID == usubjid,
            table.c.voided.is_(None)).order_by(table.c.id)).all()
    return [dict(r._mapping) for r in rows]


def subject_dm(store: Store, study_id: str, usubjid: str) -> dict[str, Any]:
    rows = _rows(store, study_id, usubjid, "DM")
    return rows[0] if rows else {}


def status_of(dm: Mapping[str, Any], ds: list[Mapping[str, Any]]) -> str:
    """Where the subject is on the path: SCREEN FAILURE, DEATH, COMPLETED or the reason of
    discontinuation (the last disposition event), else INFUSED (day 0 recorded), ENROLLED (a
    dose level assigned) or SCREENED (consented and screened, waiting for enrolment)."""
    if ds:
        return str(ds[-1].get("DSDECOD") or "")
    if dm.get("DTHFL") == "Y":
        return "DEATH"
    if dm.get("RFSTDTC"):
        return "INFUSED"
    return "ENROLLED" if dm.get("ARMCD") else "SCREENED"


STATUS_TEXT = {"SCREENED": "Screened, waiting for enrolment", "ENROLLED": "Enrolled",
               "INFUSED": "Infused (in follow-up)", "SCREEN FAILURE": "Screen failure",
               "COMPLETED": "Completed the study", "DEATH": "Died"}


def _today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def _not_future(field: str, value: str | None, errors: dict[str, str],
                today: dt.date) -> None:
    day = day_of(value)
    if day is not None and day > today and field not in errors:
        errors[field] = f"Cannot be after today ({today.isoformat()})"


def _not_before(field: str, value: str | None, floor: str | None, what: str,
                errors: dict[str, str]) -> None:
    day, first = day_of(value), day_of(floor)
    if day is not None and first is not None and day < first and field not in errors:
        errors[field] = f"Cannot be before {what} ({first.isoformat()})"


def _write_one(store: Store, study_id: str, domain: str, record: Mapping[str, Any], *,
               user: str, reason: str, submission: str | None) -> dict[str, Any]:
    """One record (empty fields left out) through the store's validation and audit trail,
    at most once per ``submission``; the store's refusal as a FormProblems."""
    try:
        return write_record(store, study_id, domain,
                            {k: v for k, v in record.items() if v is not None}, user=user,
                            reason=reason, source=SOURCE, idempotency_key=submission).record
    except Locked:
        raise
    except StoreError as exc:
        raise _store_problem(exc) from exc


def _store_problem(exc: StoreError) -> FormProblems:
    lines = [ln.strip().lstrip("- ") for ln in exc.message.splitlines() if ln.strip()]
    return FormProblems({"_form": "The store refused the record: " + " ".join(lines)})


# ---------------------------------------------------------------- screening
SEX = (("F", "Female"), ("M", "Male"), ("U", "Unknown"))


def screening_fields(protocol: Any, *, site_fixed: str | None) -> tuple[FormField, ...]:
    """The screening form: identification, consent, demographics, then one field per
    variable the protocol's eligibility rules read (its unit and description from the
    protocol). ``age_years`` is DM.AGE and ``diagnosis`` DM.DISEASE (asked once)."""
    fields: list[FormField] = []
    if site_fixed is None:
        fields.append(FormField("site", "Site number", "SITEID", required=True,
                                hint="e.g. 01"))
    fields += [
        FormField("subject", "Subject number at the site", "SUBJID", required=True,
                  hint="e.g. 003; the subject's study id is site-number"),
        FormField("consent", "Informed consent signed on", "RFICDTC", "date", required=True),
        FormField("screened", "Screening assessments on", "SCDTC", "date", required=True,
                  hint="on or after consent"),
        FormField("age", "Age", "AGE", "integer", required=True, unit="years", low=0,
                  high=120),
        FormField("sex", "Sex", "SEX", "select", required=True, choices=SEX),
    ]
    for name, var in protocol.variables.items():
        if name == "age_years":
            continue
        label = var.description or name.replace("_", " ")
        sdtm = "DISEASE" if name == "diagnosis" else f"SCORRES ({name})"
        if var.type == "bool":
            fields.append(FormField(name, label, sdtm, "yesno",
                                    hint="leave empty if not assessed"))
        elif var.type == "category":
            fields.append(FormField(name, label, sdtm, "select",
                                    choices=tuple((c, c) for c in var.categories or ())))
        else:
            fields.append(FormField(name, label, sdtm, "number", unit=var.unit or "",
                                    low=var.min, high=var.max,
                                    hint=f"in {var.unit}" if var.unit else ""))
    return tuple(fields)


def patient_of(protocol: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """The patient record :func:`~celltrial.clinical.eligibility.screen` reads."""
    patient = {name: values.get(name) for name in protocol.variables if name != "age_years"}
    patient["age_years"] = values.get("age")
    return {k: v for k, v in patient.items() if v is not None}


def screening_result(protocol: Any, values: Mapping[str, Any]) -> Any:
    from celltrial.clinical.eligibility import screen

    try:
        return screen(protocol, patient_of(protocol, values))
    except CelltrialError as exc:  # a value the protocol's variables refuse
        raise FormProblems({"_form": exc.message}) from exc


def failure_term(result: Any) -> str:
    """DSTERM of a screen failure: the criteria not met, each with its finding."""
    parts = [f"{c.id} {c.finding} ({c.text.rstrip('.')})" for c in result.failed]
    return "Screen failure: criteria not met: " + "; ".join(parts)


@dataclass(frozen=True)
class Registered:
    usubjid: str
    result: Any
    replayed: bool


def register_subject(store: Store, study_id: str, protocol: Any, values: Mapping[str, Any],
                     *, site: str, user: str, submission: str | None) -> Registered:
    """Write a screened subject (see the module docstring); FormProblems, nothing written,
    when a date is impossible, the subject exists, or eligibility cannot be decided."""
    errors: dict[str, str] = {}
    today = _today()
    _not_future("consent", values["consent"], errors, today)
    _not_future("screened", values["screened"], errors, today)
    _not_before("screened", values["screened"], values["consent"], "the informed consent",
                errors)
    usubjid = f"{site}-{values['subject']}"
    if not errors and subject_dm(store, study_id, usubjid) and not _replay(store, submission):
        errors["subject"] = f"Subject {usubjid} is already registered in this study"
    result = screening_result(protocol, values)
    if result.decision == "incomplete" and not errors:
        names = sorted({n for c in result.incomplete for n in c.missing})
        errors["_form"] = ("Eligibility cannot be decided yet: give "
                           + ", ".join(protocol.variables[n].description or n for n in names)
                           + f" (criteria {', '.join(c.id for c in result.incomplete)})")
    if errors:
        raise FormProblems(errors)
    date = values["screened"]
    dm = {"USUBJID": usubjid, "SUBJID": values["subject"], "SITEID": site,
          "AGE": values["age"], "AGEU": "YEARS", "SEX": values["sex"],
          "DISEASE": values.get("diagnosis"), "RFICDTC": values["consent"]}
    if not result.eligible:
        dm.update(ARM="Screen failure", RFPENDTC=date)
    sc = [{"USUBJID": usubjid, "SCTESTCD": name, "SCORRES": _sc_text(values[name]),
           "SCORRESU": var.unit or None, "SCDTC": date}
          for name, var in protocol.variables.items()
          if name not in ("age_years", "diagnosis") and values.get(name) is not None]
    frames: dict[str, pd.DataFrame] = {}
    if sc:
        frames["SC"] = pd.DataFrame(sc, dtype=object)
    if values.get("weight_kg") is not None:
        frames["VS"] = pd.DataFrame([{"USUBJID": usubjid, "VSTESTCD": "WEIGHT",
                                      "VSSTRESN": float(values["weight_kg"]),
                                      "VSSTRESU": "kg", "VSDTC": date}], dtype=object)
    if not result.eligible:
        frames["DS"] = pd.DataFrame([{"USUBJID": usubjid, "DSDECOD": "SCREEN FAILURE",
                                      "DSTERM": failure_term(result), "DSSTDTC": date}],
                                    dtype=object)
    try:
        with write_transaction(store.engine):
            written = write_record(store, study_id, "DM",
                                   {k: v for k, v in dm.items() if v is not None},
                                   user=user, reason="screening (web)", source=SOURCE,
                                   idempotency_key=submission)
            if not written.replayed and frames:
                write_domains(store, study_id, frames, user=user, reason="screening (web)",
                              source=SOURCE)
    except Locked:
        raise
    except StoreError as exc:
        raise _store_problem(exc) from exc
    return Registered(str(written.record["USUBJID"]), result, written.replayed)


def was_accepted(store: Store, submission: str | None) -> bool:
    """Whether the form ``submission`` was already accepted (a repeated submit)."""
    return _replay(store, submission)


def _replay(store: Store, submission: str | None) -> bool:
    """Whether ``submission`` was already accepted (a repeated submit of the same form)."""
    if not submission:
        return False
    from celltrial.store.schema import Submission

    table = Submission.__table__
    with store.engine.connect() as connection:
        return connection.execute(sa.select(table.c.key).where(
            table.c.key == submission)).first() is not None


def _sc_text(value: Any) -> str:
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ---------------------------------------------------------------- infusion
def infusion_state(store: Store, study_id: str, usubjid: str, protocol: Any
                   ) -> dict[str, Any]:
    """What the infusion page shows: the dose level, the weight at screening, the fractions
    recorded and the next one (None when every fraction is recorded)."""
    dm = subject_dm(store, study_id, usubjid)
    ex = sorted(_rows(store, study_id, usubjid, "EX"), key=lambda r: r["EXFRACN"] or 0)
    weights = [r for r in _rows(store, study_id, usubjid, "VS") if r["VSTESTCD"] == "WEIGHT"]
    n = len(protocol.intervention.split)
    done = {int(r["EXFRACN"]) for r in ex if r["EXFRACN"] is not None}
    following = next((k for k in range(1, n + 1) if k not in done), None)
    return {"dm": dm, "level": dm.get("ARMCD"), "ex": ex, "fractions": n,
            "next": following,
            "weight": float(weights[-1]["VSSTRESN"]) if weights else None,
            "split": sorted(protocol.intervention.split, key=lambda s: s.day)}


INFUSION_PLAN_FIELDS = (
    FormField("weight", "Body weight", "VSSTRESN (WEIGHT)", "number", required=True,
              unit="kg", low=1, high=350),
    FormField("concentration", "Product concentration", "", "number", required=True,
              unit="CAR+ viable cells/mL", low=1,
              hint="from the certificate of analysis, e.g. 2000000 or 2e6"),
    FormField("available", "Product volume available", "", "number", required=True,
              unit="mL", low=0.1),
)


def infusion_fields(fraction: int) -> tuple[FormField, ...]:
    fields = (
        FormField("date", f"Fraction {fraction} started on", "EXSTDTC", "datetime",
                  required=True),
        FormField("volume", "Volume infused", "EXVOL", "number", required=True, unit="mL",
                  low=0, high=2000, hint="0 if the fraction was not given"),
        FormField("bags", "Bags infused", "EXBAGN", "integer", required=True, low=0, high=50),
    )
    if fraction > 1:
        fields += (FormField("infection", "Uncontrolled infection since the previous "
                             "fraction", "", "yesno", required=True,
                             hint="one of the protocol's hold signs"),)
    return fields


def plan_for(protocol: Any, level: str, values: Mapping[str, Any]) -> Any:
    """The dose plan (:func:`celltrial.clinical.dosing.plan_dose`); FormProblems with the
    plan's refusal (too little product, bag limits) otherwise."""
    from celltrial.clinical.dosing import Product, plan_dose

    try:
        return plan_dose(protocol, level, float(values["weight"]),
                         Product(float(values["concentration"]), float(values["available"])))
    except CelltrialError as exc:
        raise FormProblems({"_form": exc.message}) from exc


def hold_decision(store: Store, study_id: str, usubjid: str, protocol: Any, fraction: int,
                  until: str | None, infection: bool | None) -> Any:
    """:func:`~celltrial.clinical.split_hold.next_fraction` for ``fraction`` from the worst
    CRS and ICANS grades (ASTCT 2019, XC) observed from the first fraction up to ``until``
    and the infection answer."""
    from celltrial.clinical.split_hold import next_fraction

    ex = {int(r["EXFRACN"]): r for r in _rows(store, study_id, usubjid, "EX")
          if r["EXFRACN"] is not None}
    previous = ex.get(fraction - 1)
    withheld = bool(previous and str(previous.get("EXADJ") or "").startswith("WITHHELD"))
    start = day_of((ex.get(1) or {}).get("EXSTDTC"))
    end = day_of(until)
    crs: list[int] = []
    icans: list[int] = []
    for row in _rows(store, study_id, usubjid, "XC"):
        day = day_of(row["XCDTC"])
        if day is None or (start is not None and day < start) or (end is not None
                                                                   and day > end):
            continue
        if row["XCCRSGR"] is not None:
            crs.append(int(row["XCCRSGR"]))
        if row["XCICAGR"] is not None:
            icans.append(int(row["XCICAGR"]))
    seen: dict[str, Any] = {}
    if crs:
        seen["crs_grade"] = max(crs)
    if icans:
        seen["icans_grade"] = max(icans)
    if infection is not None:
        seen["uncontrolled_infection"] = infection
    return next_fraction(protocol, fraction, seen, previous_withheld=withheld)


def record_fraction(store: Store, study_id: str, usubjid: str, protocol: Any, plan: Any,
                    fraction: int, values: Mapping[str, Any], *, user: str,
                    submission: str | None) -> tuple[dict[str, Any], Any]:
    """Write fraction ``fraction`` (EX), given or withheld as the hold rules decide; the
    first fraction also sets DM.RFSTDTC. Returns (the EX record, the hold decision)."""
    state = infusion_state(store, study_id, usubjid, protocol)
    dm = state["dm"]
    errors: dict[str, str] = {}
    if not dm.get("ARMCD"):
        raise FormProblems({"_form": "The subject is not enrolled: no dose level assigned"})
    if state["next"] != fraction:
        raise FormProblems({"_form": f"Fraction {fraction} is not the next one to record "
                                     f"(next: {state['next'] or 'none, all recorded'})"})
    _not_future("date", values["date"], errors, _today())
    _not_before("date", values["date"], dm.get("RFICDTC"), "the informed consent", errors)
    if state["ex"]:
        _not_before("date", values["date"], state["ex"][-1]["EXSTDTC"],
                    f"fraction {fraction - 1}", errors)
    if errors:
        raise FormProblems(errors)
    decision = hold_decision(store, study_id, usubjid, protocol, fraction, values["date"],
                             values.get("infection"))
    planned = next((f for f in plan.fractions if f.day == state["split"][fraction - 1].day))
    product = protocol.intervention.product
    if decision.give:
        volume = float(values["volume"])
        cells = volume * float(values["concentration"])
        tolerance = protocol.intervention.dose_tolerance
        if abs(cells - planned.target_cells) > tolerance * planned.target_cells:
            raise FormProblems({"volume": (
                f"{volume:g} mL gives {cells:.3g} cells, outside the protocol's "
                f"±{tolerance:.0%} of the planned {planned.target_cells:.3g} cells "
                f"({planned.volume_ml:g} mL)")})
        if values["bags"] < 1:
            raise FormProblems({"bags": "At least 1 bag for a fraction given"})
        record = {"EXTRT": product, "EXFRACN": fraction,
                  "EXDOSE": round(cells / plan.weight_used_kg), "EXDOSU": "cells/kg",
                  "EXDOSTOT": round(cells), "EXVOL": volume, "EXBAGN": values["bags"],
                  "EXSTDTC": values["date"]}
    else:
        record = {"EXTRT": product, "EXFRACN": fraction, "EXDOSE": 0.0, "EXDOSU": "cells/kg",
                  "EXDOSTOT": 0.0, "EXVOL": 0.0, "EXBAGN": 0, "EXSTDTC": values["date"],
                  "EXADJ": f"WITHHELD: {decision.reason}"}
    try:
        with write_transaction(store.engine):
            written = write_record(store, study_id, "EX", {"USUBJID": usubjid, **record},
                                   user=user, reason="infusion (web)", source=SOURCE,
                                   idempotency_key=submission)
            if fraction == 1 and not written.replayed and not dm.get("RFSTDTC"):
                update_record(store, "DM", (study_id, usubjid),
                              {"RFSTDTC": values["date"]}, user=user,
                              reason="first infusion (study day 0)", source=SOURCE)
            if (not written.replayed and values.get("weight") is not None
                    and values["weight"] != state["weight"]):
                write_domains(store, study_id, {"VS": pd.DataFrame([{
                    "USUBJID": usubjid, "VSTESTCD": "WEIGHT", "VSSTRESN": values["weight"],
                    "VSSTRESU": "kg", "VSDTC": values["date"][:10]}], dtype=object)},
                    user=user, reason="weight for the dose (web)", source=SOURCE)
    except Locked:
        raise
    except StoreError as exc:
        raise _store_problem(exc) from exc
    return written.record, decision


# ---------------------------------------------------------------- response
CRITERIA_TEXT = {"aml_eln2022": "AML: ELN 2022", "all_bbmt2010": "ALL: BBMT 2010"}
RSCAT = {"aml_eln2022": "ELN 2022", "all_bbmt2010": "ALL"}
CATEGORY_TEXT = {"CR": "Complete remission (CR)",
                 "CRh": "CR with partial hematologic recovery (CRh)",
                 "CRi": "CR with incomplete hematologic recovery (CRi)",
                 "MLFS": "Morphologic leukemia-free state (MLFS)",
                 "PR": "Partial remission (PR)", "NR": "No response (NR)",
                 "SD": "Stable disease (SD)", "PD": "Progressive disease (PD)",
                 "RELAPSE": "Relapse", "NE": "Not evaluable (NE)"}


def response_fields(protocol: Any) -> tuple[FormField, ...]:
    criteria = tuple((c, CRITERIA_TEXT[c]) for c in protocol.response_criteria
                     if c in CRITERIA_TEXT)
    return (
        FormField("date", "Assessment date (marrow aspirate)", "RSDTC", "date", required=True),
        FormField("criteria", "Response criteria", "RSCAT", "select", choices=criteria,
                  hint="empty = the protocol's criteria for the subject's diagnosis"),
        FormField("bm_blasts_pct", "Bone marrow blasts", "LBSTRESN (BLAST)", "number",
                  required=True, unit="%", low=0, high=100),
        FormField("marrow_adequate", "Marrow sample adequate", "", "yesno"),
        FormField("pb_blasts_pct", "Blood blasts", "", "number", unit="%", low=0, high=100),
        FormField("circulating_blasts", "Circulating blasts present", "", "yesno"),
        FormField("auer_rods", "Blasts with Auer rods", "", "yesno"),
        FormField("emd", "Extramedullary disease present", "", "yesno"),
        FormField("anc", "Absolute neutrophil count", "", "number", unit="x10^9/L", low=0,
                  high=200),
        FormField("platelets", "Platelets", "", "number", unit="x10^9/L", low=0, high=2000),
        FormField("mrd_flow", "MRD by flow cytometry", "", "number", unit="fraction of cells",
                  low=0, high=1, hint="e.g. 0.0001 for 0.01%"),
    )


ASSESSMENT_KEYS = ("bm_blasts_pct", "marrow_adequate", "pb_blasts_pct", "circulating_blasts",
                   "auer_rods", "emd", "anc", "platelets", "mrd_flow")


def _criteria_for(protocol: Any, disease: str | None) -> str:
    from celltrial.kinetics.virtual import _marrow_criteria

    return _marrow_criteria(protocol, str(disease or ""))


def baseline_of(store: Store, study_id: str, usubjid: str) -> dict[str, Any] | None:
    """The pre-infusion marrow (the last bone-marrow BLAST before day 0) as the response
    criteria's baseline; None when none was recorded."""
    dm = subject_dm(store, study_id, usubjid)
    day0 = day_of(dm.get("RFSTDTC"))
    rows = [r for r in _rows(store, study_id, usubjid, "LB")
            if r["LBTESTCD"] == "BLAST" and r["LBSPEC"] == "BONE MARROW"
            and r["LBSTRESN"] is not None and day0 is not None
            and (day_of(r["LBDTC"]) or day0) < day0]
    return {"bm_blasts_pct": float(rows[-1]["LBSTRESN"])} if rows else None


def assess(store: Store, study_id: str, usubjid: str, protocol: Any,
           values: Mapping[str, Any]) -> tuple[str, Any, str]:
    """(criteria, the marrow result, the overall category) of one assessment."""
    from celltrial.clinical.response import RESPONDERS, assess_response, overall_response

    dm = subject_dm(store, study_id, usubjid)
    criteria = values.get("criteria") or _criteria_for(protocol, dm.get("DISEASE"))
    prior = any(r["RSTESTCD"] == "OVRLRESP" and r["RSSTRESC"] in RESPONDERS
                and r["RSSTRESC"] != "PR"
                for r in _rows(store, study_id, usubjid, "RS"))
    assessment = {k: values.get(k) for k in ASSESSMENT_KEYS if values.get(k) is not None}
    try:
        marrow = assess_response(criteria, assessment,
                                 baseline=baseline_of(store, study_id, usubjid),
                                 prior_remission=prior)
    except CelltrialError as exc:
        raise FormProblems({"_form": exc.message}) from exc
    return criteria, marrow, overall_response(marrow, None)


def record_response(store: Store, study_id: str, usubjid: str, protocol: Any,
                    values: Mapping[str, Any], *, user: str, submission: str | None
                    ) -> tuple[dict[str, Any], Any, str]:
    """Write one marrow assessment: LB BLAST, RS MARROW and RS OVRLRESP (one transaction)."""
    dm = subject_dm(store, study_id, usubjid)
    errors: dict[str, str] = {}
    if not dm.get("RFSTDTC"):
        raise FormProblems({"_form": "No infusion recorded: a response is assessed after "
                                     "day 0 (record the infusion first)"})
    _not_future("date", values["date"], errors, _today())
    _not_before("date", values["date"], dm.get("RFSTDTC"), "the first infusion", errors)
    if errors:
        raise FormProblems(errors)
    criteria, marrow, overall = assess(store, study_id, usubjid, protocol, values)
    date = values["date"]
    rs = [{"USUBJID": usubjid, "RSTESTCD": code, "RSCAT": RSCAT[criteria], "RSORRES": cat,
           "RSSTRESC": cat, "RSDTC": date, "RSEVAL": evaluator}
          for code, cat, evaluator in (("MARROW", marrow.category, "INVESTIGATOR"),
                                       ("OVRLRESP", overall, "DERIVED"))]
    blast = values["bm_blasts_pct"]
    try:
        with write_transaction(store.engine):
            written = write_record(store, study_id, "LB", {
                "USUBJID": usubjid, "LBCAT": "MARROW", "LBTESTCD": "BLAST",
                "LBTEST": "Blasts", "LBSPEC": "BONE MARROW", "LBORRES": f"{blast:g}",
                "LBORRESU": "%", "LBSTRESN": float(blast), "LBSTRESU": "%",
                "LBDTC": date, "LBMETHOD": "MORPHOLOGY"}, user=user,
                reason="response assessment (web)", source=SOURCE,
                idempotency_key=submission)
            if not written.replayed:
                write_domains(store, study_id, {"RS": pd.DataFrame(rs, dtype=object)},
                              user=user, reason="response assessment (web)", source=SOURCE)
    except Locked:
        raise
    except StoreError as exc:
        raise _store_problem(exc) from exc
    return written.record, marrow, overall


# ---------------------------------------------------------------- samples
@dataclass(frozen=True)
class Assay:
    code: str
    domain: str
    text: str
    unit: str
    lloq: float | None


ASSAYS: dict[str, Assay] = {a.code: a for a in (
    Assay("CARTQPCR", "PC", "CAR transgene by qPCR (blood)", "copies/ug gDNA", 50.0),
    Assay("CARTPCT", "PC", "CAR+ T cells by flow, % of CD3+ (blood)", "%", 0.1),
    Assay("CARTABS", "PC", "CAR+ T cells by flow, cells/uL (blood)", "cells/uL", 1.0),
    Assay("ADACAR", "IS", "Anti-CAR antibodies (serum)", "titre", None),
    # cytokines (LB, LBCAT CYTOKINE; CDISC CT LBTESTCD, as the virtual trial writes them)
    Assay("IL6", "LB", "Interleukin 6 (serum), pg/mL", "pg/mL", None),
    Assay("IL10", "LB", "Interleukin 10 (serum), pg/mL", "pg/mL", None),
    Assay("IFNG", "LB", "Interferon gamma (serum), pg/mL", "pg/mL", None),
    Assay("TNFA", "LB", "Tumor necrosis factor alpha (serum), pg/mL", "pg/mL", None),
)}
"""The sample results a site enters; units and limits of quantitation as the virtual trial's
assays (:data:`celltrial.kinetics.virtual.ASSAYS`: qPCR LLOQ 50 copies/ug gDNA, flow 0.1 %
of CD3+, 1 cell/uL)."""


SAMPLE_FIELDS = (
    FormField("test", "Sample result", "PCTESTCD / ISTESTCD / LBTESTCD", "select", required=True,
              choices=tuple((a.code, a.text) for a in ASSAYS.values())),
    FormField("date", "Collected on", "PCDTC / ISDTC / LBDTC", "datetime", required=True),
    FormField("value", "Result", "PCSTRESN / ISSTRESN / LBSTRESN", "number", low=0,
              hint="in the assay's unit (titre for antibodies); empty when below the limit "
                   "of quantitation or negative"),
    FormField("below", "Below the limit of quantitation", "PCORRES", "yesno"),
    FormField("lloq", "Limit of quantitation", "PCLLOQ", "number", low=0,
              hint="empty = the assay's usual limit"),
    FormField("antibody", "Anti-CAR antibodies", "ISSTRESC", "select",
              choices=(("POSITIVE", "Positive"), ("NEGATIVE", "Negative"))),
)


def _sample_problem(dm: Mapping[str, Any]) -> FormProblems | None:
    """Samples are collected from enrolled subjects (a dose level assigned), else the refusal."""
    if dm.get("ARMCD"):
        return None
    return FormProblems({"_form": "The subject is not enrolled: samples are collected "
                                  "from enrolled subjects"})


CYTOKINE_NAMES = {"IL6": "Interleukin 6", "IL10": "Interleukin 10",
                  "IFNG": "Interferon Gamma", "TNFA": "Tumor Necrosis Factor Alpha"}
"""LBTEST of the cytokine assays (CDISC CT LBTEST, as celltrial.kinetics.virtual.LAB_TESTS)."""


def build_sample(values: Mapping[str, Any], *, consent: str | None, today: dt.date
                 ) -> tuple[str, dict[str, Any]]:
    """(domain, record without USUBJID) of one sample result typed as :data:`SAMPLE_FIELDS`
    reads it; FormProblems by field otherwise. The one copy of the sample rules, used by the
    form (:func:`record_sample`) and the CSV file (:func:`record_sample_file`):

    - collected not after today nor before the informed consent (ICH E6(R3) 2.8: no trial
      procedure before consent);
    - PC (SDTMIG 3.4 PC): a result below the limit of quantitation is PCORRES ``<LLOQ`` with
      no numeric PCSTRESN and PCLLOQ the limit (the assay's usual one unless given); a numeric
      result under the limit is refused, to be recorded as below it;
    - IS ADACAR (SDTMIG 3.4 IS, anti-drug antibodies): POSITIVE or NEGATIVE, a titre only
      for a positive result;
    - LB cytokines (IL-6, IL-10, IFN-gamma, TNF-alpha; LBCAT CYTOKINE, serum, pg/mL): the
      measured value, required (no CTCAE grade).
    """
    assay = ASSAYS[values["test"]]
    errors: dict[str, str] = {}
    _not_future("date", values["date"], errors, today)
    _not_before("date", values["date"], consent, "the informed consent", errors)
    value, below = values.get("value"), values.get("below")
    record: dict[str, Any]
    if assay.domain == "IS":
        result = values.get("antibody")
        if result is None:
            errors["antibody"] = "Required for anti-CAR antibodies"
        elif result == "NEGATIVE" and value is not None:
            errors["value"] = "No titre for a negative result"
        record = {"ISTESTCD": "ADACAR", "ISORRES": result, "ISSTRESC": result,
                  "ISSTRESN": value, "ISDTC": values["date"]}
    elif assay.domain == "LB":
        if below or values.get("lloq") is not None:
            errors["below" if below else "lloq"] = ("Enter cytokines as the measured value "
                                                    "in pg/mL")
        elif value is None:
            errors["value"] = "Required for a cytokine"
        record = {"LBCAT": "CYTOKINE", "LBTESTCD": assay.code, "LBTEST": CYTOKINE_NAMES[
                      assay.code], "LBSPEC": "SERUM",
                  "LBORRES": f"{value:g}" if value is not None else None,
                  "LBORRESU": assay.unit, "LBSTRESN": value, "LBSTRESU": assay.unit,
                  "LBDTC": values["date"]}
    else:
        lloq = values.get("lloq") if values.get("lloq") is not None else assay.lloq
        if below and value is not None:
            errors["value"] = "Leave empty when the result is below the limit of quantitation"
        elif not below and value is None:
            errors["value"] = "Required (or tick 'below the limit of quantitation')"
        elif value is not None and lloq is not None and value < lloq:
            errors["value"] = (f"Below the limit of quantitation ({lloq:g} {assay.unit}): "
                               "record it as below the limit")
        record = {"PCTESTCD": assay.code, "PCSTRESN": None if below else value,
                  "PCSTRESU": assay.unit,
                  "PCORRES": "<LLOQ" if below else (f"{value:g}" if value is not None
                                                   else None),
                  "PCLLOQ": lloq, "PCSPEC": "BLOOD", "PCDTC": values["date"]}
    if errors:
        raise FormProblems(errors)
    return assay.domain, record


def record_sample(store: Store, study_id: str, usubjid: str, values: Mapping[str, Any], *,
                  user: str, submission: str | None) -> dict[str, Any]:
    """Write one sample result (:func:`build_sample`) of an enrolled subject."""
    dm = subject_dm(store, study_id, usubjid)
    refused = _sample_problem(dm)
    if refused:
        raise refused
    domain, record = build_sample(values, consent=dm.get("RFICDTC"), today=_today())
    return _write_one(store, study_id, domain, {"USUBJID": usubjid, **record},
                      user=user, reason="sample result (web)", submission=submission)


# ---------------------------------------------------------------- disposition
DISPOSITIONS: tuple[tuple[str, str], ...] = (
    ("COMPLETED", "Completed the study"),
    ("DEATH", "Died"),
    ("ADVERSE EVENT", "Discontinued: adverse event"),
    ("PROGRESSIVE DISEASE", "Discontinued: progressive disease"),
    ("WITHDRAWAL BY SUBJECT", "Discontinued: withdrawal by the subject"),
    ("PHYSICIAN DECISION", "Discontinued: physician decision"),
    ("LOST TO FOLLOW-UP", "Lost to follow-up"),
    ("OTHER", "Discontinued: other reason"),
)
"""End-of-study events (CDISC CT NCOMPLT / DS decoded terms)."""

DISPOSITION_FIELDS = (
    FormField("event", "End of study", "DSDECOD", "select", required=True,
              choices=DISPOSITIONS),
    FormField("date", "Date", "DSSTDTC", "date", required=True,
              hint="the date of death for a death"),
    FormField("reason", "Reason or cause of death", "DSTERM",
              hint="required unless the subject completed the study"),
)


def record_disposition(store: Store, study_id: str, usubjid: str, values: Mapping[str, Any],
                       *, user: str, submission: str | None) -> dict[str, Any]:
    """Write DS and set DM.RFPENDTC (and DTHDTC, DTHFL for a death), one transaction."""
    dm = subject_dm(store, study_id, usubjid)
    ds = _rows(store, study_id, usubjid, "DS")
    errors: dict[str, str] = {}
    if ds and not _replay(store, submission):
        raise FormProblems({"_form": "The subject already has an end-of-study record ("
                                     f"{ds[-1]['DSDECOD']} on {ds[-1]['DSSTDTC']})"})
    event, reason = values["event"], values.get("reason")
    if event != "COMPLETED" and not reason:
        errors["reason"] = ("Required: the cause of death" if event == "DEATH" else
                            "Required: why the subject left the study")
    _not_future("date", values["date"], errors, _today())
    _not_before("date", values["date"], dm.get("RFICDTC"), "the informed consent", errors)
    _not_before("date", values["date"], dm.get("RFSTDTC"), "the first infusion", errors)
    if errors:
        raise FormProblems(errors)
    term = reason or "Completed study follow-up"
    changes: dict[str, Any] = {"RFPENDTC": values["date"]}
    if event == "DEATH":
        changes.update(DTHDTC=values["date"], DTHFL="Y")
    try:
        with write_transaction(store.engine):
            written = write_record(store, study_id, "DS", {
                "USUBJID": usubjid, "DSDECOD": event, "DSTERM": term,
                "DSSTDTC": values["date"]}, user=user, reason="disposition (web)",
                source=SOURCE, idempotency_key=submission)
            if not written.replayed:
                update_record(store, "DM", (study_id, usubjid), changes, user=user,
                              reason=f"disposition: {event.lower()} (web)", source=SOURCE)
    except Locked:
        raise
    except StoreError as exc:
        raise _store_problem(exc) from exc
    return written.record


# ---------------------------------------------------------------- concomitant medications
CLASS_TEXT = {"IL6_BLOCKADE": "IL-6 blockade", "CORTICOSTEROID": "corticosteroid",
              "IL1_BLOCKADE": "IL-1 blockade", "JAK_INHIBITOR": "JAK inhibitor",
              "HLH_CHEMOTHERAPY": "HLH chemotherapy", "IMMUNOGLOBULIN": "immunoglobulin",
              "ANTIBACTERIAL": "antibacterial", "ANTIVIRAL": "antiviral",
              "ANTIFUNGAL": "antifungal", "ANTIPROTOZOAL": "antiprotozoal"}
"""Readable text of the drug classes of :data:`celltrial.clinical.medications.CLASSES`."""

CATEGORY_ORDER = ("CRS/ICANS MANAGEMENT", "IMMUNOGLOBULIN", "ANTIMICROBIAL")

ROUTE_TEXT = {"INTRAVENOUS": "Intravenous", "ORAL": "Oral", "SUBCUTANEOUS": "Subcutaneous",
              "INTRAMUSCULAR": "Intramuscular"}
"""Readable text of the store's CMROUTE values (CDISC CT ROUTE submission values)."""

DOSE_UNITS = (("mg", "mg"), ("mg/kg", "mg/kg"), ("g", "g"), ("g/kg", "g/kg"),
              ("mg/m2", "mg/m\u00b2"), ("IU", "IU"))


def drug_choices() -> tuple[tuple[str, str], ...]:
    """(CMDECOD, readable text) of every controlled medication
    (:func:`celltrial.clinical.medications.medications`, ``data/cm_drugs.csv``), CRS/ICANS
    management first (tocilizumab, corticosteroids, anakinra, ...)."""
    from celltrial.clinical.medications import medications

    drugs = sorted(medications().values(),
                   key=lambda m: (CATEGORY_ORDER.index(m.category)
                                  if m.category in CATEGORY_ORDER else 9, m.klass, m.name))
    return tuple((m.name, f"{m.name.capitalize()} - {CLASS_TEXT.get(m.klass, m.klass)} "
                          f"({m.category.lower()})") for m in drugs)


def medication_fields() -> tuple[FormField, ...]:
    from celltrial.store.plausibility import vocabularies

    routes = vocabularies("CM")["CMROUTE"]
    return (
        FormField("drug", "Medication", "CMDECOD", "select", required=True,
                  choices=drug_choices(),
                  hint="the controlled list of CAR-T supportive care (cm_drugs.csv)"),
        FormField("indication", "Indication", "CMINDC",
                  hint="e.g. CRS grade 2, ICANS grade 3, HSV prophylaxis"),
        FormField("dose", "Dose per administration", "CMDOSE", "number", required=True,
                  low=0, high=1e6),
        FormField("unit", "Dose unit", "CMDOSU", "select", required=True, choices=DOSE_UNITS),
        FormField("route", "Route", "CMROUTE", "select", required=True,
                  choices=tuple((r, ROUTE_TEXT.get(r, r.capitalize())) for r in routes)),
        FormField("start", "Started on", "CMSTDTC", "date", required=True),
        FormField("end", "Stopped on", "CMENDTC", "date", hint="empty = ongoing"),
    )


def record_medication(store: Store, study_id: str, usubjid: str, values: Mapping[str, Any],
                      *, user: str, submission: str | None) -> dict[str, Any]:
    """Write one CM record (the drug's CMCAT from the controlled list) through the store's
    validation (controlled names, CMDOSE range, CMENDTC >= CMSTDTC) and audit trail; a start
    after today or before consent, an end before the start, or a subject not enrolled:
    FormProblems, nothing written."""
    from celltrial.clinical.medications import medication

    dm = subject_dm(store, study_id, usubjid)
    if not dm.get("ARMCD"):
        raise FormProblems({"_form": "The subject is not enrolled: concomitant medications "
                                     "are recorded for enrolled subjects"})
    errors: dict[str, str] = {}
    today = _today()
    for field in ("start", "end"):
        _not_future(field, values.get(field), errors, today)
        _not_before(field, values.get(field), dm.get("RFICDTC"), "the informed consent",
                    errors)
    _not_before("end", values.get("end"), values["start"], "the start", errors)
    drug = medication(values["drug"])
    if drug is None:  # read_form keeps to the choices; the list may change between pages
        errors["drug"] = "Choose one of the options"
    if errors:
        raise FormProblems(errors)
    assert drug is not None
    record = {"USUBJID": usubjid, "CMTRT": drug.name, "CMDECOD": drug.name,
              "CMCAT": drug.category, "CMINDC": values.get("indication"),
              "CMDOSE": values["dose"], "CMDOSU": values["unit"], "CMROUTE": values["route"],
              "CMSTDTC": values["start"], "CMENDTC": values.get("end")}
    return _write_one(store, study_id, "CM", record, user=user,
                      reason="concomitant medication (web)", submission=submission)


# ---------------------------------------------------------------- lab results by CSV file
LAB_CSV_COLUMNS = ("test", "value", "unit", "lln", "uln", "date", "specimen")
"""Columns of a lab CSV upload: the lab form's and the API's fields (``test`` and ``value``
and ``date`` required), one row per result."""


def read_csv_file(data: bytes, columns: tuple[str, ...], required: tuple[str, ...]
                  ) -> list[dict[str, str]]:
    """The rows of an uploaded CSV (UTF-8, a header line naming columns among ``columns``,
    ``required`` present); FormProblems naming the file's problem."""
    import csv
    import io

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormProblems({"file": f"Not a UTF-8 text file (byte {exc.start})"}) from exc
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    unknown = [h for h in header if h not in columns]
    missing = [h for h in required if h not in header]
    if not header or unknown or missing:
        raise FormProblems({"file": "The first line must name the columns, among "
                                    + ", ".join(columns) + (
                                        f" (unknown: {', '.join(unknown)})" if unknown else "")
                                    + (f" (missing: {', '.join(missing)})" if missing
                                       else "")})
    rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            for row in reader]
    if not rows:
        raise FormProblems({"file": "No result rows below the header line"})
    return rows


def read_lab_csv(data: bytes) -> list[dict[str, str]]:
    """The rows of an uploaded lab CSV (:data:`LAB_CSV_COLUMNS`)."""
    return read_csv_file(data, LAB_CSV_COLUMNS, ("test", "value", "date"))


def _file_problems(problems: list[str]) -> FormProblems:
    """The refused lines of a file, next to its field (the first 20 named)."""
    return FormProblems({"file": "; ".join(problems[:20]) + (
        f"; and {len(problems) - 20} more" if len(problems) > 20 else "")})


def _write_file(store: Store, study_id: str, usubjid: str,
                records: Mapping[str, list[dict[str, Any]]], *, user: str, reason: str,
                kind: str, submission: str | None) -> None:
    """All the records of one uploaded file (by domain) in ONE store write transaction
    (validated, audited: :func:`celltrial.store.write_domains`), and the form's
    ``submission`` key with them so that the same upload again writes nothing."""
    frames = {domain: pd.DataFrame(rows, dtype=object) for domain, rows in records.items()
              if rows}
    count = sum(len(rows) for rows in records.values())
    try:
        with write_transaction(store.engine) as connection:
            write_domains(store, study_id, frames, user=user, reason=reason, source=SOURCE)
            if submission:  # the form's key: the same upload again writes nothing
                from celltrial.store.audit import now
                from celltrial.store.entry import KEY_PATTERN
                from celltrial.store.schema import Submission

                if KEY_PATTERN.fullmatch(submission):
                    connection.execute(Submission.__table__.insert(), {
                        "key": submission, "user": user, "study_id": study_id,
                        "domain": kind, "at": now(),
                        "record_key": f"USUBJID={usubjid};rows={count}"})
    except Locked:
        raise
    except StoreError as exc:
        raise _store_problem(exc) from exc


ALREADY_UPLOADED = "This file was already uploaded with this form: nothing was stored twice"


def record_lab_file(store: Store, study_id: str, usubjid: str, data: bytes, *, user: str,
                    submission: str | None) -> list[dict[str, Any]]:
    """Grade every row of a lab CSV as the lab form does (:func:`celltrial.web.capture
    .build_lab`, the same date checks) and write them all in ONE store write (validated,
    audited: :func:`celltrial.store.write_domains`), or nothing: FormProblems listing each
    refused row. A file already uploaded with this form (its ``submission`` key) writes
    nothing again."""
    from celltrial.web import capture

    rows = read_lab_csv(data)
    if _replay(store, submission):
        raise FormProblems({"_form": ALREADY_UPLOADED})
    dm = subject_dm(store, study_id, usubjid)
    failed = capture._screen_failure_date(store, study_id, usubjid)
    today = _today()
    records, problems = [], []
    for number, row in enumerate(rows, start=2):
        try:
            record, _grade = capture.build_lab(row)
        except capture.FieldErrors as exc:
            problems += [f"line {number}, {k}: {plain_message(v)}" for k, v in exc.errors.items()]
            continue
        dates = capture.entry_date_problems("LB", record, today=today,
                                            consent=dm.get("RFICDTC"), screen_failed=failed)
        problems += [f"line {number}, {k}: {plain_message(v)}" for k, v in dates.items()]
        records.append({"USUBJID": usubjid, **{k: v for k, v in record.items()
                                                if v is not None}})
    if problems:
        raise _file_problems(problems)
    _write_file(store, study_id, usubjid, {"LB": records}, user=user,
                reason="lab results file (web)", kind="LB FILE", submission=submission)
    return records


# ---------------------------------------------------------------- sample results by CSV file
SAMPLE_CSV_COLUMNS = tuple(f.name for f in SAMPLE_FIELDS)
"""Columns of a sample-result CSV upload: the sample form's fields (``test`` an
:data:`ASSAYS` code, ``date``, ``value``, ``below`` Y/N, ``lloq``, ``antibody``
POSITIVE/NEGATIVE; ``test`` and ``date`` required), one result per row."""


def record_sample_file(store: Store, study_id: str, usubjid: str, data: bytes, *, user: str,
                       submission: str | None) -> list[dict[str, Any]]:
    """Check every row of a sample CSV as the sample form does (:data:`SAMPLE_FIELDS` read
    by :func:`celltrial.web.forms.read_form`, then :func:`build_sample`) and write them all,
    PC and IS together, in ONE store write, or nothing: FormProblems listing each refused
    row. Samples of a subject not enrolled are refused; a file already uploaded with this
    form (its ``submission`` key) writes nothing again."""
    from celltrial.web.forms import read_form

    rows = read_csv_file(data, SAMPLE_CSV_COLUMNS, ("test", "date"))
    if _replay(store, submission):
        raise FormProblems({"_form": ALREADY_UPLOADED})
    dm = subject_dm(store, study_id, usubjid)
    refused = _sample_problem(dm)
    if refused:
        raise refused
    today = _today()
    records: dict[str, list[dict[str, Any]]] = {a.domain: [] for a in ASSAYS.values()}
    problems: list[str] = []
    for number, row in enumerate(rows, start=2):
        values, errors = read_form(SAMPLE_FIELDS, row)
        if not errors:
            try:
                domain, record = build_sample(values, consent=dm.get("RFICDTC"), today=today)
            except FormProblems as exc:
                errors = exc.errors
            else:
                records[domain].append({"USUBJID": usubjid, **{
                    k: v for k, v in record.items() if v is not None}})
        problems += [f"line {number}, {k}: {plain_message(v)}" for k, v in errors.items()]
    if problems:
        raise _file_problems(problems)
    _write_file(store, study_id, usubjid, records, user=user,
                reason="sample results file (web)", kind="SMP FILE", submission=submission)
    return [record for domain in records.values() for record in domain]
