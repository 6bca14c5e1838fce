"""The sections of the clinical study report, in ICH E3 order, declared as data (``SECTIONS``).

Each builder takes the :class:`~celltrial.report.data.ReportData` of a study and returns the
blocks of its section: paragraphs, numbered CSR tables (:mod:`celltrial.report.csr`) and
figure references (ids of :data:`celltrial.report.figures.FIGURES`). Estimates with CIs are
read from ``endpoints.json``; counts and medians summarise the analysis datasets (the table
programs of a CSR); no endpoint is derived again here.

Table numbering follows ICH E3 section 14 (14.1 demographic data, 14.2 efficacy, 14.3
safety) with study-specific sub-numbers; protocol tables are numbered 9.x (E3 section 9,
investigational plan) and the escalation 12.x; the listings of the appendix 16.2.x (E3 section
16.2, :mod:`celltrial.report.listings`, printed on landscape pages).

A value the analysis datasets do not carry (a screen-failure reason without ADSL DCSREAS, the
fractions withheld without an exposure dataset) is not re-derived from SDTM here: the table's
footnote says it is not carried, and the table reads it as soon as a derivation adds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import re

import numpy as np
import pandas as pd

from celltrial.report.csr import (
    MILLION, NE, PER_KG, CsrTable, Row, column, est_ci, is_missing, median_range, n_pct, num,
    per_kg,
)
from celltrial.report.committee import committee_blocks
from celltrial.report.data import ReportData, assumptions

NO_INFUSED = ("No patient received CAR-T cells by the data cut-off: the safety set is empty, "
              "so there is nothing to tabulate.")


@dataclass(frozen=True)
class Block:
    """One item of a section: ``kind`` p (paragraph), table, figure, warn, list."""

    kind: str
    text: str = ""
    table: CsrTable | None = None
    figure: str = ""
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    """A report section: number, id (anchor), title and its blocks."""

    number: str
    id: str
    title: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)
    landscape: bool = False
    """Printed on landscape pages (the listings of the appendix)."""


def P(text: str) -> Block:
    return Block("p", text=text)


#: tables whose cells are text (left-aligned); the others hold numbers, centred
TEXT_TABLES = frozenset({"9.1", "9.2", "9.3", "9.4", "9.5", "9.6", "12.1", "12.5", "14.2.2",
                         "14.2.3", "14.3.5", "14.5.1"})


def T(table: CsrTable) -> Block:
    if table.number in TEXT_TABLES:
        table = replace(table, text_cells=True)
    return Block("table", table=table)


def F(figure_id: str) -> Block:
    return Block("figure", figure=figure_id)


# --- vocabularies (declared data) ------------------------------------------------------------

#: CTCAE v5.0 term -> MedDRA system organ class (CTCAE v5.0, 27 Nov 2017, where each term is
#: listed under its MedDRA 20.1 SOC; ASTCT CRS/ICANS under the SOC CTCAE v5.0 gives them)
SOC_OF_TERM: dict[str, str] = {
    "Anemia": "Blood and lymphatic system disorders",
    "Febrile neutropenia": "Blood and lymphatic system disorders",
    "Platelet count decreased": "Investigations",
    "Neutrophil count decreased": "Investigations",
    "Lymphocyte count decreased": "Investigations",
    "White blood cell decreased": "Investigations",
    "Alanine aminotransferase increased": "Investigations",
    "Aspartate aminotransferase increased": "Investigations",
    "Blood bilirubin increased": "Investigations",
    "Creatinine increased": "Investigations",
    "Fibrinogen decreased": "Investigations",
    "Cytokine release syndrome": "Immune system disorders",
    "Graft versus host disease": "Immune system disorders",
    "Immune effector cell-associated neurotoxicity syndrome": "Nervous system disorders",
    "Epstein-Barr virus infection reactivation": "Infections and infestations",
    "Cytomegalovirus infection reactivation": "Infections and infestations",
    "Lung infection": "Infections and infestations",
    "Upper respiratory infection": "Infections and infestations",
    "Sepsis": "Infections and infestations",
    "Fever": "General disorders and administration site conditions",
    "Hypotension": "Vascular disorders",
    "Hypoxia": "Respiratory, thoracic and mediastinal disorders",
}
SOC_UNCODED = "SOC not coded (term outside the CTCAE v5.0 map of this report)"

#: best overall response categories in the order ELN 2022 / NCCN ALL list them
RESPONSE_ORDER = ("CR", "CRh", "CRi", "MLFS", "PR", "SD", "NR", "PD", "RELAPSE", "NE")
RESPONDER = ("CR", "CRh", "CRi", "MLFS", "PR")

#: cytopenia terms of CTCAE v5.0 (haematotoxicity)
CYTOPENIAS = ("Anemia", "Platelet count decreased", "Neutrophil count decreased",
              "Lymphocyte count decreased", "White blood cell decreased", "Febrile neutropenia")

#: NCA parameters (ADPP PARAMCD prefix) and how a CSR summarises them (FDA/EMA PK reporting:
#: geometric mean (CV%) for exposure, median (range) for times)
NCA_ROWS: tuple[tuple[str, str, str], ...] = (
    ("CMAX", "Cmax", "geo"), ("AUC28", "AUC0-28d", "geo"), ("TMAX", "Tmax (day)", "median"),
    ("TLST", "Tlast, last quantifiable sample (day)", "median"), ("CLST", "Clast", "geo"),
)
ANALYTES: dict[str, str] = {"QPCR": "CAR transgene by qPCR",
                            "PCT": "CAR+ T cells by flow (% of CD3+)",
                            "ABS": "CAR+ T cells by flow (cells/\u00b5L)"}

#: lab shift tables: ADLB PARAMCD and name (CTCAE v5.0 grade shift, baseline -> worst)
SHIFT_LABS: tuple[tuple[str, str], ...] = (
    ("NEUT", "Neutrophil count"), ("PLAT", "Platelet count"), ("HGB", "Hemoglobin"),
    ("ALT", "Alanine aminotransferase"), ("BILI", "Bilirubin"), ("CREAT", "Creatinine"),
)


def clean(text: str) -> str:
    """Text of the analysis for print: a missing CI limit written ``NE`` (not estimable), as
    the tables write it, instead of ``NA`` (``95% CI 330-NA`` -> ``95% CI 330-NE``)."""
    return re.sub(r"\bNA\b", NE, text or "")


def unit_text(unit: str) -> str:
    """Units as printed: the micro sign for ``u`` of microgram/microlitre."""
    return unit.replace("ug", "\u00b5g").replace("uL", "\u00b5L")


# --- shared helpers --------------------------------------------------------------------------

Groups = list[tuple[str, pd.DataFrame]]


def _columns(rd: ReportData, frame: pd.DataFrame | None = None) -> tuple[Groups, tuple[str, ...]]:
    """Column groups (dose levels, Total) and their headers with N."""
    groups = rd.groups(frame)
    return groups, tuple(column(rd.dose_label(lv, "\n") if lv != "Total" else "Total", len(g))
                         for lv, g in groups)


def _count_row(label: str, groups: Sequence[tuple[str, pd.DataFrame]], subjects: set[str],
               indent: int = 1) -> Row:
    cells = tuple(n_pct(int(g["USUBJID"].isin(subjects).sum()), len(g)) for _, g in groups)
    return Row(label, cells, indent)


def _pop(rd: ReportData) -> str:
    n = len(rd.safety)
    return f"Population: safety set (patients who received any CAR-T cells), N = {n}"


def _empty(number: str, title: str, population: str, reason: str = NO_INFUSED) -> CsrTable:
    return CsrTable(number, title, population, "", (), (), empty_reason=reason)


# --- 9: protocol summary ----------------------------------------------------------------------

def protocol_summary(rd: ReportData) -> list[Block]:
    """Design, dose levels, split schedule, DLT definition, registered endpoints, assumptions
    and lint warnings of the protocol (ICH E3 section 9)."""
    from celltrial.protocols.lint import lint

    p = rd.protocol
    iv = p.intervention
    blocks = [P(p.design)]
    rows = [Row("Phase", (str(p.phase),)),
            Row("Registration", (p.registration or "not registered",)),
            Row("Protocol version", (str(p.version),)),
            Row("Conditions", ("; ".join(p.conditions),)),
            Row("Product", (iv.product,)),
            Row("Target enrolment", (str(p.target_enrollment)
                                     + (" (assumed)" if p.target_enrollment_assumed else ""),))]
    if p.escalation is not None:
        e = p.escalation
        rows.append(Row("Escalation design", (f"{e.design.upper()}, target DLT rate {e.target:g}, "
                                              f"cohorts of {e.cohort_size}"
                                              + (f", at most {e.max_n} patients" if e.max_n else "")
                                              + (" (assumed)" if e.assumed else ""),)))
    rows.append(Row("DLT window", (f"{p.dlt.window_days} days",)))
    blocks.append(T(CsrTable("9.1", "Study design", "Protocol as registered; assumed values marked",
                             "Item", ("Value",), tuple(rows))))
    dose_rows = tuple(Row(d.id, (d.label or "", per_kg(d.cells_per_kg),
                                 "assumed" if d.assumed else "registered"))
                      for d in iv.dose_levels)
    blocks.append(T(CsrTable("9.2", "Dose levels", "Protocol", "Dose level",
                             ("Label", PER_KG, "Source"), dose_rows)))
    split_rows = tuple(Row(f"Day {f.day}", (f"{100 * f.fraction:.0f}%",
                                            "assumed" if f.assumed else "registered"))
                       for f in iv.split)
    blocks.append(T(CsrTable("9.3", "Split-infusion schedule", "Protocol", "Infusion",
                             ("Fraction of the dose", "Source"), split_rows,
                             footnotes=tuple(f"Hold rule {h.id}: {h.description}"
                                             for h in iv.hold_rules))))
    blocks.append(P("Dose-limiting toxicity: " + p.dlt.definition))
    ep_rows = tuple(Row(e.name, (e.kind, e.time_frame, e.description or "-"))
                    for e in p.endpoints)
    blocks.append(T(CsrTable("9.4", "Outcome measures as registered", "Protocol",
                             "Outcome measure", ("Kind", "Time frame", "Description"), ep_rows)))
    found = assumptions(p)
    blocks.append(T(CsrTable("9.5", "Assumed protocol values and their rationale",
                             "Protocol values not given by the registration", "Field",
                             ("Assumed value", "Rationale"),
                             tuple(Row(a.where, (a.value, a.rationale)) for a in found),
                             empty_reason="Every value of this protocol is registered; "
                                          "none is assumed.")))
    warnings = [m for m in lint(p) if m.level == "warning"]
    blocks.append(T(CsrTable("9.6", "Protocol lint warnings", "celltrial protocol lint", "Code",
                             ("Where", "Warning"),
                             tuple(Row(m.code, (m.where, m.message)) for m in warnings),
                             empty_reason="celltrial protocol lint found no warning.")))
    return blocks


# --- 10 / 14.1: disposition, demographics, exposure --------------------------------------------

def criterion_label(rd: ReportData, criterion: str) -> str:
    """``I3: <wording>`` of a protocol eligibility criterion, the wording cut at a word
    boundary after 70 characters; the id alone when the protocol has no such criterion."""
    eligibility = rd.protocol.eligibility
    for c in (*eligibility.inclusion, *eligibility.exclusion):
        if c.id == criterion:
            text = " ".join(str(c.text).split()).rstrip(".")
            if len(text) > 70:
                text = text[:70].rsplit(" ", 1)[0] + " ..."
            kind = "inclusion" if c in eligibility.inclusion else "exclusion"
            return f"{c.id} ({kind}): {text}"
    return criterion


def reason_text(value: Any) -> str:
    """A DS reason as printed: ``LOST TO FOLLOW-UP`` -> ``Lost to follow-up``."""
    text = str(value).strip()
    return text[:1].upper() + text[1:].lower() if text.isupper() else text


def _screen_failure_rows(rd: ReportData, failed: pd.DataFrame, screened: int) -> list[Row]:
    """Screen failures by the criterion not met (ADSL SCRFCRIT; a patient failing two
    criteria counts under each), else by reason (ADSL DCSREASP)."""
    rows: list[Row] = []
    if "SCRFCRIT" in failed:
        named = failed["SCRFCRIT"].dropna().astype(str)
        counts: dict[str, int] = {}
        for ids in named:
            for criterion in (c.strip() for c in ids.split(",") if c.strip()):
                counts[criterion] = counts.get(criterion, 0) + 1
        order = [c.id for c in (*rd.protocol.eligibility.inclusion,
                                *rd.protocol.eligibility.exclusion)]
        for criterion in sorted(counts, key=lambda c: (order.index(c) if c in order
                                                       else len(order), c)):
            rows.append(Row(criterion_label(rd, criterion),
                            (n_pct(counts[criterion], screened),), 2))
        unnamed = failed[failed["SCRFCRIT"].isna()]
        if len(unnamed):
            rows.append(Row("No criterion named in the record", (n_pct(len(unnamed),
                                                                      screened),), 2))
    elif "DCSREAS" in failed:
        reason = failed["DCSREAS"].fillna("reason not recorded").astype(str)
        for text, count in reason.value_counts().sort_index().items():
            rows.append(Row(text, (n_pct(int(count), screened),), 2))
    return rows


def disposition(rd: ReportData) -> list[Block]:
    """CONSORT-style flow (Schulz et al. 2010, CONSORT flow diagram) from ADSL flags; screen
    failures by the eligibility criterion not met (ADSL SCRFCRIT), discontinuations by reason
    (ADaM IG ADSL DCSREAS)."""
    adsl = rd.adsl
    screened = len(adsl)
    if screened == 0:
        return [P("No patient was screened by the data cut-off.")]

    def n(mask: Any) -> int:
        return int(np.asarray(mask).sum())

    enrolled = adsl["ENRLFL"] == "Y"
    infused = adsl["SAFFL"] == "Y"
    has_reason = "DCSREAS" in adsl
    reason = (adsl["DCSREAS"].map(reason_text, na_action="ignore")
              .fillna("Reason not recorded").astype(str) if has_reason else None)
    rows = [Row("Screened", (str(screened),)),
            Row("Failed screening", (n_pct(n(~enrolled), screened),), 1),
            *_screen_failure_rows(rd, adsl[~enrolled], screened),
            Row("Enrolled", (n_pct(n(enrolled), screened),))]
    if "ITTFL" in adsl:  # ICH E9 intention-to-treat set, where derived
        rows.append(Row("Intention-to-treat set (assigned a dose level)",
                        (n_pct(n(adsl["ITTFL"] == "Y"), screened),), 1))
    rows += [Row("Enrolled, not infused", (n_pct(n(enrolled & ~infused), screened),), 1)]
    if reason is not None:
        not_infused = enrolled & ~infused & (adsl["EOSSTT"] == "DISCONTINUED")
        for text, count in reason[not_infused].value_counts().sort_index().items():
            rows.append(Row(text, (n_pct(int(count), screened),), 2))
    rows += [Row("Infused (safety set)", (n_pct(n(infused), screened),)),
             Row("DLT-evaluable", (n_pct(n(adsl["DLTEVLFL"] == "Y"), screened),), 1),
             Row("Efficacy-evaluable", (n_pct(n(adsl["EFFFL"] == "Y"), screened),), 1)]
    status = adsl["EOSSTT"].fillna("NOT RECORDED").astype(str).str.upper()
    died = adsl["DTHFL"] == "Y"
    rows.append(Row("Status of infused patients at the data cut-off", (), 0, True))
    for value in sorted(status[infused].unique()):
        at = infused & (status == value)
        rows.append(Row(value.capitalize(), (n_pct(n(at), screened),), 1))
        if value != "DISCONTINUED":
            continue
        if reason is not None:  # ADaM IG ADSL DCSREAS, where derived
            for text, count in reason[at].value_counts().sort_index().items():
                rows.append(Row(text, (n_pct(int(count), screened),), 2))
        else:  # the deaths are known (ADSL DTHFL); any other reason is not carried
            rows.append(Row("Died", (n_pct(n(at & died), screened),), 2))
            rows.append(Row("Alive (reason not carried by ADSL)",
                            (n_pct(n(at & ~died), screened),), 2))
    rows.append(Row("Died (any status)", (n_pct(n(infused & died), screened),), 1))
    notes = ["Percentages of all screened patients."]
    if "SCRFCRIT" in adsl:
        notes.append("Screen failures by the eligibility criterion not met, as the screening "
                     "record names it (ADSL SCRFCRIT); a patient failing several criteria is "
                     "counted under each.")
    notes.append("Discontinuation reasons: the disposition event ending participation (ADSL "
                 "DCSREAS, ADaM IG reason for discontinuation from study)." if has_reason else
                 "Screen-failure and discontinuation reasons (SDTM DS DSTERM) are not carried "
                 "by the analysis datasets (ADSL has no DCSREAS): only deaths are told apart.")
    notes.append("Per patient: Listing 16.2.1.")
    blocks = [P(f"{screened} patients were screened, {n(enrolled)} enrolled and {n(infused)} "
                "received CAR-T cells by the data cut-off." + ("" if n(infused) else
                                                                " " + NO_INFUSED)),
              T(CsrTable("14.1.1", "Patient disposition", f"Population: all screened patients, "
                         f"N = {screened}", "", (column("All patients", screened),), tuple(rows),
                         footnotes=tuple(notes)))]
    if n(infused):
        groups, cols = _columns(rd)
        by = [Row("Infused", tuple(str(len(g)) for _, g in groups)),
              _count_row("DLT-evaluable", groups,
                         set(adsl.loc[adsl["DLTEVLFL"] == "Y", "USUBJID"])),
              _count_row("Efficacy-evaluable", groups,
                         set(adsl.loc[adsl["EFFFL"] == "Y", "USUBJID"])),
              _count_row("Allogeneic HSCT after infusion", groups,
                         set(adsl.loc[adsl["HSCTFL"] == "Y", "USUBJID"])),
              _count_row("Died", groups, set(adsl.loc[adsl["DTHFL"] == "Y", "USUBJID"])),
              _count_row("Ongoing at the data cut-off", groups,
                         set(adsl.loc[adsl["EOSSTT"] == "ONGOING", "USUBJID"]))]
        blocks.append(T(CsrTable("14.1.2", "Analysis sets by dose level", _pop(rd), "", cols,
                                 tuple(by))))
    return blocks


def demographics(rd: ReportData) -> list[Block]:
    """Demographic and baseline characteristics by dose level (ICH E3 11.2, 14.1)."""
    s = rd.safety
    if s.empty:
        return [T(_empty("14.1.3", "Demographic and baseline characteristics", _pop(rd)))]
    groups, cols = _columns(rd)
    rows: list[Row] = []

    def cont(label: str, var: str, unit: str = "") -> None:
        if var not in s:
            return
        rows.append(Row(f"{label}{f' ({unit})' if unit else ''}", (), 0, True))
        rows.append(Row("n", tuple(str(int(g[var].notna().sum())) for _, g in groups), 1))
        rows.append(Row("Median (min, max)", tuple(median_range(g[var]) for _, g in groups), 1))

    def cat(label: str, var: str, mapping: dict[str, str] | None = None) -> None:
        if var not in s:
            return
        rows.append(Row(label, (), 0, True))
        values = s[var].fillna("Missing").astype(str)
        for value in sorted(values.unique()):
            ids = set(s.loc[values == value, "USUBJID"])
            rows.append(_count_row((mapping or {}).get(value, value), groups, ids))

    cont("Age", "AGE", "years")
    cat("Sex", "SEX", {"M": "Male", "F": "Female"})
    cat("Diagnosis", "DISEASE")
    cont("Weight", "BWEIGHT", "kg")
    cont("Marrow blasts at baseline", "BBLAST", "%")
    cont("CD7+ blasts at screening", "BCD7BLST", "% of blasts")
    cat("Extramedullary disease at baseline", "EMDFL", {"Y": "Yes", "N": "No"})
    notes = ["n (%) of the column N; median (min, max)."]
    rows += _prior_therapy_rows(rd, groups, notes)
    return [T(CsrTable("14.1.3", "Demographic and baseline characteristics", _pop(rd), "", cols,
                       tuple(rows), footnotes=tuple(notes)))]


NOT_COLLECTED = "not collected"


def _prior_therapy_rows(rd: ReportData, groups: Groups, notes: list[str]) -> list[Row]:
    """Prior lines of anticancer therapy and prior allogeneic HSCT (ADSL PRLINES, PRHSCTFL);
    "not collected" in every column when the study recorded neither for anybody."""
    s = rd.safety
    lines = s["PRLINES"] if "PRLINES" in s else pd.Series(np.nan, index=s.index)
    hsct = s["PRHSCTFL"] if "PRHSCTFL" in s else pd.Series(None, index=s.index, dtype=object)
    if lines.notna().any() or (hsct == "Y").any():
        rows = [Row("Prior lines of anticancer therapy", (), 0, True),
                Row("n (recorded)", tuple(str(int(lines[g.index].notna().sum()))
                                          for _, g in groups), 1),
                Row("Median (min, max)", tuple(median_range(lines[g.index]) for _, g in groups),
                    1),
                Row("Prior allogeneic HSCT", (), 0, True),
                _count_row("Yes", groups, set(s.loc[hsct == "Y", "USUBJID"])),
                _count_row("None recorded", groups, set(s.loc[hsct != "Y", "USUBJID"]))]
        notes.append("Prior lines: CM records of prior anticancer therapy before the first "
                     "infusion, those starting on the same day one line (ADSL PRLINES); prior "
                     "allogeneic HSCT: PR records before it (ADSL PRHSCTFL). A patient without "
                     "such records is counted as none recorded, not as none.")
        return rows
    cells = tuple(NOT_COLLECTED for _ in groups)
    notes.append("Prior lines of therapy and prior allogeneic HSCT: not collected in this "
                 "study (no prior anticancer therapy in CM and no transplant before the "
                 "infusion in PR for any patient)" + (
                     "; the virtual patients carry no treatment history." if rd.simulated
                     else "."))
    return [Row("Prior lines of anticancer therapy", cells),
            Row("Prior allogeneic HSCT", cells)]


def exposure(rd: ReportData) -> list[Block]:
    """Planned vs actual dose (cells/kg) by dose level (ICH E3 12.1, extent of exposure), and
    each split fraction given or withheld with the hold rule and the bags (ADEX)."""
    s = rd.safety
    if s.empty:
        return [T(_empty("14.1.4", "Extent of exposure", _pop(rd)))]
    groups, cols = _columns(rd)
    planned = {d.id: d.cells_per_kg for d in rd.protocol.intervention.dose_levels}
    rows = [Row(f"Planned dose ({PER_KG})",
                tuple(per_kg(planned[lv]) if lv in planned else "-" for lv, _ in groups)),
            Row(f"Actual total dose ({PER_KG})", (), 0, True),
            Row("n", tuple(str(int(g["TRTDOSE"].notna().sum())) for _, g in groups), 1),
            Row("Median (min, max)", tuple(median_range(g["TRTDOSE"] / MILLION)
                                           for _, g in groups), 1)]
    ratio = s["TRTDOSE"] / s["TRT01A"].map(planned)
    rows.append(Row("Actual / planned dose", tuple(median_range(ratio[g.index], 3)
                                                   for _, g in groups), 1))
    tol = rd.protocol.intervention.dose_tolerance
    outside = set(s.loc[(ratio - 1).abs() > tol, "USUBJID"])
    rows.append(_count_row(f"Outside the +/-{100 * tol:.0f}% dose tolerance", groups, outside))
    split = ", ".join(f"day {f.day}: {100 * f.fraction:.0f}%"
                      for f in rd.protocol.intervention.split)
    notes = [f"Planned split schedule: {split}.",
             "Actual total: the sum of the fractions given (ADSL TRTDOSE).",
             "Fractions given and withheld, with the hold rule and the bags: Table 14.1.5."
             if "adex" in rd.datasets else
             "Fractions given or withheld and the number of bags are recorded in EX and not "
             "carried by the analysis datasets (no ADEX)."]
    blocks = [T(CsrTable("14.1.4", "Extent of exposure", _pop(rd), "", cols, tuple(rows),
                         footnotes=tuple(notes)))]
    if "adex" in rd.datasets:
        blocks.append(T(_fractions(rd, rd.ds("adex"), groups, cols)))
    return blocks


def _fractions(rd: ReportData, adex: pd.DataFrame, groups: Groups, cols: tuple[str, ...]
               ) -> CsrTable:
    """Table 14.1.5: per planned fraction, patients given it (with the dose against the
    planned one and the bags) or not, and the hold rule that withheld it (ADEX)."""
    iv = rd.protocol.intervention
    adex = adex[adex["USUBJID"].isin(rd.safety["USUBJID"])] if len(adex) else adex
    rules = {h.id: h.description for h in iv.hold_rules}
    rows: list[Row] = []
    for number, fraction in enumerate(sorted(iv.split, key=lambda f: f.day), start=1):
        d = adex[adex["EXFRACN"] == number] if len(adex) else adex
        rows.append(Row(f"Fraction {number} (day {fraction.day}, {100 * fraction.fraction:.0f}% "
                        "of the dose)", (), 0, True))
        given = d[d["FRSTAT"] == "GIVEN"]
        rows.append(_count_row("Given", groups, set(given["USUBJID"])))
        if len(given):
            rows.append(Row(f"Dose given ({PER_KG}): median (min, max)", tuple(
                median_range(given.loc[given["USUBJID"].isin(g["USUBJID"]), "ADOSE"] / MILLION)
                for _, g in groups), 2))
            rows.append(_count_row(f"Outside +/-{100 * iv.dose_tolerance:.0f}% of the planned "
                                   "dose", groups,
                                   set(given.loc[given["OUTTOLFL"] == "Y", "USUBJID"]), 2))
            rows.append(Row("Bags: median (min, max)", tuple(
                median_range(given.loc[given["USUBJID"].isin(g["USUBJID"]), "EXBAGN"])
                for _, g in groups), 2))
        withheld = d[d["FRSTAT"] == "WITHHELD"]
        if number > 1 or len(withheld):  # the first fraction is always given (split_hold)
            rows.append(_count_row("Withheld", groups, set(withheld["USUBJID"])))
        if len(withheld):
            rule = withheld["HOLDRL"].fillna("").astype(str)
            for rid in sorted(set(rule)):
                label = (f"Hold rule {rid}: {rules[rid]}" if rid in rules
                         else "Hold rule not named in the record")
                rows.append(_count_row(label, groups, set(withheld.loc[rule == rid,
                                                                       "USUBJID"]), 2))
        missing = d[d["FRSTAT"] == "NOT RECORDED"]
        if len(missing):
            rows.append(_count_row("Not recorded (died, or planned after the data cut-off)",
                                   groups, set(missing["USUBJID"])))
    total_bags = adex[adex["FRSTAT"] == "GIVEN"].groupby("USUBJID")["EXBAGN"].sum(min_count=1) \
        if len(adex) else pd.Series(dtype=float)
    rows.append(Row("Bags infused per patient: median (min, max)", tuple(
        median_range(total_bags.reindex(g["USUBJID"])) for _, g in groups)))
    return CsrTable("14.1.5", "Split infusion: fractions given and withheld, dose and bags",
                    _pop(rd), "", cols, tuple(rows), footnotes=(
                        "From the exposure dataset (ADEX), one record per patient and planned "
                        "fraction; n (%) of the column N.",
                        "Planned dose of a fraction: the dose level's CAR-T cells/kg times its "
                        f"share of the dose; tolerance +/-{100 * iv.dose_tolerance:.0f}%.",
                        "A fraction is withheld by the first hold rule met since the previous "
                        "one, and every later fraction with it (split doses are not resumed).",
                        "Per patient: Listing 16.2.5."),
                    empty_reason="No exposure record.")


# --- 12: dose escalation -----------------------------------------------------------------------

def _decision(d: dict[str, Any]) -> str:
    return f"{d['action']}" + (f" to {d['dose']}" if d.get("dose") else "")


def escalation(rd: ReportData) -> list[Block]:
    """Cohort-by-cohort history (``escalation.json``), DLTs by dose level (endpoint ``dlt_rate``)
    and the decision at the data cut-off with its reasoning, the recommended phase II dose,
    and the dose-escalation committee's decisions (``escalation.json`` "committee")."""
    blocks: list[Block] = []
    hist = rd.escalation
    if hist is None:
        blocks.append(P("No escalation history was written (no dose level given or no "
                        "escalation design): see the disposition."))
    else:
        rows = []
        for c in hist["cohorts"]:
            d = c["decision"]
            rows.append(Row(str(c["cohort"]), (rd.dose_label(c["level"]), str(len(c["subjects"])),
                                              c["first_infusion"], _decision(d), d["reason"],
                                              "yes" if c["deviation"] is None
                                              else f"Deviation: {c['deviation']}")))
        blocks.append(T(CsrTable("12.1", "Dose-escalation history", "All cohorts infused by the "
                                 "data cut-off", "Cohort", ("Dose level", "Patients",
                                                            "First infusion", "Decision in force",
                                                            "Reason", "Followed"), tuple(rows),
                                 footnotes=("Decision in force: the design's decision replayed "
                                            "on the records up to the day before the cohort's "
                                            "first infusion.",),
                                 empty_reason="No cohort was infused by the data cut-off.",
                                 wide=True)))
        nxt = hist["next"]
        blocks.append(P(f"Decision at the data cut-off ({hist.get('data_cut') or rd.data_cut}; "
                        f"{nxt.get('phase', '')}): {_decision(nxt)}. "
                        f"Reasoning: {clean(nxt['reason'])}"))
    ep = rd.endpoint("dlt_rate")
    if ep and ep.get("status") == "ok":
        by = (ep.get("estimates") or {}).get("by_dose_level", {})
        rows = [Row(rd.dose_label(lv), (str(v["n"]), str(v["x"]),
                                        est_ci(v["rate"], v.get("ci"), percent=True)))
                for lv, v in by.items()]
        rows.append(Row("Total", (str(ep["n"]), str((ep.get("estimates") or {}).get("x", "")),
                                  est_ci(ep["estimate"], ep.get("ci"), percent=True))))
        dlt_pts = rd.adsl[rd.adsl.get("DLTFL", pd.Series(dtype=str)) == "Y"] \
            if "DLTFL" in rd.adsl else rd.adsl.iloc[0:0]
        notes = ["DLT rate in % with the exact (Clopper-Pearson) 95% CI, from endpoint "
                 f"'{ep['name']}'.", "DLT definition: " + rd.protocol.dlt.definition]
        if len(dlt_pts):
            notes.append("Patients with a DLT: " + ", ".join(
                f"{r.USUBJID} ({r.TRT01A})" for r in dlt_pts.itertuples()))
        blocks.append(T(CsrTable("12.2", "Dose-limiting toxicities by dose level",
                                 "Population: DLT-evaluable set", "Dose level",
                                 ("DLT-evaluable", "With DLT", "DLT rate, % (95% CI)"),
                                 tuple(rows), footnotes=tuple(notes))))
    else:
        blocks.append(P("DLT rate: " + (f"not computable: {clean(ep['reason'])}" if ep else
                                        "not an outcome measure of this protocol.")))
    blocks += _rp2d(rd)
    blocks += committee_blocks(rd)  # Table 12.4: the committee's signed decisions
    if "DLTTERM" in rd.adsl:
        blocks.append(T(_dlt_events(rd)))
    return blocks


