"""CTCAE v5.0 grading of laboratory values, as a table of terms.

Source: NCI Common Terminology Criteria for Adverse Events v5.0 (27 Nov 2017), the lab terms
as transcribed in admiral's CTCAE v5 grading spec (pharmaverse/admiral
``data-raw/adlb_grading/ncictcaev5.json``; ../shared/CLINICAL_REFERENCE.md section 2).
Each term is one :class:`Term` row: its analyte, its numeric bands (grade, comparison,
reference LLN/ULN/baseline/absolute) and the clinical qualifiers that set a grade.

Rules kept from CTCAE v5.0:
- Grade = the highest grade whose criterion is met; 0 = no adverse event.
- ALT/AST/bilirubin: when the baseline is above ULN ("baseline abnormal"), multiples of the
  baseline replace multiples of ULN (ALT/AST grade 1 = >= 1.5 x baseline, bilirubin > 1.0 x).
  Without a baseline, the baseline is taken as normal and the result says so (``assumed``).
- Creatinine: grades 2-3 are met by the ULN multiple or by the baseline multiple when a
  baseline is given (whichever gives the higher grade).
- Fibrinogen: when the baseline is below LLN, the percent decrease from baseline replaces the
  LLN multiples (grade 1 any decrease < 25%, 2: 25-<50%, 3: 50-<75%, 4: >= 75%); an absolute
  value < 0.5 g/L (50 mg/dL) is grade 4 always. (admiral applies the percent rule when the
  *value* is below LLN; CTCAE's "if abnormal" is read here as the baseline.)
- Symptom- or intervention-dependent grades take ``qualifier``: hypokalemia <LLN-3.0 is
  grade 1 asymptomatic / grade 2 symptomatic; hyponatremia 125-<130 is grade 2
  asymptomatic / grade 3 symptomatic; hypocalcemia <LLN-8.0 mg/dL is grade 1 / grade 2
  symptomatic. When the qualifier is not given, the worse grade is returned and
  ``assumed`` says so (worst case, as admiral does for K and Na).
- Clinical-only grades (transfusion indicated, hospitalization, life-threatening, death)
  come from ``qualifier`` and apply only when the value itself is abnormal.
- Hypophosphatemia: CTCAE v5.0 grades it by clinical criteria only (grade 1 laboratory
  finding only, intervention not indicated; 2 oral replacement therapy indicated; 3 severe
  or medically significant, hospitalization indicated; 4 life-threatening; 5 death); the
  admiral v5 spec has no numeric rule for it. A value below LLN without a qualifier is
  grade 1 (the laboratory finding is all that is known), with ``assumed`` saying so. The
  numeric CTCAE v4.03 table is available only when asked for explicitly, as the term
  "Hypophosphatemia (CTCAE v4.03)".
- Hyponatremia's "125-129 mmol/L" is read on a continuous scale as 125 <= Na < 130.
- Values and LLN/ULN/baseline are in the same unit; absolute thresholds are compared in
  the unit given when CTCAE prints them in it (e.g. 8.0 mg/dL and 2.0 mmol/L for calcium,
  which do not convert exactly), otherwise after conversion to SI (:mod:`.units`).
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from celltrial.clinical.units import ANALYTES, SI_UNIT, _signif, normalise_unit
from celltrial.errors import NotComputable, invalid

__all__ = ["TERMS", "Band", "LabGrade", "SymptomBand", "Term", "grade_febrile_neutropenia",
           "grade_lab", "lookup_term"]

Ref = Literal["abs", "lln", "uln", "base"]
When = Literal["always", "baseline_normal", "baseline_abnormal", "baseline_given"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Band:
    """One numeric criterion: ``value <op> k x ref`` (``ref`` abs: ``at`` per unit) -> grade."""

    grade: int
    op: str
    ref: Ref
    k: float = 1.0
    at: Mapping[str, float] = field(default_factory=dict)
    when: When = "always"


@dataclass(frozen=True)
class SymptomBand:
    """Within the numeric ``grade`` band, qualifiers move the grade (CTCAE "symptomatic")."""

    grade: int
    qualifiers: Mapping[str, int]
    worst: int
    why: str


@dataclass(frozen=True)
class Term:
    """One CTCAE v5.0 lab term as data."""

    name: str
    analyte: str
    direction: Literal["low", "high"]
    bands: tuple[Band, ...]
    text: Mapping[int, str]
    symptom: SymptomBand | None = None
    clinical: Mapping[str, int] = field(default_factory=dict)
    baseline_abnormal: Literal["above_uln", "below_lln"] | None = None
    clinical_only: bool = False
    plausible_si: tuple[float, float] = (0.0, math.inf)


def _abs(grade: int, op: str, **at: float) -> Band:
    return Band(grade, op, "abs", at={normalise_unit(u.replace("_", "/")): v
                                      for u, v in at.items()})


_LOW_COUNT = dict(direction="low", plausible_si=(0.0, 2000.0))


def _count(name: str, analyte: str, g2: float, g3: float, g4: float, unit: str) -> Term:
    return Term(name, analyte, bands=(
        Band(1, "<", "lln"), Band(2, "<", "abs", at={"10^9/l": g2}),
        Band(3, "<", "abs", at={"10^9/l": g3}), Band(4, "<", "abs", at={"10^9/l": g4})),
        text={1: f"<LLN - {g2} {unit}", 2: f"<{g2} - {g3} {unit}", 3: f"<{g3} - {g4} {unit}",
              4: f"<{g4} {unit}"}, **_LOW_COUNT)  # type: ignore[arg-type]


def _liver(name: str, analyte: str, g1_base_op: str, g1_base: float, mults: tuple[float, ...],
           base_text: str) -> Term:
    m2, m3, m4 = mults
    bands = [Band(1, ">", "uln", 1.0, when="baseline_normal"),
             Band(1, g1_base_op, "base", g1_base, when="baseline_abnormal")]
    for grade, m in ((2, m2), (3, m3), (4, m4)):
        bands += [Band(grade, ">", "uln", m, when="baseline_normal"),
                  Band(grade, ">", "base", m, when="baseline_abnormal")]
    return Term(name, analyte, "high", tuple(bands), text={
        1: f">ULN - {m2} x ULN if baseline normal; {base_text} - {m2} x baseline if abnormal",
        2: f">{m2} - {m3} x ULN / x baseline", 3: f">{m3} - {m4} x ULN / x baseline",
        4: f">{m4} x ULN / x baseline"}, baseline_abnormal="above_uln",
        plausible_si=(0.0, 1e5))


_DEATH = {"death": 5}
_LIFE = {"life_threatening": 4, **_DEATH}

TERMS: dict[str, Term] = {t.name.lower(): t for t in (
    _count("Neutrophil count decreased", "neutrophils", 1.5, 1.0, 0.5, "x10^9/L"),
    _count("Platelet count decreased", "platelets", 75.0, 50.0, 25.0, "x10^9/L"),
    _count("Lymphocyte count decreased", "lymphocytes", 0.8, 0.5, 0.2, "x10^9/L"),
    _count("White blood cell decreased", "leukocytes", 3.0, 2.0, 1.0, "x10^9/L"),
    Term("Anemia", "hemoglobin", "low", (
        Band(1, "<", "lln"), _abs(2, "<", g_L=100.0, g_dL=10.0, mmol_L=6.2),
        _abs(3, "<", g_L=80.0, g_dL=8.0, mmol_L=4.9)),
        text={1: "Hgb <LLN - 10.0 g/dL; <LLN - 100 g/L", 2: "Hgb <10.0 - 8.0 g/dL; <100 - 80 g/L",
              3: "Hgb <8.0 g/dL; <80 g/L; transfusion indicated",
              4: "Life-threatening consequences; urgent intervention indicated", 5: "Death"},
        clinical={"transfusion_indicated": 3, **_LIFE}, plausible_si=(0.0, 300.0)),
    _liver("Alanine aminotransferase increased", "alt", ">=", 1.5, (3.0, 5.0, 20.0), "1.5"),
    _liver("Aspartate aminotransferase increased", "ast", ">=", 1.5, (3.0, 5.0, 20.0), "1.5"),
    _liver("Blood bilirubin increased", "bilirubin", ">", 1.0, (1.5, 3.0, 10.0), ">1.0"),
    Term("Creatinine increased", "creatinine", "high", (
        Band(1, ">", "uln"), Band(2, ">", "uln", 1.5), Band(3, ">", "uln", 3.0),
        Band(4, ">", "uln", 6.0), Band(2, ">", "base", 1.5, when="baseline_given"),
        Band(3, ">", "base", 3.0, when="baseline_given")),
        text={1: ">ULN - 1.5 x ULN", 2: ">1.5 - 3.0 x baseline; >1.5 - 3.0 x ULN",
              3: ">3.0 x baseline; >3.0 - 6.0 x ULN", 4: ">6.0 x ULN"},
        plausible_si=(0.0, 5000.0)),
    Term("Fibrinogen decreased", "fibrinogen", "low", (
        Band(1, "<", "lln", 1.0, when="baseline_normal"),
        Band(2, "<", "lln", 0.75, when="baseline_normal"),
        Band(3, "<", "lln", 0.5, when="baseline_normal"),
        Band(4, "<", "lln", 0.25, when="baseline_normal"),
        Band(1, "<", "base", 1.0, when="baseline_abnormal"),
        Band(2, "<=", "base", 0.75, when="baseline_abnormal"),
        Band(3, "<=", "base", 0.5, when="baseline_abnormal"),
        Band(4, "<=", "base", 0.25, when="baseline_abnormal"),
        _abs(4, "<", g_L=0.5, mg_dL=50.0)),
        text={1: "<1.0 - 0.75 x LLN; if abnormal, <25% decrease from baseline",
              2: "<0.75 - 0.5 x LLN; if abnormal, 25 - <50% decrease from baseline",
              3: "<0.5 - 0.25 x LLN; if abnormal, 50 - <75% decrease from baseline",
              4: "<0.25 x LLN; if abnormal, 75% decrease from baseline; absolute value <50 mg/dL"},
        baseline_abnormal="below_lln", plausible_si=(0.0, 30.0)),
    Term("Hypokalemia", "potassium", "low", (
        Band(1, "<", "lln"), _abs(3, "<", mmol_L=3.0), _abs(4, "<", mmol_L=2.5)),
        text={1: "<LLN - 3.0 mmol/L", 2: "Symptomatic with <LLN - 3.0 mmol/L; intervention "
              "indicated", 3: "<3.0 - 2.5 mmol/L; hospitalization indicated",
              4: "<2.5 mmol/L; life-threatening consequences", 5: "Death"},
        symptom=SymptomBand(1, {"asymptomatic": 1, "symptomatic": 2,
                                "intervention_indicated": 2}, 2,
                            "symptoms/intervention not given; grade 2 assumed (worst case)"),
        clinical={"hospitalization": 3, **_LIFE}, plausible_si=(0.5, 15.0)),
    Term("Hyponatremia", "sodium", "low", (
        Band(1, "<", "lln"), _abs(2, "<", mmol_L=130.0), _abs(3, "<", mmol_L=125.0),
        _abs(4, "<", mmol_L=120.0)),
        text={1: "<LLN - 130 mmol/L", 2: "125-129 mmol/L and asymptomatic",
              3: "125-129 mmol/L symptomatic; 120-124 mmol/L regardless of symptoms",
              4: "<120 mmol/L; life-threatening consequences", 5: "Death"},
        symptom=SymptomBand(2, {"asymptomatic": 2, "symptomatic": 3}, 3,
                            "symptoms not given; grade 3 assumed (worst case)"),
        clinical=_LIFE, plausible_si=(80.0, 220.0)),
    Term("Hypocalcemia", "calcium", "low", (
        Band(1, "<", "lln"), _abs(2, "<", mg_dL=8.0, mmol_L=2.0),
        _abs(3, "<", mg_dL=7.0, mmol_L=1.75), _abs(4, "<", mg_dL=6.0, mmol_L=1.5)),
        text={1: "Corrected serum calcium <LLN - 8.0 mg/dL; <LLN - 2.0 mmol/L",
              2: "<8.0 - 7.0 mg/dL; <2.0 - 1.75 mmol/L; symptomatic",
              3: "<7.0 - 6.0 mg/dL; <1.75 - 1.5 mmol/L; hospitalization indicated",
              4: "<6.0 mg/dL; <1.5 mmol/L; life-threatening consequences", 5: "Death"},
        symptom=SymptomBand(1, {"asymptomatic": 1, "symptomatic": 2}, 2,
                            "symptoms not given; grade 2 assumed (worst case)"),
        clinical={"hospitalization": 3, **_LIFE}, plausible_si=(0.2, 7.0)),
    Term("Hypocalcemia (ionized)", "ionized_calcium", "low", (
        Band(1, "<", "lln"), _abs(2, "<", mmol_L=1.0), _abs(3, "<", mmol_L=0.9),
        _abs(4, "<", mmol_L=0.8)),
        text={1: "Ionized calcium <LLN - 1.0 mmol/L", 2: "<1.0 - 0.9 mmol/L; symptomatic",
              3: "<0.9 - 0.8 mmol/L; hospitalization indicated",
              4: "<0.8 mmol/L; life-threatening consequences", 5: "Death"},
        symptom=SymptomBand(1, {"asymptomatic": 1, "symptomatic": 2}, 2,
                            "symptoms not given; grade 2 assumed (worst case)"),
        clinical={"hospitalization": 3, **_LIFE}, plausible_si=(0.1, 4.0)),
    Term("Hypophosphatemia", "phosphate", "low", (Band(1, "<", "lln"),),
         text={1: "Laboratory finding only and intervention not indicated",
               2: "Oral replacement therapy indicated",
               3: "Severe or medically significant but not immediately life-threatening; "
                  "hospitalization or prolongation of existing hospitalization indicated",
               4: "Life-threatening consequences; urgent intervention indicated", 5: "Death"},
         clinical={"asymptomatic": 1, "oral_replacement": 2, "hospitalization": 3,
                   "severe": 3, **_LIFE}, clinical_only=True, plausible_si=(0.0, 12.0)),
    Term("Hypophosphatemia (CTCAE v4.03)", "phosphate", "low", (
        Band(1, "<", "lln"), _abs(2, "<", mmol_L=0.8, mg_dL=2.5),
        _abs(3, "<", mmol_L=0.6, mg_dL=2.0), _abs(4, "<", mmol_L=0.3, mg_dL=1.0)),
        text={1: "<LLN - 2.5 mg/dL; <LLN - 0.8 mmol/L", 2: "<2.5 - 2.0 mg/dL; <0.8 - 0.6 mmol/L",
              3: "<2.0 - 1.0 mg/dL; <0.6 - 0.3 mmol/L", 4: "<1.0 mg/dL; <0.3 mmol/L", 5: "Death"},
        clinical=_LIFE, plausible_si=(0.0, 12.0)),
    Term("Hypoalbuminemia", "albumin", "low", (
        Band(1, "<", "lln"), _abs(2, "<", g_dL=3.0, g_L=30.0), _abs(3, "<", g_dL=2.0, g_L=20.0)),
        text={1: "<LLN - 3 g/dL; <LLN - 30 g/L", 2: "<3 - 2 g/dL; <30 - 20 g/L",
              3: "<2 g/dL; <20 g/L", 4: "Life-threatening consequences; urgent intervention "
              "indicated", 5: "Death"}, clinical=_LIFE, plausible_si=(0.0, 100.0)),
    Term("Hyperkalemia", "potassium", "high", (
        Band(1, ">", "uln"), _abs(2, ">", mmol_L=5.5), _abs(3, ">", mmol_L=6.0),
        _abs(4, ">", mmol_L=7.0)),
        text={1: ">ULN - 5.5 mmol/L", 2: ">5.5 - 6.0 mmol/L; intervention initiated",
              3: ">6.0 - 7.0 mmol/L; hospitalization indicated",
              4: ">7.0 mmol/L; life-threatening consequences", 5: "Death"},
        clinical={"intervention_indicated": 2, "hospitalization": 3, **_LIFE},
        plausible_si=(0.5, 15.0)),
    Term("Hypernatremia", "sodium", "high", (
        Band(1, ">", "uln"), _abs(2, ">", mmol_L=150.0), _abs(3, ">", mmol_L=155.0),
        _abs(4, ">", mmol_L=160.0)),
        text={1: ">ULN - 150 mmol/L", 2: ">150 - 155 mmol/L; intervention initiated",
              3: ">155 - 160 mmol/L; hospitalization indicated",
              4: ">160 mmol/L; life-threatening consequences", 5: "Death"},
        clinical={"intervention_indicated": 2, "hospitalization": 3, **_LIFE},
        plausible_si=(80.0, 220.0)),
    Term("Hypercalcemia", "calcium", "high", (
        Band(1, ">", "uln"), _abs(2, ">", mg_dL=11.5, mmol_L=2.9),
        _abs(3, ">", mg_dL=12.5, mmol_L=3.1), _abs(4, ">", mg_dL=13.5, mmol_L=3.4)),
        text={1: "Corrected serum calcium >ULN - 11.5 mg/dL; >ULN - 2.9 mmol/L",
              2: ">11.5 - 12.5 mg/dL; >2.9 - 3.1 mmol/L; symptomatic",
              3: ">12.5 - 13.5 mg/dL; >3.1 - 3.4 mmol/L; hospitalization indicated",
              4: ">13.5 mg/dL; >3.4 mmol/L; life-threatening consequences", 5: "Death"},
        clinical={"symptomatic": 2, "hospitalization": 3, **_LIFE}, plausible_si=(0.2, 7.0)),
)}
"""CTCAE v5.0 lab terms by lower-case name (the names as printed in CTCAE)."""


def lookup_term(name: object) -> Term:
    """The :class:`Term` for a CTCAE name (case-insensitive), or InvalidValue naming it."""
    if isinstance(name, str) and name.strip().lower() in TERMS:
        return TERMS[name.strip().lower()]
    if isinstance(name, str) and name.strip().lower() == "febrile neutropenia":
        raise invalid("term", name, "graded with `grade_febrile_neutropenia(anc, unit, "
                      "temperature_c, ...)` (it needs a temperature)")
    raise invalid("term", name, f"a CTCAE v5.0 lab term, one of {[t.name for t in TERMS.values()]}")


class LabGrade(int):
    """A CTCAE grade 0-5 that is an ``int`` (``grade == 3``, ``int(grade)``) and carries why.

    Attributes: ``grade``, ``term``, ``value``, ``unit``, ``value_si``, ``unit_si``, ``rule``
    (the CTCAE text of the criterion met, with the numbers used) and ``assumed`` (what was
    assumed for a missing qualifier or baseline, else None).
    """

    term: str
    value: float
    unit: str
    value_si: float
    unit_si: str
    rule: str
    assumed: str | None

    def __new__(cls, grade: int, *, term: str, value: float, unit: str, value_si: float,
                unit_si: str, rule: str, assumed: str | None = None) -> LabGrade:
        obj = super().__new__(cls, grade)
        for name, val in (("term", term), ("value", value), ("unit", unit),
                          ("value_si", value_si), ("unit_si", unit_si), ("rule", rule),
                          ("assumed", assumed)):
            object.__setattr__(obj, name, val)
        return obj

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("LabGrade is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        fields = self.as_dict()
        return (_labgrade, (fields.pop("grade"), fields))

    @property
    def grade(self) -> int:
        return int(self)

    def __repr__(self) -> str:
        extra = f", assumed={self.assumed!r}" if self.assumed else ""
        return f"LabGrade({int(self)}, term={self.term!r}, rule={self.rule!r}{extra})"

    def as_dict(self) -> dict[str, Any]:
        return {"grade": int(self), "term": self.term, "value": self.value, "unit": self.unit,
                "value_si": self.value_si, "unit_si": self.unit_si, "rule": self.rule,
                "assumed": self.assumed}


def _labgrade(grade: int, fields: dict[str, Any]) -> LabGrade:
    return LabGrade(grade, **fields)


def _number(what: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise invalid(what, value, "a number")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise invalid(what, value, "a finite number " + ("> 0" if positive else ">= 0"))
    return v


def _qualifiers(t: Term, qualifier: str | Iterable[str] | None) -> set[str]:
    if qualifier is None:
        return set()
    items = {qualifier} if isinstance(qualifier, str) else set(qualifier)
    allowed = set(t.clinical) | (set(t.symptom.qualifiers) if t.symptom else set())
    for q in items:
        if q not in allowed:
            raise invalid("qualifier", q, f"for {t.name} one of {sorted(allowed)}"
                          if allowed else f"absent: {t.name} is graded on the value alone")
    return items


def _band_met(b: Band, v: float, unit: str, lln: float | None, uln: float | None,
              base: float | None, value_si: float, si_unit: str) -> tuple[bool | None, str]:
    """Whether a band's comparison holds (None = its reference is missing), and its text."""
    if b.ref == "abs":
        if unit in b.at:
            return _OPS[b.op](v, b.at[unit]), f"{v:g} {b.op} {b.at[unit]:g}"
        limit = b.at[si_unit]
        return _OPS[b.op](value_si, limit), f"{value_si:g} {b.op} {limit:g} (SI)"
    ref = {"lln": lln, "uln": uln, "base": base}[b.ref]
    if ref is None:
        return None, ""
    limit = _signif(b.k * ref)
    name = {"lln": "LLN", "uln": "ULN", "base": "baseline"}[b.ref]
    return _OPS[b.op](v, limit), f"{v:g} {b.op} {b.k:g} x {name} ({limit:g})"


