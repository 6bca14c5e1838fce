"""IEC-HS: immune effector cell-associated HLH-like syndrome, identification and grade.

Source: Hines MR, Knight TE, McNerney KO, et al. Immune Effector Cell-Associated
Hemophagocytic Lymphohistiocytosis-Like Syndrome. Transplant Cell Ther 2023;29(7):438.e1-
438.e16 (ASTCT consensus): the table of IEC-HS manifestations (Table 2) and the severity
grading (Table 3). The criteria below were transcribed from the consensus as recalled in this
project; the full text was not reachable while writing this module, so each row is declared
as data and should be checked against the paper before clinical use (docs/clinical.md).

Identification (:func:`identify_iec_hs`), the project's operational reading of the consensus
definition (an HLH-like hyperinflammatory syndrome attributable to the IEC therapy, not
explained otherwise, arising as CRS resolves or worsening after initial improvement, with
new or progressive cytopenias, hyperferritinaemia, coagulopathy with hypofibrinogenaemia
and/or transaminitis):

1. ferritin > 2 x ULN, or > 2 x the value at infusion, or rapidly rising by clinical
   judgement (:data:`FERRITIN_FOLD`);
2. onset after CRS resolution or as CRS resolves, or worsening after initial improvement
   (``timing`` in :data:`COMPATIBLE_TIMING`; active, worsening CRS is graded as CRS);
3. at least one of: haemophagocytosis in marrow or tissue; AST or ALT > 5 x ULN (baseline
   normal) or > 5 x baseline (baseline abnormal) (:data:`TRANSAMINASE_FOLD`); fibrinogen
   < 150 mg/dL or below LLN (:data:`FIBRINOGEN_MG_DL`); new, worsening or refractory
   cytopenia;
4. not better explained by another cause (``other_explanation`` False).

Severity (Table 3): 1 asymptomatic or mild symptoms, IEC-HS-directed therapy given;
2 mild to moderate symptoms, IEC-HS-directed therapy given; 3 severe or medically significant
but not immediately life-threatening (hospitalisation or its prolongation, e.g. coagulopathy
with bleeding needing transfusion, new acute kidney injury, hypoxia needing non-invasive
ventilation); 4 life-threatening, urgent intervention (e.g. life-threatening bleeding or
hypotension, intubation, dialysis); 5 death (:data:`SEVERITY_GRADES`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from celltrial.errors import invalid

__all__ = ["COMPATIBLE_TIMING", "CYTOPENIA_MIN_GRADE", "CYTOPENIA_RECOVERY_ASSESSMENTS", "FERRITIN_FOLD", "FIBRINOGEN_MG_DL",
           "IECHS_KEYS", "ORGAN_CRITERIA", "SEVERITY_GRADES", "TIMINGS", "TRANSAMINASE_FOLD",
           "IECHSAssessment", "crs_timing", "grade_iec_hs", "identify_iec_hs",
           "new_or_worsening_cytopenia"]

FERRITIN_FOLD = 2.0
"""Ferritin criterion: strictly above 2 x ULN or 2 x the value at infusion (Hines 2023, Table 2)."""

TRANSAMINASE_FOLD = 5.0
"""AST/ALT strictly above 5 x ULN (baseline normal) or 5 x baseline (abnormal)."""

FIBRINOGEN_MG_DL = 150.0
"""Hypofibrinogenaemia: fibrinogen strictly below 150 mg/dL, or below the LLN."""

TIMINGS = ("before_crs", "during_worsening_crs", "crs_resolving", "after_crs_resolution",
           "worsening_after_improvement", "no_crs")
"""When the syndrome appeared relative to CRS."""

COMPATIBLE_TIMING = frozenset({"crs_resolving", "after_crs_resolution",
                               "worsening_after_improvement", "no_crs"})
"""Timings compatible with IEC-HS (the consensus: onset as CRS resolves or after, or a
worsening inflammatory picture after initial improvement; an IEC-HS without CRS is not
excluded)."""

SEVERITY_GRADES: dict[str, int] = {"mild": 1, "mild_to_moderate": 2, "severe": 3,
                                   "life_threatening": 4, "fatal": 5}
"""Severity -> IEC-HS grade (Hines 2023, Table 3)."""

ORGAN_CRITERIA = ("hemophagocytosis", "transaminases", "hypofibrinogenemia", "cytopenia")
"""The organ criteria of which at least one is needed (criterion 3)."""

CYTOPENIA_MIN_GRADE = 3
"""Reading of "new onset, worsening or refractory cytopenia" on captured counts
(:func:`new_or_worsening_cytopenia`): a second dip -- the worst CTCAE v5.0 grade of "Neutrophil
count decreased" and "Platelet count decreased" on the day is at least 3, above the grade of
the previous assessment, and the counts had recovered after the infusion (a grade >= 3 then
a later grade <= 2 before the day). The first nadir after lymphodepletion is expected and is
not the syndrome; the biphasic ("intermittent") course, recovery then a second fall below
1.0 x 10^9/L, is the phenotype of late inflammatory cytopenia (Rejeski K et al., Blood
2021;138:2499, CAR-HEMATOTOX). A recovery must hold on
:data:`CYTOPENIA_RECOVERY_ASSESSMENTS` assessments. Project convention; refractoriness to transfusion or growth
factors is not in the records, so it is not read."""

CYTOPENIA_RECOVERY_ASSESSMENTS = 2
"""A recovery counts when it holds on 2 consecutive assessments (one value is not a recovery;
the aplasia recovery rule of :mod:`celltrial.clinical.aplasia` and the EHA/EBMT reading that
non-stable recoveries are still neutropenic days)."""

IECHS_KEYS = frozenset({
    "ferritin_ng_ml", "ferritin_uln_ng_ml", "ferritin_at_infusion_ng_ml", "ferritin_rapid_rise",
    "timing", "hemophagocytosis", "ast_x_uln", "alt_x_uln", "ast_baseline_x_uln",
    "alt_baseline_x_uln", "fibrinogen_mg_dl", "fibrinogen_lln_mg_dl", "cytopenia",
    "other_explanation"})


@dataclass(frozen=True)
class IECHSAssessment:
    """Whether IEC-HS criteria are met, and which (``met``: criterion -> True/False/None for
    not assessable)."""

    present: bool
    met: dict[str, bool | None]
    reasons: tuple[str, ...]

    @property
    def met_but_exclusion(self) -> bool:
        """Criteria 1-3 met (ferritin, timing, an organ criterion), whatever the exclusion of
        another cause (criterion 4) says: what captured data can establish, since "not better
        explained by another cause" is the investigator's judgement."""
        return self.met["ferritin"] is True and self.met["timing"] is True and any(
            self.met[k] is True for k in ORGAN_CRITERIA)