def _dlt_events(rd: ReportData) -> CsrTable:
    """Table 12.5: each patient with a DLT, the event(s) that made it, the study day the first
    met its rule and the rules (ADSL DLTTERM, DLTDY, DLTRULE from the DLT adjudication)."""
    adsl = rd.adsl
    dlt = adsl[adsl["DLTFL"] == "Y"].sort_values(["TRT01AN", "USUBJID"])
    def text(value: Any) -> str:
        return "-" if is_missing(value) or not str(value) else str(value)

    rows = tuple(Row(str(r.USUBJID), (rd.dose_label(str(r.TRT01A)), text(r.DLTTERM),
                                      num(r.DLTDY), text(r.DLTRULE)))
                 for r in dlt.itertuples())
    used = {rule.strip() for text in dlt["DLTRULE"].dropna() for rule in str(text).split(",")}
    return CsrTable("12.5", "Dose-limiting toxicities: the events per patient",
                    "Population: infused patients with a DLT", "Patient",
                    ("Dose level", "Event(s), judged grade", "Day the first met its rule",
                     "DLT rule(s)"), rows, footnotes=(
                        "Events and rules of the DLT adjudication (celltrial.derive.dlt: the "
                        "protocol's DLT rules on the treatment-emergent AEs with the grade "
                        "courses of blood counts and daily CRS/ICANS grades), read from ADSL.",
                        *(f"{r.id}: {r.description}" for r in rd.protocol.dlt.rules
                          if r.id in used)),
                    empty_reason="No infused patient had a DLT by the data cut-off.")