for _t in TERMS.values():  # every absolute threshold exists in the analyte's SI unit
    for _b in _t.bands:
        if _b.ref == "abs" and normalise_unit(SI_UNIT[_t.analyte]) not in _b.at:
            raise RuntimeError(f"{_t.name}: absolute band without an SI threshold")


def grade_lab(term: str, value: float, unit: str, *, lln: float | None = None,
              uln: float | None = None, baseline: float | None = None,
              qualifier: str | Iterable[str] | None = None) -> LabGrade:
    """CTCAE v5.0 grade (0-5) of one lab value; the result is an ``int`` with its reason.

    ``lln``, ``uln`` and ``baseline`` are in the same unit as ``value``. ``qualifier`` is a
    clinical qualifier of the term (``"symptomatic"``, ``"asymptomatic"``,
    ``"hospitalization"``, ``"life_threatening"``, ``"death"``, ...); see :data:`TERMS`.

    >>> grade_lab("Neutrophil count decreased", 0.8, "10^9/L", lln=2.0)
    LabGrade(3, term='Neutrophil count decreased', rule='<1.0 - 0.5 x10^9/L: 0.8 < 1')
    >>> int(grade_lab("Alanine aminotransferase increased", 130, "U/L", uln=40, baseline=30))
    2
    """
    t = lookup_term(term)
    v = _number("value", value)
    u = normalise_unit(unit)
    table = ANALYTES[t.analyte]
    if u not in table:
        raise invalid("unit", unit, f"a unit of {t.analyte} for {t.name}: one of {sorted(table)}")
    value_si = _signif(v * table[u])
    lo, hi = t.plausible_si
    if not lo <= value_si <= hi:
        raise invalid("value", value, f"a possible {t.analyte} value: {lo:g}-{hi:g} "
                      f"{SI_UNIT[t.analyte]} (got {value_si:g} {SI_UNIT[t.analyte]})")
    lln_v = None if lln is None else _number("lln", lln, positive=True)
    uln_v = None if uln is None else _number("uln", uln, positive=True)
    base = None if baseline is None else _number("baseline", baseline)
    quals = _qualifiers(t, qualifier)
    assumed: list[str] = []

    # Which baseline rules apply.
    if t.baseline_abnormal is not None and base is not None:
        ref = uln_v if t.baseline_abnormal == "above_uln" else lln_v
        if ref is None:
            raise NotComputable(f"{t.name}: the baseline rule needs "
                                f"{'ULN' if t.baseline_abnormal == 'above_uln' else 'LLN'} "
                                f"to tell whether baseline {base:g} is abnormal")
        abnormal = base > ref if t.baseline_abnormal == "above_uln" else base < ref
    else:
        abnormal = False
        if t.baseline_abnormal is not None:
            assumed.append("baseline not given; baseline assumed normal (multiples of "
                           f"{'ULN' if t.baseline_abnormal == 'above_uln' else 'LLN'})")
    active = {"always": True, "baseline_normal": not abnormal, "baseline_abnormal": abnormal,
              "baseline_given": base is not None}

    grade, rule, unknown = 0, "within normal limits (no adverse event)", []
    for b in sorted(t.bands, key=lambda b: b.grade):
        if not active[b.when]:
            continue
        met, text = _band_met(b, v, u, lln_v, uln_v, base, value_si,
                              normalise_unit(SI_UNIT[t.analyte]))
        if met is None:
            unknown.append(b)
        elif met and b.grade >= grade:
            grade, rule = b.grade, f"{t.text[b.grade]}: {text}"
    missing = [b for b in unknown if b.grade > grade]
    if missing and not t.clinical_only:
        names = sorted({{"lln": "lln", "uln": "uln", "base": "baseline"}[b.ref] for b in missing})
        raise NotComputable(f"{t.name}: value {v:g} {unit} needs {' and '.join(names)} to be "
                            f"graded (CTCAE v5.0: {t.text[missing[0].grade]})")

    if t.clinical_only:
        if lln_v is None and not quals:
            raise NotComputable(f"{t.name}: CTCAE v5.0 grades it by clinical criteria only; "
                                "give `lln` and a qualifier (asymptomatic, oral_replacement, "
                                "hospitalization, life_threatening, death)")
        if grade == 0 and lln_v is not None:
            return LabGrade(0, term=t.name, value=v, unit=unit, value_si=value_si,
                            unit_si=SI_UNIT[t.analyte], rule=rule, assumed=None)
        if not quals:
            return LabGrade(1, term=t.name, value=v, unit=unit, value_si=value_si,
                            unit_si=SI_UNIT[t.analyte],
                            rule=f"{t.text[1]}: {rule.split(': ', 1)[-1]}",
                            assumed="no qualifier given: grade 1 (laboratory finding only) "
                            f"assumed; CTCAE v5.0 grades {t.name} by clinical criteria only "
                            "(oral_replacement 2, hospitalization 3, life_threatening 4, "
                            "death 5)")
        grade = 0
    if t.symptom is not None and grade == t.symptom.grade:
        given = [t.symptom.qualifiers[q] for q in quals if q in t.symptom.qualifiers]
        if given:
            grade = max(given)
        else:
            grade = t.symptom.worst
            assumed.append(t.symptom.why)
        rule = f"{t.text[grade]}: {rule.split(': ', 1)[-1]}"
    if grade > 0 or t.clinical_only:
        for q in quals:
            g = t.clinical.get(q, 0)
            if g > grade:
                grade, rule = g, f"{t.text[g]} (qualifier {q})"
    return LabGrade(grade, term=t.name, value=v, unit=unit, value_si=value_si,
                    unit_si=SI_UNIT[t.analyte], rule=rule,
                    assumed="; ".join(assumed) if assumed and grade > 0 else None)