def _num(obs: Mapping[str, Any], key: str) -> float | None:
    v = obs.get(key)
    if v is None:
        return None
    if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
        raise invalid(key, v, "a number >= 0")
    return float(v)


def _flag(obs: Mapping[str, Any], key: str) -> bool | None:
    v = obs.get(key)
    if v is not None and not isinstance(v, bool):
        raise invalid(key, v, "true or false")
    return v


def _above(value: float | None, fold: float, ref: float | None) -> bool | None:
    if value is None or ref is None:
        return None
    return value > fold * ref


def _transaminase(obs: Mapping[str, Any], name: str) -> bool | None:
    value, base = _num(obs, f"{name}_x_uln"), _num(obs, f"{name}_baseline_x_uln")
    if value is None:
        return None
    ref = base if base is not None and base > 1.0 else 1.0
    return value > TRANSAMINASE_FOLD * ref


def _any(values: list[bool | None]) -> bool | None:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def identify_iec_hs(observation: Mapping[str, Any]) -> IECHSAssessment:
    """Apply the identification criteria (module docstring) to one assessment.

    >>> identify_iec_hs({"ferritin_ng_ml": 12000, "ferritin_uln_ng_ml": 400,
    ...                  "timing": "after_crs_resolution", "fibrinogen_mg_dl": 120,
    ...                  "other_explanation": False}).present
    True
    """
    if not isinstance(observation, Mapping):
        raise invalid("observation", observation, "a mapping of the IEC-HS vocabulary")
    for key in observation:
        if key not in IECHS_KEYS:
            raise invalid("observation key", key, f"one of {sorted(IECHS_KEYS)}")
    ferritin = _num(observation, "ferritin_ng_ml")
    ferritin_met = _any([_above(ferritin, FERRITIN_FOLD, _num(observation, "ferritin_uln_ng_ml")),
                         _above(ferritin, FERRITIN_FOLD,
                                _num(observation, "ferritin_at_infusion_ng_ml")),
                         _flag(observation, "ferritin_rapid_rise")])
    timing = observation.get("timing")
    if timing is not None and timing not in TIMINGS:
        raise invalid("timing", timing, f"one of {list(TIMINGS)}")
    timing_met = None if timing is None else timing in COMPATIBLE_TIMING
    fib = _num(observation, "fibrinogen_mg_dl")
    lln = _num(observation, "fibrinogen_lln_mg_dl")
    fib_met = None if fib is None else (fib < FIBRINOGEN_MG_DL or (lln is not None and fib < lln))
    organ = {"hemophagocytosis": _flag(observation, "hemophagocytosis"),
             "transaminases": _any([_transaminase(observation, "ast"),
                                    _transaminase(observation, "alt")]),
             "hypofibrinogenemia": fib_met,
             "cytopenia": _flag(observation, "cytopenia")}
    other = _flag(observation, "other_explanation")
    met: dict[str, bool | None] = {"ferritin": ferritin_met, "timing": timing_met, **organ,
                                   "not_otherwise_explained": None if other is None else not other}
    reasons = []
    if ferritin_met is not True:
        reasons.append("ferritin criterion not met" if ferritin_met is False
                       else "ferritin criterion not assessable")
    if timing_met is not True:
        reasons.append("onset not after/with resolving CRS" if timing_met is False
                       else "timing relative to CRS unknown")
    if _any(list(organ.values())) is not True:
        reasons.append("no haemophagocytosis, transaminitis, hypofibrinogenaemia or cytopenia")
    if other is not False:
        reasons.append("another explanation present" if other else
                       "other explanations not excluded")
    return IECHSAssessment(not reasons, met, tuple(reasons))