def _rp2d(rd: ReportData) -> list[Block]:
    """Table 12.3: the recommended phase II dose with the per-dose quantities the rule read
    (analysis ``endpoints.json`` "rp2d"; rule `celltrial.design.rp2d`)."""
    r = rd.rp2d
    if r is None:
        return [P("Recommended phase II dose: not derived (the analysis wrote none).")]
    rule = r["rule"]
    conf = 100 * float(rule["conf_level"])
    rows = []
    for d in r["doses"]:
        treated = int(d["n"]) > 0
        rows.append(Row(rd.dose_label(d["level"]), (
            str(d["n"]), str(d["dlt"]), num(d["p_dlt_isotonic"]) if treated else "-",
            str(d["responders"]),
            est_ci(d["response_rate"], (d["response_lo"], d["response_hi"]), percent=True)
            if treated else "-",
            num(d["auc28_median"]), num(d["utility"]) if treated else "-",
            "yes" if d["eligible"] else "no")))
    notes = (f"Rule: isotonic DLT estimate <= {num(rule['target'])}; not futile (upper "
             f"{num(conf)}% exact limit of the response rate >= {num(rule['min_response'])})"
             + ("" if rule.get("min_auc28") is None else
                f"; median AUC0-28d >= {num(rule['min_auc28'])}")
             + f"; then the highest BOIN12 utility (u2 = {num(rule['u2'])}, "
             f"u3 = {num(rule['u3'])}), Lin et al. JCO Precis Oncol 2020.",
             "Rule parameters " + clean(r["note"]) + ".",
             "Population: DLT-evaluable set; AUC0-28d (qPCR) over the infused patients.")
    table = CsrTable("12.3", "Recommended phase II dose: safety, efficacy and exposure by dose "
                     "level", "Population: DLT-evaluable set", "Dose level",
                     ("DLT-evaluable", "With DLT", "Isotonic P(DLT)", "Responders",
                      f"Response, % ({num(conf)}% CI)", "Median AUC0-28d", "Utility",
                      "Eligible"), tuple(rows), footnotes=notes, wide=True)
    chosen = rd.dose_label(r["level"]) if r.get("level") else "none"
    return [T(table), P(f"Recommended phase II dose: {chosen}. Reasoning: {clean(r['reason'])}")]


