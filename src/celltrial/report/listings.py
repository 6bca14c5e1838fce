"""Patient data listings: the appendix of the clinical study report (ICH E3 section 16.2).

One row per patient (or per adverse event), read from the analysis datasets as they are:

- Listing 16.2.1, discontinued patients and the disposition of every screened patient (ADSL:
  analysis sets, first infusion, end-of-study status, death, transplant, last known alive;
  the reason, ADaM IG ADSL ``DCSREAS``, where the dataset carries it);
- Listing 16.2.4, demographic and baseline data of the infused patients (ADSL);
- Listing 16.2.5, dosing: planned and actual CAR-T cells/kg per patient (ADSL ``TRTDOSE``
  against the protocol's dose level), the split fractions given, withheld (hold rule) or not
  recorded and the bags (ADEX);
- Listing 16.2.6, individual efficacy response data: best overall response (ADRS ``BOR``),
  MRD status in remission (ADSL ``MRDSTAT``), overall survival and progression-free survival
  times with their censoring (ADTTE);
- Listing 16.2.7, adverse events by patient (ADAE, treatment-emergent): term, grade, onset
  and end day with the duration in one cell, seriousness, relationship and outcome in another
  (fewer cells: WeasyPrint's print costs about 2 ms per table cell, benchmarks/RESULTS.md).

Values are printed as the CSR tables print them (:mod:`celltrial.report.csr`): dates as ISO
8601 days, ``-`` for a value the dataset does not hold, integers without ``.0``. Listings are
printed on landscape pages (the same paper turned), as CSR appendices usually are.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from celltrial.report.csr import PER_KG, CsrTable, Row, is_missing, num, per_kg
from celltrial.report.data import ReportData

LISTING_EMPTY = "No patient received CAR-T cells by the data cut-off: nothing to list."

YES_NO = {"Y": "yes", "N": "no"}


def _date(value: Any) -> str:
    """An ISO 8601 day, ``-`` when missing."""
    return "-" if is_missing(value) else pd.Timestamp(value).date().isoformat()


def _text(value: Any, mapping: dict[str, str] | None = None) -> str:
    if is_missing(value) or str(value) == "":
        return "-"
    text = str(value)
    return (mapping or {}).get(text, text)


def _day(start: Any, end: Any) -> str:
    """Days from ``start`` (day 0, the first infusion) to ``end``; ``-`` when either is missing."""
    if is_missing(start) or is_missing(end):
        return "-"
    return str((pd.Timestamp(end) - pd.Timestamp(start)).days)


def _listing(number: str, title: str, population: str, stub: str, columns: tuple[str, ...],
             rows: list[Row], notes: tuple[str, ...] = (), empty: str = LISTING_EMPTY
             ) -> CsrTable:
    return CsrTable(number, title, population, stub, columns, tuple(rows), footnotes=notes,
                    empty_reason=empty, wide=True, text_cells=True, landscape=True,
                    kind="Listing")


def disposition_listing(rd: ReportData) -> CsrTable:
    """Listing 16.2.1: every screened patient's analysis sets and status at the data cut-off."""
    adsl = rd.adsl.sort_values("USUBJID") if len(rd.adsl) else rd.adsl
    has_reason = "DCSREAS" in adsl
    columns = ("Dose level", "Consent", "First infusion", "DLT-evaluable",
               "Efficacy-evaluable", "Status at the data cut-off",
               *(("Reason",) if has_reason else ()), "Death, day", "Allo-HSCT, day",
               "Last known alive")
    rows = []
    for r in adsl.itertuples():
        infused = r.SAFFL == "Y"
        status = ("screen failure" if r.ENRLFL != "Y" else
                  _text(r.EOSSTT).lower() if infused else
                  f"enrolled, not infused ({_text(r.EOSSTT).lower()})")
        death = ("-" if is_missing(r.DTHDT) else
                 _day(r.TRTSDT, r.DTHDT) if infused else _date(r.DTHDT))
        hsct = "-" if r.HSCTFL != "Y" else _day(r.TRTSDT, r.HSCTDT)
        reason = (_reason(r),) if has_reason else ()
        rows.append(Row(str(r.USUBJID), (
            _text(r.TRT01A) if infused else "-", _date(r.RFICDT), _date(r.TRTSDT),
            _text(r.DLTEVLFL, YES_NO) if infused else "-",
            _text(r.EFFFL, YES_NO) if infused else "-", status, *reason, death, hsct,
            _date(r.LSTALVDT))))
    notes = ["Day: days after the first infusion (day 0); a death before any infusion by its "
             "date.",
             "Status from ADSL EOSSTT (ongoing, completed, discontinued); screen failures are "
             "the patients not enrolled (ADSL ENRLFL)."]
    if not has_reason:
        notes.append("The reason for discontinuation and for screen failure (SDTM DS DSTERM) "
                     "is not carried by the analysis datasets (no ADSL DCSREAS).")
    return _listing("16.2.1", "Disposition of every screened patient",
                    f"Population: all screened patients, N = {len(adsl)}", "Patient", columns,
                    rows, tuple(notes), empty="No patient was screened by the data cut-off.")