def grade_iec_hs(severity: str) -> int:
    """IEC-HS grade 1-5 from the severity category (Hines 2023, Table 3).

    >>> grade_iec_hs("severe")
    3
    """
    if severity not in SEVERITY_GRADES:
        raise invalid("IEC-HS severity", severity, f"one of {list(SEVERITY_GRADES)}")
    return SEVERITY_GRADES[severity]


def _daily(course: Iterable[tuple[float, float]], what: str, hi: float) -> list[tuple[float, float]]:
    out = []
    for row in course:
        try:
            day, value = row
        except (TypeError, ValueError):
            raise invalid(what, row, "a (study day, grade) pair") from None
        for v in (day, value):
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v):
                raise invalid(what, row, "a (study day, grade) pair of numbers")
        if not 0 <= value <= hi:
            raise invalid(f"{what} grade", value, f"a grade 0-{hi:g}")
        out.append((float(day), float(value)))
    return sorted(out)


def crs_timing(day: float, crs_course: Iterable[tuple[float, float]]) -> str:
    """Timing (:data:`TIMINGS`) of an assessment on study ``day`` relative to the CRS course,
    given as daily (study day, ASTCT 2019 CRS grade) observations. The project's reading of
    the consensus timing (Hines 2023): ``no_crs`` without any grade >= 1; ``before_crs``
    before the first grade >= 1; ``after_crs_resolution`` after the last grade >= 1;
    in between, ``crs_resolving`` when the grade of the latest observation on or before the
    day is below the worst grade so far, else ``during_worsening_crs``.
    (``worsening_after_improvement`` needs inflammatory markers beyond the CRS grade and is
    not derived.)

    >>> course = [(0, 0), (1, 1), (2, 2), (3, 1), (4, 0), (5, 0)]
    >>> [crs_timing(d, course) for d in (0, 2, 3, 10)]
    ['before_crs', 'during_worsening_crs', 'crs_resolving', 'after_crs_resolution']
    """
    if not isinstance(day, numbers.Real) or isinstance(day, bool) or not math.isfinite(day):
        raise invalid("day", day, "a study day")
    course = _daily(crs_course, "CRS observation", 5)
    on = [d for d, g in course if g >= 1]
    if not on:
        return "no_crs"
    if day < on[0]:
        return "before_crs"
    if day > on[-1]:
        return "after_crs_resolution"
    upto = [g for d, g in course if d <= day]
    return "crs_resolving" if upto[-1] < max(upto) else "during_worsening_crs"


def new_or_worsening_cytopenia(day: float, grades: Iterable[tuple[float, float]]) -> bool:
    """:data:`CYTOPENIA_MIN_GRADE` reading of the cytopenia criterion on study ``day``:
    ``grades`` are (post-infusion study day, worst CTCAE v5.0 grade of the neutrophil and
    platelet counts of that day). True when the grade on ``day`` is >= 3, above the previous
    assessment's, and an earlier grade >= 3 had recovered to <= 2 on
    :data:`CYTOPENIA_RECOVERY_ASSESSMENTS` consecutive assessments before ``day`` (a second
    dip).

    >>> new_or_worsening_cytopenia(28, [(3, 4), (14, 2), (21, 2), (28, 3)])
    True
    >>> new_or_worsening_cytopenia(7, [(0, 1), (3, 3), (7, 4)])
    False
    """
    course = _daily(grades, "cytopenia grade", 5)
    today = [g for d, g in course if d == day]
    before = [g for d, g in course if d < day]
    if not today or not before:
        return False
    worst = max(today)
    if worst < CYTOPENIA_MIN_GRADE or worst <= before[-1]:
        return False
    nadir = next((i for i, g in enumerate(before) if g >= CYTOPENIA_MIN_GRADE), None)
    if nadir is None:
        return False
    after, n = before[nadir + 1:], CYTOPENIA_RECOVERY_ASSESSMENTS
    return any(all(g < CYTOPENIA_MIN_GRADE for g in after[i:i + n])
               for i in range(len(after) - n + 1))