# --- 14.3: safety ------------------------------------------------------------------------------

def _adae(rd: ReportData) -> pd.DataFrame:
    adae = rd.ds("adae")
    if adae.empty:
        return adae
    if "TRTEMFL" in adae:
        adae = adae[adae["TRTEMFL"] == "Y"]
    return adae[adae["USUBJID"].isin(rd.safety["USUBJID"])]


def safety(rd: ReportData) -> list[Block]:
    """AE overview, AEs by SOC/PT and worst grade, CRS/ICANS, cytopenias, deaths, lab shifts."""
    s = rd.safety
    if s.empty:
        return [P(NO_INFUSED), T(_empty("14.3.1", "Overview of adverse events", _pop(rd)))]
    adae = _adae(rd)
    groups, cols = _columns(rd)
    grade = adae["ATOXGRN"] if len(adae) else pd.Series(dtype=float)

    def ids(mask: Any) -> set[str]:
        return set(adae.loc[mask, "USUBJID"]) if len(adae) else set()

    serious = adae["AESER"].eq("Y") if len(adae) else pd.Series(dtype=bool)
    rows = [_count_row("Any adverse event", groups, ids(slice(None)) if len(adae) else set(), 0),
            _count_row("Grade >= 3", groups, ids(grade >= 3)),
            _count_row("Grade 5 (fatal)", groups, ids(grade >= 5)),
            _count_row("Serious", groups, ids(serious)),
            _count_row("Cytokine release syndrome (any grade)", groups,
                       ids(adae["ACAT"] == "crs") if len(adae) else set()),
            _count_row("ICANS (any grade)", groups,
                       ids(adae["ACAT"] == "icans") if len(adae) else set())]
    blocks = [T(CsrTable("14.3.1", "Overview of treatment-emergent adverse events", _pop(rd), "",
                         cols, tuple(rows), footnotes=(
                             "Patients counted once per row at their worst grade; n (%) of N.",
                             "Grades: CTCAE v5.0; CRS and ICANS by ASTCT consensus "
                             "(Lee et al. 2019).")))]
    blocks.append(T(_ae_soc_pt(rd, adae, groups, cols)))
    blocks.append(T(_crs_icans(rd, adae, groups, cols)))
    cyto = adae[adae["AEDECOD"].isin(CYTOPENIAS)] if len(adae) else adae
    crow: list[Row] = []
    for term in CYTOPENIAS:
        sub = cyto[cyto["AEDECOD"] == term] if len(cyto) else cyto
        if len(sub):
            crow.append(Row(term, (), 0, True))
            crow.append(_count_row("Any grade", groups, set(sub["USUBJID"])))
            crow.append(_count_row("Grade >= 3", groups,
                                   set(sub.loc[sub["ATOXGRN"] >= 3, "USUBJID"])))
    blocks.append(T(CsrTable("14.3.4", "Cytopenias (haematotoxicity)", _pop(rd), "Term", cols,
                             tuple(crow), empty_reason="No cytopenia was reported.")))
    blocks.append(T(_deaths(rd, adae)))
    blocks.append(T(_shifts(rd)))
    blocks.append(T(_haematotoxicity(rd, groups, cols)))
    blocks.append(F("ae_max_grade"))
    return blocks