def _reason(r: Any) -> str:
    """The reason of a discontinued patient: ADSL DCSREAS, then the failed screening criteria
    (SCRFCRIT) or the recorded wording (DCSREASP) where it adds to it."""
    if is_missing(getattr(r, "DCSREAS", None)) or str(r.DCSREAS) == "":
        return "-"
    from celltrial.report.sections import reason_text

    text = reason_text(r.DCSREAS)
    criteria = getattr(r, "SCRFCRIT", None)
    detail = getattr(r, "DCSREASP", None)
    if not is_missing(criteria) and criteria:
        return f"{text}: criteria not met {criteria}"
    if not is_missing(detail) and detail and str(detail).strip().lower() != text.lower():
        return f"{text}: {detail}"
    return text


def demographics_listing(rd: ReportData) -> CsrTable:
    """Listing 16.2.4: demographic and baseline data per infused patient."""
    s = rd.safety.sort_values("USUBJID")
    rows = [Row(str(r.USUBJID), (_text(r.TRT01A), num(r.AGE), _text(r.SEX), _text(r.DISEASE),
                                 num(r.BWEIGHT), num(r.BBLAST), num(r.BCD7BLST),
                                 _text(r.EMDFL, YES_NO)))
            for r in s.itertuples()]
    return _listing("16.2.4", "Demographic and baseline data", _population(rd), "Patient",
                    ("Dose level", "Age (years)", "Sex", "Diagnosis", "Weight (kg)",
                     "Marrow blasts (%)", "CD7+ blasts (% of blasts)",
                     "Extramedullary disease"), rows,
                    ("NE: not measured at baseline.",))


def _population(rd: ReportData) -> str:
    return f"Population: safety set (patients who received any CAR-T cells), N = {len(rd.safety)}"


def _fractions_text(fractions: pd.DataFrame) -> tuple[str, str, str]:
    """(given/planned, withheld with the rule or not recorded, bags) of one patient's ADEX."""
    given = fractions[fractions["FRSTAT"] == "GIVEN"]
    others = []
    for r in fractions[fractions["FRSTAT"] != "GIVEN"].itertuples():
        if r.FRSTAT == "WITHHELD":
            rule = "" if is_missing(r.HOLDRL) or not r.HOLDRL else f" ({r.HOLDRL})"
            others.append(f"{num(r.EXFRACN)} withheld{rule}")
        else:
            others.append(f"{num(r.EXFRACN)} not recorded")
    bags = given["EXBAGN"].dropna()
    return (f"{len(given)}/{len(fractions)}", "; ".join(others) or "-",
            num(bags.sum()) if len(bags) else "-")


def exposure_listing(rd: ReportData) -> CsrTable:
    """Listing 16.2.5: planned and actual dose per infused patient, with the split fractions
    given, withheld (and the hold rule) and the bags where ADEX carries them."""
    planned = {d.id: d.cells_per_kg for d in rd.protocol.intervention.dose_levels}
    tol = rd.protocol.intervention.dose_tolerance
    has_adex = "adex" in rd.datasets
    adex = rd.ds("adex")
    per_subject = dict(tuple(adex.groupby("USUBJID"))) if len(adex) else {}
    rows = []
    for r in rd.safety.sort_values("USUBJID").itertuples():
        plan = planned.get(str(r.TRT01A))
        ratio = r.TRTDOSE / plan if plan and not is_missing(r.TRTDOSE) else None
        outside = "-" if ratio is None else ("yes" if abs(ratio - 1) > tol else "no")
        split = (_fractions_text(per_subject[r.USUBJID]) if r.USUBJID in per_subject
                 else ("-", "-", "-")) if has_adex else ()
        rows.append(Row(str(r.USUBJID), (_text(r.TRT01A), _date(r.TRTSDT), per_kg(plan),
                                         per_kg(r.TRTDOSE), num(ratio), outside, *split)))
    notes = ["Actual total: the sum of the fractions given (ADSL TRTDOSE)."]
    notes.append("Fractions: given / planned, the others withheld (hold rule) or not recorded, "
                 "and the bags infused (ADEX)." if has_adex else
                 "Fractions given or withheld, with the hold rule applied, and bags are "
                 "recorded in EX and not carried by the analysis datasets.")
    return _listing("16.2.5", "Dosing: planned and actual CAR-T cells/kg", _population(rd),
                    "Patient", ("Dose level", "First infusion", f"Planned ({PER_KG})",
                                f"Actual total ({PER_KG})", "Actual / planned",
                                f"Outside +/-{100 * tol:.0f}%",
                                *(("Fractions given", "Fractions not given", "Bags")
                                  if has_adex else ())), rows, tuple(notes))