FEBRILE_NEUTROPENIA_TEXT = {
    3: "ANC <1000/mm3 with a single temperature of >38.3 C (101 F) or a sustained temperature "
       "of >=38 C (100.4 F) for more than one hour",
    4: "Life-threatening consequences; urgent intervention indicated", 5: "Death"}


def grade_febrile_neutropenia(anc: float, unit: str, temperature_c: float, *,
                              sustained_hours: float | None = None,
                              qualifier: str | None = None) -> LabGrade:
    """CTCAE v5.0 "Febrile neutropenia" from ANC and temperature (grades 0, 3, 4, 5).

    Grade 3: ANC < 1.0 x10^9/L with a single temperature > 38.3 C, or >= 38.0 C sustained for
    more than 1 hour (``sustained_hours``); ``qualifier`` ``life_threatening`` -> 4,
    ``death`` -> 5. There are no grades 1-2 in CTCAE v5.0.
    """
    u = normalise_unit(unit)
    table = ANALYTES["neutrophils"]
    if u not in table:
        raise invalid("unit", unit, f"a unit of neutrophils: one of {sorted(table)}")
    a = _signif(_number("anc", anc) * table[u])
    temp = _number("temperature_c", temperature_c)
    if not 25.0 <= temp <= 45.0:
        raise invalid("temperature_c", temperature_c, "a body temperature in C (25-45)")
    hours = None if sustained_hours is None else _number("sustained_hours", sustained_hours)
    if qualifier is not None and qualifier not in ("life_threatening", "death"):
        raise invalid("qualifier", qualifier, "one of ['death', 'life_threatening']")
    fever = temp > 38.3 or (temp >= 38.0 and hours is not None and hours > 1.0)
    grade = 3 if a < 1.0 and fever else 0
    rule = (f"{FEBRILE_NEUTROPENIA_TEXT[3]}: ANC {a:g} < 1.0, {temp:g} C" if grade
            else f"no febrile neutropenia: ANC {a:g} x10^9/L, {temp:g} C")
    if grade and qualifier:
        grade = {"life_threatening": 4, "death": 5}[qualifier]
        rule = f"{FEBRILE_NEUTROPENIA_TEXT[grade]} (qualifier {qualifier})"
    return LabGrade(grade, term="Febrile neutropenia", value=float(anc), unit=unit,
                    value_si=a, unit_si="10^9/L", rule=rule)