def _ae_soc_pt(rd: ReportData, adae: pd.DataFrame, groups: Any, cols: tuple[str, ...]) -> CsrTable:
    rows: list[Row] = []
    if len(adae):
        soc = adae["AEDECOD"].map(SOC_OF_TERM).fillna(SOC_UNCODED)
        for name in sorted(soc.unique()):
            sub = adae[soc == name]
            rows.append(Row(name, tuple(f"{a} / {b}" for a, b in zip(
                _count_row("", groups, set(sub["USUBJID"])).cells,
                _count_row("", groups, set(sub.loc[sub["ATOXGRN"] >= 3, "USUBJID"])).cells,
                strict=True)), 0, True))
            terms = sub.groupby("AEDECOD")["USUBJID"].nunique().sort_values(ascending=False)
            for term in terms.index:
                t = sub[sub["AEDECOD"] == term]
                any_ = _count_row("", groups, set(t["USUBJID"])).cells
                g3 = _count_row("", groups, set(t.loc[t["ATOXGRN"] >= 3, "USUBJID"])).cells
                rows.append(Row(term, tuple(f"{a} / {b}"
                                            for a, b in zip(any_, g3, strict=True)), 1))
    return CsrTable("14.3.2", "Adverse events by system organ class and preferred term, any grade "
                    "/ grade >= 3, by dose level", _pop(rd), "System organ class / preferred term",
                    cols, tuple(rows), wide=True, footnotes=(
                        "Each cell: patients with the event at any grade n (%) / at grade >= 3 "
                        "n (%). A patient is counted once per SOC and once per term.",
                        "SOC: MedDRA system organ class under which CTCAE v5.0 lists the term."),
                    empty_reason="No treatment-emergent adverse event was reported.")


def _crs_icans(rd: ReportData, adae: pd.DataFrame, groups: Any, cols: tuple[str, ...]) -> CsrTable:
    rows: list[Row] = []
    for code, name in (("crs", "Cytokine release syndrome"), ("icans", "ICANS")):
        sub = adae[adae["ACAT"] == code] if len(adae) else adae
        rows.append(Row(name, (), 0, True))
        rows.append(_count_row("Any grade", groups, set(sub["USUBJID"]) if len(sub) else set()))
        worst = sub.groupby("USUBJID")["ATOXGRN"].max() if len(sub) else pd.Series(dtype=float)
        for g in range(1, 6):
            rows.append(_count_row(f"Maximum grade {g}", groups, set(worst[worst == g].index), 2))
        first = sub.sort_values("ASTDY").groupby("USUBJID").first() if len(sub) else sub
        onset = [median_range(first.loc[first.index.isin(gr["USUBJID"]), "ASTDY"]) if len(first)
                 else "-" for _, gr in groups]
        dur = [median_range(sub.loc[sub["USUBJID"].isin(gr["USUBJID"]), "ADURN"]) if len(sub)
               else "-" for _, gr in groups]
        rows.append(Row("Onset, day after infusion: median (min, max)", tuple(onset), 1))
        rows.append(Row("Duration, days: median (min, max)", tuple(dur), 1))
    treated = _toxicity_treatment(rd, groups)
    rows += treated
    return CsrTable("14.3.3", "Cytokine release syndrome and ICANS", _pop(rd), "", cols,
                    tuple(rows), footnotes=(
                        "ASTCT consensus grading (Lee et al. 2019). Onset: study day of the first "
                        "episode; duration: per episode (ADAE ADURN).",
                        "Tocilizumab and corticosteroids given from the day of the first infusion "
                        "on (ADSL TOCIFL/TOCISTDY, CORTFL/CORTSTDY, from CM), the drugs of CRS "
                        "and ICANS management (ASTCT 2019; Neelapu et al., Nat Rev Clin Oncol "
                        "2018)." if treated else
                        "Tocilizumab and corticosteroid use are recorded in CM and not carried by "
                        "the analysis datasets (ADSL has no TOCIFL/CORTFL)."))


#: ADSL flags and first-dose study days of the drugs given for CRS/ICANS (derived from CM)
TOXICITY_DRUGS: tuple[tuple[str, str, str], ...] = (
    ("TOCIFL", "TOCISTDY", "Tocilizumab"), ("CORTFL", "CORTSTDY", "Corticosteroids"))


def _toxicity_treatment(rd: ReportData, groups: Groups) -> list[Row]:
    """Rows of tocilizumab / corticosteroid use by dose level where ADSL carries the flags."""
    s = rd.safety
    present = [(f, d, name) for f, d, name in TOXICITY_DRUGS if f in s]
    if not present:
        return []
    rows = [Row("Drugs for CRS / ICANS, from day 0", (), 0, True)]
    for flag_var, day_var, name in present:
        given = s[s[flag_var] == "Y"]
        rows.append(_count_row(name, groups, set(given["USUBJID"])))
        if day_var in s:
            rows.append(Row("First dose, day after infusion: median (min, max)",
                            tuple(median_range(given.loc[given["USUBJID"].isin(g["USUBJID"]),
                                                         day_var]) for _, g in groups), 2))
    return rows


#: ADTOX parameters graded 0-4 (EHA/EBMT ICAHT grading, Rejeski et al., Blood 2023;142:865)
ICAHT_PARAMS = ("EICAHT", "LICAHT")
#: ADTOX parameters of T/NK-cell aplasia (duration in days, APLFL, CNSR)
APLASIA_PARAMS = ("APLCD3", "APLCD4", "APLCD8", "APLNK")