def efficacy_listing(rd: ReportData) -> CsrTable:
    """Listing 16.2.6: best overall response and survival times per infused patient."""
    adrs, adtte = rd.ds("adrs"), rd.ds("adtte")
    bor = (adrs[adrs["PARAMCD"] == "BOR"].set_index("USUBJID")["AVALC"]
           if len(adrs) else pd.Series(dtype=object))

    def tte(paramcd: str) -> dict[str, str]:
        if adtte.empty:
            return {}
        d = adtte[adtte["PARAMCD"] == paramcd]
        return {str(r.USUBJID): f"{num(r.AVAL)} ({'censored' if r.CNSR == 1 else 'event'})"
                for r in d.itertuples() if not is_missing(r.AVAL)}

    os_, pfs = tte("OS"), tte("PFS")
    has_mrd = "MRDSTAT" in rd.adsl
    rows = [Row(str(r.USUBJID), (_text(r.TRT01A), _text(r.EFFFL, YES_NO),
                                 _text(bor.get(r.USUBJID)),
                                 *((_text(r.MRDSTAT, MRD_STATUS),) if has_mrd else ()),
                                 os_.get(str(r.USUBJID), "-"), pfs.get(str(r.USUBJID), "-")))
            for r in rd.safety.sort_values("USUBJID").itertuples()]
    notes = ["Best overall response: ADRS PARAMCD BOR (ELN 2022 / NCCN ALL categories); '-' "
             "where no post-infusion assessment.",
             "Times from the first infusion (ADTTE), event or censored."]
    if has_mrd:
        notes.append("MRD in remission (ADSL MRDSTAT): negative below 0.1% (AML/MPAL) or "
                     "0.01% (ALL/LBL) from 7 days before the first CR/CRh/CRi on; '-' without "
                     "a remission or an MRD result.")
    return _listing("16.2.6", "Individual efficacy response data", _population(rd), "Patient",
                    ("Dose level", "Efficacy-evaluable", "Best overall response",
                     *(("MRD in remission",) if has_mrd else ()),
                     "Overall survival, days", "Progression-free survival, days"), rows,
                    tuple(notes))


MRD_STATUS = {"NEGATIVE": "negative", "POSITIVE": "positive"}


def adverse_event_listing(rd: ReportData) -> CsrTable:
    """Listing 16.2.7: every treatment-emergent adverse event of the infused patients, by
    patient and onset day (patient heading rows carry the dose level)."""
    adae = rd.ds("adae")
    if len(adae):
        if "TRTEMFL" in adae:
            adae = adae[adae["TRTEMFL"] == "Y"]
        adae = adae[adae["USUBJID"].isin(rd.safety["USUBJID"])]
    rows: list[Row] = []
    if len(adae):
        adae = adae.sort_values(["USUBJID", "ASTDY", "AEDECOD"], na_position="last")
        for subject, events in adae.groupby("USUBJID", sort=False):
            level = _text(events["TRT01A"].iloc[0])
            rows.append(Row(f"{subject} ({level})", (), 0, True))
            for r in events.itertuples():
                rows.append(Row(str(r.AEDECOD), (
                    num(r.ATOXGRN), f"{num(r.ASTDY)}-{num(r.AENDY)} ({num(r.ADURN)})",
                    f"{_text(r.AESER, YES_NO)}; {_text(r.AEREL).lower()}; "
                    f"{_text(r.AEOUT).lower()}"), 1))
    return _listing("16.2.7", "Adverse events by patient", _population(rd),
                    "Patient (dose level) / term", ("Grade", "Onset-end day (duration, days)",
                                                    "Serious; relationship; outcome"), rows,
                    ("Treatment-emergent adverse events (ADAE TRTEMFL); CTCAE v5.0 terms and "
                     "grades, CRS and ICANS graded by ASTCT 2019.",
                     "Days after the first infusion (day 0); NE: not ended by the data cut-off.",
                     "Serious: yes / no; relationship to CAR-T cells and outcome as recorded."),
                    empty=(LISTING_EMPTY if rd.safety.empty
                           else "No treatment-emergent adverse event was reported."))


LISTINGS = (disposition_listing, demographics_listing, exposure_listing, efficacy_listing,
            adverse_event_listing)
"""The listings of the appendix, in ICH E3 16.2 order."""


def listings(rd: ReportData) -> list[CsrTable]:
    """Every listing of the appendix."""
    return [build(rd) for build in LISTINGS]