def _iec_hs_gvhd_rows(adtox: pd.DataFrame, groups: Groups) -> list[Row]:
    """Rows of Table 14.3.7 for IEC-HS (ADTOX IECHS: criteria met, day of onset) and acute
    GVHD (ADTOX AGVHD: worst MAGIC grade), where ADTOX has them."""
    rows: list[Row] = []
    for code, label in (("IECHS", "IEC-HS criteria met (ASTCT 2023)"),
                        ("AGVHD", "Acute GVHD (MAGIC), before any HSCT")):
        d = adtox[adtox["PARAMCD"] == code] if len(adtox) else adtox
        if d.empty:
            continue
        rows.append(Row(label, (), 0, True))
        rows.append(Row("Assessed", tuple(str(int(d["USUBJID"].isin(g["USUBJID"]).sum()))
                                          for _, g in groups), 1))
        value = d.set_index("USUBJID")["AVAL"]
        if code == "IECHS":
            met = d[d["AVAL"] == 1]
            rows.append(_count_row("Criteria met", groups, set(met["USUBJID"])))
            rows.append(Row("Day of onset: median (min, max)", tuple(
                median_range(met.loc[met["USUBJID"].isin(g["USUBJID"]), "ONSETDY"])
                for _, g in groups), 2))
        else:
            rows.append(_count_row("Any grade", groups, set(value[value >= 1].index)))
            rows.append(_count_row("Grade III-IV", groups,
                                   set(value[(value >= 3) & (value <= 4)].index), 2))
            rows.append(_count_row("Fatal", groups, set(value[value >= 5].index), 2))
    return rows


def _haematotoxicity(rd: ReportData, groups: Groups, cols: tuple[str, ...]) -> CsrTable:
    """Table 14.3.7: ICAHT grade (early, day 0-30; late, after day 30) and T/NK-cell aplasia by
    dose level, from ADTOX as ``celltrial.derive.adtox`` derives it."""
    title = "Haematotoxicity: ICAHT, T/NK-cell aplasia, IEC-HS and acute GVHD"
    adtox = rd.ds("adtox")
    if "adtox" not in rd.datasets:
        return _empty("14.3.7", title, _pop(rd), "Haematotoxicity (ICAHT) and T/NK-cell "
                      "aplasia are not derived in the analysis datasets (no ADTOX).")
    rows: list[Row] = []
    adtox = adtox[adtox["USUBJID"].isin(rd.safety["USUBJID"])] if len(adtox) else adtox
    for code in (*ICAHT_PARAMS, *APLASIA_PARAMS):
        d = adtox[adtox["PARAMCD"] == code] if len(adtox) else adtox
        if d.empty:
            continue
        rows.append(Row(str(d["PARAM"].iloc[0]), (), 0, True))
        rows.append(Row("Assessed", tuple(str(int(d["USUBJID"].isin(g["USUBJID"]).sum()))
                                          for _, g in groups), 1))
        if code in ICAHT_PARAMS:
            grade = d.set_index("USUBJID")["AVAL"]
            for g in range(5):
                rows.append(_count_row(f"Grade {g}", groups, set(grade[grade == g].index), 2))
            rows.append(_count_row("Grade >= 3", groups, set(grade[grade >= 3].index), 1))
        else:
            aplastic = d[d["APLFL"] == "Y"]
            rows.append(_count_row("With aplasia", groups, set(aplastic["USUBJID"])))
            rows.append(Row("Duration, days: median (min, max)", tuple(
                median_range(aplastic.loc[aplastic["USUBJID"].isin(g["USUBJID"]), "AVAL"])
                for _, g in groups), 2))
            rows.append(_count_row("Ongoing at the last count (censored)", groups,
                                   set(aplastic.loc[aplastic["CNSR"] == 1, "USUBJID"]), 2))
    rows += _iec_hs_gvhd_rows(adtox, groups)
    notes = ["ICAHT: immune effector cell-associated haematotoxicity, EHA/EBMT grading (Rejeski "
             "et al., Blood 2023): early from the ANC course of days 0-30, late after day 30; "
             "counting stops at relapse, new therapy, allogeneic HSCT or death (ADTOX CENSDY).",
             "n (%) of N; 'Assessed': patients with a post-infusion count of the parameter."]
    if len(adtox) and (adtox["PARAMCD"] == "IECHS").any():
        notes.append("IEC-HS: the ASTCT criteria (Hines et al., Transplant Cell Ther 2023) met "
                     "on a post-infusion day from captured ferritin, CRS timing, liver tests, "
                     "fibrinogen and counts; other causes are not excluded by the records, so "
                     "this counts patients meeting the criteria, not diagnoses (ADTOX IECHS).")
    if len(adtox) and (adtox["PARAMCD"] == "AGVHD").any():
        notes.append("Acute GVHD: worst MAGIC overall grade (Harris et al., BBMT 2016) of GVHD "
                     "with onset after the first infusion and before any allogeneic HSCT "
                     "(ADTOX AGVHD), assessed for donor-derived products.")
    if len(adtox) and "THRSRC" in adtox:
        thresholds = adtox[adtox["PARAMCD"].isin(APLASIA_PARAMS) & adtox["THRESH"].notna()]
        for code, d in thresholds.groupby("PARAMCD"):
            notes.append(f"{d['PARAM'].iloc[0]}: aplasia below {num(d['THRESH'].iloc[0])} "
                         f"cells/\u00b5L ({d['THRSRC'].iloc[0]}).")
    return CsrTable("14.3.7", title, _pop(rd), "", cols, tuple(rows), footnotes=tuple(notes),
                    empty_reason="No infused patient had a post-infusion neutrophil or "
                                 "lymphocyte-subset count.")


def _deaths(rd: ReportData, adae: pd.DataFrame) -> CsrTable:
    s = rd.safety
    dead = s[s["DTHFL"] == "Y"] if "DTHFL" in s else s.iloc[0:0]
    rows = []
    for r in dead.itertuples():
        fatal = adae[(adae["USUBJID"] == r.USUBJID) & (adae["ATOXGRN"] >= 5)] if len(adae) else adae
        cause = "; ".join(fatal["AEDECOD"].astype(str)) if len(fatal) else \
            "no fatal adverse event recorded (disease or other cause)"
        day = (pd.Timestamp(r.DTHDT) - pd.Timestamp(r.TRTSDT)).days if pd.notna(r.DTHDT) else None
        rows.append(Row(r.USUBJID, (str(r.TRT01A), "-" if day is None else str(day), cause)))
    return CsrTable("14.3.5", "Deaths", _pop(rd), "Patient", ("Dose level",
                                                             "Day after infusion", "Cause"),
                    tuple(rows), empty_reason="No infused patient died by the data cut-off.")


def _shifts(rd: ReportData) -> CsrTable:
    adlb = rd.ds("adlb")
    rows: list[Row] = []
    header = ("Baseline grade 0-1: worst 0-1", "worst 2", "worst >= 3",
              "Baseline grade >= 2: worst <= 2", "worst >= 3")
    if len(adlb) and "ATOXGRN" in adlb:
        lab = adlb[adlb["USUBJID"].isin(rd.safety["USUBJID"])]
        for code, name in SHIFT_LABS:
            d = lab[(lab["PARAMCD"] == code) & lab["ATOXGRN"].notna()]
            if d.empty:
                continue
            base = d[d["ABLFL"] == "Y"].groupby("USUBJID")["ATOXGRN"].max()
            post = d[d["ADY"] > 0].groupby("USUBJID")["ATOXGRN"].max()
            both = pd.concat([base.rename("b"), post.rename("p")], axis=1).dropna()
            n = len(both)
            lo, hi = both[both["b"] <= 1], both[both["b"] >= 2]
            rows.append(Row(f"{name} (n = {n})", (
                n_pct(int((lo["p"] <= 1).sum()), n), n_pct(int((lo["p"] == 2).sum()), n),
                n_pct(int((lo["p"] >= 3).sum()), n), n_pct(int((hi["p"] <= 2).sum()), n),
                n_pct(int((hi["p"] >= 3).sum()), n))))
    return CsrTable("14.3.6", "Laboratory shifts: CTCAE grade at baseline to worst grade after "
                    "infusion", _pop(rd), "Parameter", header, tuple(rows), footnotes=(
                        "n: patients with a graded baseline and a graded post-infusion value; "
                        "n (%) of n.",), empty_reason="No graded laboratory value.",
                    )


# --- 14.2: efficacy -----------------------------------------------------------------------------

def efficacy(rd: ReportData) -> list[Block]:
    """Best overall response by dose level with exact CIs, ORR at the registered landmarks,
    swimmer plot, Kaplan-Meier curves, cumulative incidence of relapse."""
    from celltrial.stats import clopper_pearson

    adsl = rd.adsl
    eff = adsl[adsl["EFFFL"] == "Y"] if "EFFFL" in adsl else adsl.iloc[0:0]
    pop = f"Population: efficacy-evaluable set, N = {len(eff)}"
    blocks: list[Block] = []
    if eff.empty:
        blocks.append(P("No patient is efficacy-evaluable by the data cut-off: "
                        + (NO_INFUSED if rd.safety.empty else "no post-infusion assessment yet.")))
        blocks.append(T(_empty("14.2.1", "Best overall response", pop,
                               "No efficacy-evaluable patient.")))
    else:
        adrs = rd.ds("adrs")
        bor = adrs[(adrs["PARAMCD"] == "BOR") & adrs["USUBJID"].isin(eff["USUBJID"])] \
            if len(adrs) else adrs
        groups, cols = _columns(rd, eff)
        rows = []
        values = bor.set_index("USUBJID")["AVALC"] if len(bor) else pd.Series(dtype=str)
        cats = [c for c in RESPONSE_ORDER if c in set(values)] + \
            sorted(set(values) - set(RESPONSE_ORDER))
        for cat in cats:
            rows.append(_count_row(cat, groups, set(values[values == cat].index), 0))
        rows.append(_count_row("Not assessed", groups, set(eff["USUBJID"]) - set(values.index), 0))
        ci_cells = []
        for _, g in groups:
            x = int(g["USUBJID"].map(values).isin(RESPONDER).sum())
            ci = clopper_pearson(x, len(g)) if len(g) else None
            ci_cells.append(f"{x}/{len(g)}: " + est_ci(x / len(g), ci, percent=True)
                            if len(g) else "-")
        rows.append(Row("Overall response (CR/CRh/CRi/MLFS/PR), % (95% CI)", tuple(ci_cells)))
        mrd_rows, mrd_notes = _mrd_rows(rd, groups)
        rows += mrd_rows
        blocks.append(T(CsrTable("14.2.1", "Best overall response by dose level", pop, "", cols,
                                 tuple(rows), footnotes=(
                                     "Best overall response from ADRS (PARAMCD BOR); n (%) of N.",
                                     "95% CI: exact (Clopper-Pearson).", *mrd_notes))))
    orr = [e for e in rd.endpoints if e.get("derivation") == "orr"]
    if orr:
        rows = []
        for e in orr:
            if e.get("status") == "ok":
                rows.append(Row(e["name"] + f" ({e.get('id', '')})",
                                (str(e.get("n")), est_ci(e["estimate"], e.get("ci"), percent=True),
                                 clean(e.get("summary", "")))))
            else:
                rows.append(Row(e["name"], ("-", "not computable", clean(e.get("reason", "")))))
        blocks.append(T(CsrTable("14.2.2", "Objective response rate at the registered landmarks",
                                 pop, "Outcome measure", ("n", "ORR, % (95% CI)", "Detail"),
                                 tuple(rows), footnotes=("Estimates from endpoints.json "
                                                         "(exact Clopper-Pearson 95% CI).",))))
    rows = []
    for der, label in (("os", "Overall survival"), ("pfs", "Progression-free survival"),
                       ("efs", "Event-free survival"), ("dor", "Duration of response"),
                       ("cir", "Cumulative incidence of relapse")):
        for e in [e for e in rd.endpoints if e.get("derivation") == der]:
            if e.get("status") == "ok":
                rows.append(Row(f"{label}: {e['name']}", (str(e.get("n")),
                                                           est_ci(e["estimate"], e.get("ci")),
                                                           e.get("unit", ""), clean(e.get("summary", "")))))
            else:
                rows.append(Row(f"{label}: {e['name']}", ("-", "not computable", "",
                                                           clean(e.get("reason", "")))))
    if rows:
        blocks.append(T(CsrTable("14.2.3", "Time-to-event outcome measures", pop, "",
                                 ("n", "Estimate (95% CI)", "Unit", "Detail"), tuple(rows),
                                 footnotes=("Kaplan-Meier medians with log-type 95% CI; "
                                            "cumulative incidence by Aalen-Johansen with death in "
                                            "remission as competing risk (endpoints.json). "
                                            "NE: not estimable.",))))
    blocks += [F("swimmer"), F("overall_survival"), F("pfs"), F("dor"), F("cir")]
    return blocks


#: endpoint derivations giving MRD-negative remission per dose level (endpoints.json)
MRD_DERIVATIONS: dict[str, str] = {
    "mrd_negative_rate": "MRD-negative remission (flow cytometry)",
    "molecular_remission_rate": "Molecular remission (qPCR MRD-negative)"}


def _mrd_rows(rd: ReportData, groups: Groups) -> tuple[list[Row], list[str]]:
    """Rows of MRD-negative remission by dose level, read from the registered MRD outcome
    measures in endpoints.json (per dose level counts, exact 95% CI); the footnote says why
    there is none (ELN 2022 and NCCN ALL report CR with MRD status: MRD-negative CR)."""
    rows: list[Row] = []
    notes: list[str] = []
    found = [e for e in rd.endpoints if e.get("derivation") in MRD_DERIVATIONS]
    for e in found:
        label = MRD_DERIVATIONS[e["derivation"]]
        if e.get("status") != "ok":
            notes.append(f"{label} ('{e.get('name')}'): not computable: "
                         f"{clean(e.get('reason', ''))}.")
            continue
        by = (e.get("estimates") or {}).get("by_dose_level", {})
        total = (int((e.get("estimates") or {}).get("x", 0)), int(e.get("n") or 0))
        cells = tuple(n_pct(*total) if lv == "Total" else
                      n_pct(int(by[lv]["x"]), int(by[lv]["n"])) if lv in by else "-"
                      for lv, _ in groups)
        rows.append(Row(f"{label}, n (%)", cells))
        notes.append(f"{label}: outcome measure '{e.get('name')}' (endpoints.json), "
                     f"total {est_ci(e.get('estimate'), e.get('ci'), percent=True)} % "
                     "(exact 95% CI).")
    status = rd.adsl.set_index("USUBJID")["MRDSTAT"] if "MRDSTAT" in rd.adsl else None
    if not found and status is not None and status.notna().any():
        for value, label in (("NEGATIVE", "MRD-negative remission (per patient), n (%)"),
                             ("POSITIVE", "MRD-positive remission (per patient), n (%)")):
            rows.append(_count_row(label, groups, set(status[status == value].index), 0))
        notes.append("MRD status in remission (ADSL MRDSTAT): an MRD result from 7 days before "
                     "the first CR/CRh/CRi on below 0.1% (AML/MPAL) or 0.01% (ALL/LBL) of "
                     "cells is negative; remitters without such a result are in neither row. "
                     "No MRD outcome measure is registered for this protocol.")
    elif not found:
        notes.append("MRD-negative remission: no MRD outcome measure is registered for this "
                     "protocol and no patient in remission has an MRD result (ADSL MRDSTAT), "
                     "so it is not tabulated.")
    return rows, notes


# --- 14.4: kinetics and pharmacodynamics -------------------------------------------------------

def _geo(values: np.ndarray) -> str:
    v = values[np.isfinite(values) & (values > 0)]
    if len(v) == 0:
        return "-"
    logs = np.log(v)
    gm = float(np.exp(logs.mean()))
    if len(v) < 2:
        return f"{num(gm)} (NE)"
    cv = 100.0 * float(np.sqrt(np.exp(logs.var(ddof=1)) - 1.0))
    return f"{num(gm)} ({cv:.1f})"


def kinetics(rd: ReportData) -> list[Block]:
    """NCA table by analyte and dose level (geometric mean (geometric CV%) of Cmax and AUC0-28d;
    median (range) of Tmax, Tlast), figures of expansion, CD7+ cells, cytokines,
    exposure-response and the anti-CAR antibody table."""
    s = rd.safety
    if s.empty:
        return [T(_empty("14.4.1", "Cellular kinetics: non-compartmental parameters", _pop(rd)))]
    adpp = rd.ds("adpp")
    groups, cols = _columns(rd)
    rows: list[Row] = []
    if len(adpp):
        for suffix, analyte in ANALYTES.items():
            sub = adpp[adpp["PARAMCD"].astype(str).str.endswith("_" + suffix)]
            if sub.empty:
                continue
            rows.append(Row(analyte, (), 0, True))
            for prefix, label, how in NCA_ROWS:
                p = sub[sub["PARAMCD"] == f"{prefix}_{suffix}"]
                if p.empty:
                    continue
                units = p["AVALU"].dropna()
                unit = unit_text(str(units.iloc[0])) if len(units) else ""
                cells = []
                for _, g in groups:
                    v = p.loc[p["USUBJID"].isin(g["USUBJID"]), "AVAL"].to_numpy(float)
                    v = v[np.isfinite(v)]
                    cells.append(f"n = {len(v)}: " + (_geo(v) if how == "geo" else median_range(v))
                                 if len(v) else "-")
                stat = "geometric mean (CV%)" if how == "geo" else "median (min, max)"
                unit_label = f", {unit}" if unit and how == "geo" else ""
                rows.append(Row(f"{label}{unit_label}: {stat}", tuple(cells), 1))
    blocks = [T(CsrTable("14.4.1", "Cellular kinetics: non-compartmental parameters", _pop(rd), "",
                         cols, tuple(rows), footnotes=(
                             "NCA per patient (ADPP; linear-up/log-down trapezoids).",
                             "Geometric CV% = 100 x sqrt(exp(s^2) - 1), s the SD of log values.",),
                         empty_reason="No NCA parameter in ADPP (no quantifiable sample)."))]
    blocks.append(T(_persistence(rd, groups, cols)))
    blocks += [F("persistence"), F("kinetics_qpcr"), F("kinetics_flow"), F("cd7_cells"),
               F("cytokines"), F("exposure_response")]
    ep = rd.endpoint("ada_positive_rate")
    if ep and ep.get("status") == "ok":
        per_day = (ep.get("estimates") or {}).get("per_day", [])
        rows = [Row(f"Day {num(d['day'])}", (str(d["n_tested"]),
                                            n_pct(d["n_positive"], d["n_tested"]),
                                            est_ci(d["rate"], (d.get("lower"), d.get("upper")),
                                                   percent=True)))
                for d in per_day]
        rows.append(Row("Any time after infusion (treatment-emergent)",
                        (str(ep.get("n")), "", est_ci(ep["estimate"], ep.get("ci"), percent=True))))
        blocks.append(T(CsrTable("14.4.3", "Anti-CAR antibodies", "Population: infused patients "
                                 "with a post-infusion sample", "Visit",
                                 ("Tested", "Positive n (%)", "% (95% CI)"), tuple(rows),
                                 footnotes=("Exact (Clopper-Pearson) 95% CI, from endpoints.json.",))))
    elif ep:
        blocks.append(P(f"Anti-CAR antibodies: not computable: {ep.get('reason', '')}"))
    return blocks


#: persistence analytes (endpoints.json "persistence" keys) and how they are named
PERSISTENCE_ANALYTES: dict[str, str] = {
    "CARTQPCR": "CAR transgene by qPCR", "CARTABS": "CAR+ T cells by flow (cells/\u00b5L)",
    "CARTPCT": "CAR+ T cells by flow (% of CD3+)"}
#: censoring reasons of the persistence rows, in the order of their cell
#: (celltrial.derive.persistence EVENT_TYPES)
PERSISTENCE_CENSORING = ("DEATH BEFORE LOSS SEEN", "ALLOGENEIC HSCT BEFORE LOSS SEEN",
                         "DETECTABLE AT LAST SAMPLE")


def _median_ci(fit: dict[str, Any] | None) -> str:
    """``median (lower, upper)`` of a Kaplan-Meier summary; ``not reached`` without a median."""
    if not fit:
        return "-"
    if fit.get("median") is None:
        lo = (fit.get("median_ci") or [None, None])[0]
        return "not reached" + ("" if lo is None else f" (lower limit {num(lo)})")
    return est_ci(fit["median"], fit.get("median_ci"))


def _persistence(rd: ReportData, groups: Groups, cols: tuple[str, ...]) -> CsrTable:
    """Table 14.4.2: persistence as the time from the first infusion to the loss of
    detectable CAR-T, Kaplan-Meier median with its 95% CI per analyte and dose level
    (endpoints.json "persistence", ``celltrial.derive.analysis.persistence_summary`` of the
    ADTTE LOSS* rows), with the censoring reasons; not the median Tlast, which death,
    transplant and the end of sampling shorten."""
    summary = rd.persistence or {}
    rows: list[Row] = []
    never: list[str] = []
    for analyte, name in PERSISTENCE_ANALYTES.items():
        p = summary.get(analyte)
        if not p:
            continue
        by = p.get("by_dose_level", {})
        fits = [p if lv == "Total" or len(groups) == 1 else by.get(lv) for lv, _ in groups]
        rows.append(Row(name, (), 0, True))
        rows.append(Row("Patients with a quantifiable sample",
                        tuple("0" if not f else str(f["n"]) for f in fits), 1))
        rows.append(Row("Loss of detectable CAR-T seen",
                        tuple("-" if not f else str(f["events"]) for f in fits), 1))
        rows.append(Row("Censored: died / allogeneic HSCT / detectable at the last sample",
                        tuple("-" if not f else " / ".join(
                            str(f.get("censoring", {}).get(reason, 0))
                            for reason in PERSISTENCE_CENSORING) for f in fits), 1))
        rows.append(Row("Median time to loss, days (95% CI)",
                        tuple(_median_ci(f) for f in fits), 1))
        never.append(f"{name}: {p.get('never_quantifiable', 0)}")
    notes = ("Time from the first infusion to the first sample below the limit of "
             "quantification after the last quantifiable one (celltrial.derive.persistence); "
             "Kaplan-Meier median with log-type 95% CI (R survfit rules); NE: not estimable.",
             "Death and allogeneic HSCT: a patient who dies or is transplanted while CAR-T "
             "cells are still detectable is censored at the last quantifiable sample (samples "
             "after HSCT are not read: the graft and its conditioning end persistence for "
             "other reasons); a patient still detectable at the last sample is censored there. "
             "The estimate is the time to loss were nobody to die or be transplanted first.",
             "Patients sampled but never quantifiable after the infusion are not in the "
             "analysis set" + (f" ({'; '.join(never)})" if never else "") + ". Tlast (Table "
             "14.4.1) is the last quantifiable sample, not persistence.")
    reason = ("No infused patient had a quantifiable post-infusion CAR-T sample."
              if rd.persistence is not None else
              "The analysis wrote no persistence summary (endpoints.json has no "
              "\"persistence\"): rerun celltrial analyze.")
    return CsrTable("14.4.2", "Persistence: time to loss of detectable CAR-T (Kaplan-Meier)",
                    _pop(rd), "", cols, tuple(rows), footnotes=notes, empty_reason=reason)


# --- 14.5: every registered outcome measure -----------------------------------------------------

def outcome_measures(rd: ReportData) -> list[Block]:
    """Every outcome measure of the registration by its registered name, with its value or the
    reason it could not be computed (endpoints.json)."""
    rows = []
    for e in rd.endpoints:
        ok = e.get("status", "ok") == "ok"
        unit = unit_text(str(e.get("unit") or ""))
        percent = unit == "proportion"
        value = (est_ci(e.get("estimate"), e.get("ci"), percent=percent)
                 + (" %" if percent else f" {unit}" if unit else "")) if ok else "not computable"
        rows.append(Row(e.get("name", ""), (e.get("kind", ""), e.get("time_frame", ""),
                                            str(e.get("n") if e.get("n") is not None else "-"),
                                            value, clean(e.get("summary", "")) if ok
                                            else clean(e.get("reason", "")))))
    return [T(CsrTable("14.5.1", "Registered outcome measures", "Population as each outcome "
                       "measure defines it", "Outcome measure",
                       ("Kind", "Time frame", "n", "Estimate (95% CI)", "Detail or reason"),
                       tuple(rows), footnotes=(
                           "Proportions in %, exact (Clopper-Pearson) 95% CI; medians with "
                           "log-type 95% CI; geometric means with t-based 95% CI of the log "
                           "mean. NE: not estimable.",), wide=True))]


@dataclass(frozen=True)
class SectionSpec:
    """A section of the report: number, id, title and the function building its blocks."""

    number: str
    id: str
    title: str
    build: Callable[[ReportData], list[Block]]
    landscape: bool = False


def appendix(rd: ReportData) -> list[Block]:
    """Patient data listings (ICH E3 section 16.2), from :mod:`celltrial.report.listings`."""
    from celltrial.report.listings import listings

    return [P("Patient data listings (ICH E3 section 16.2): one row per patient or per "
              "adverse event, read from the analysis datasets."),
            *(Block("table", table=t) for t in listings(rd))]


SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec("1", "protocol", "Protocol summary", protocol_summary),
    SectionSpec("2", "disposition", "Patient disposition", disposition),
    SectionSpec("3", "demographics", "Demographics and baseline characteristics", demographics),
    SectionSpec("4", "exposure", "Extent of exposure", exposure),
    SectionSpec("5", "escalation", "Dose escalation", escalation),
    SectionSpec("6", "safety", "Safety", safety),
    SectionSpec("7", "efficacy", "Efficacy", efficacy),
    SectionSpec("8", "kinetics", "Cellular kinetics and pharmacodynamics", kinetics),
    SectionSpec("9", "outcomes", "Registered outcome measures", outcome_measures),
    SectionSpec("10", "listings", "Appendix: patient data listings", appendix, landscape=True),
)


def build_sections(rd: ReportData) -> list[Section]:
    """Every section's blocks, in report order."""
    return [Section(s.number, s.id, s.title, tuple(s.build(rd)), s.landscape) for s in SECTIONS]
