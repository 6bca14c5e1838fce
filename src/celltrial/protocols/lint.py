"""Protocol lint: errors that make a protocol unusable, warnings for suspicious content.

Both kinds of check are declared as data (``ERROR_CHECKS``, ``WARNING_CHECKS``): a code, a
title and a function yielding ``(field path, message)``. A protocol with any error is
refused by :func:`celltrial.protocols.load` and ``celltrial protocol lint`` exits 1;
warnings are printed and the exit code stays 0.

W240-W245 read the protocol as a medical reviewer would: an "or" that lets an unsafe value
through a safety criterion (:data:`SAFETY_PROBES`), probable misspellings of clinical terms
(:data:`CONFUSIONS`, :data:`CLINICAL_TERMS`), an outcome worded as a duration but measured as
a rate or cumulative incidence (:data:`METHOD_KIND`), contradictory phase, a DLT outcome
whose time frame exceeds the DLT window, a grading scale other than the registration's, and
(W246) a flow "peak concentration" that may be reported in % of CD3+ where CAR+ cells/uL is
measured.
A protocol answers a warning with a ``lint_readings`` entry (code, field path, reading): the
warning is still printed, followed by "marked: <reading>"; an entry that marks no finding is
warning W249.
"""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Literal

from celltrial.errors import ProtocolError
from celltrial.protocols import criteria
from celltrial.protocols.derivations import DERIVATIONS
from celltrial.protocols.library import library_dir, resolve, validate
from celltrial.protocols.schema import Criterion, Protocol, Variable

__all__ = ["CLINICAL_TERMS", "CONFUSIONS", "ERROR_CHECKS", "METHOD_KIND", "SAFETY_PROBES",
           "WARNING_CHECKS", "Check", "LintMessage", "SafetyProbe", "lint"]

Found = Iterator[tuple[str, str]]


@dataclass(frozen=True)
class LintMessage:
    """One finding: ``level`` error|warning, a stable ``code``, where (file: field path) and what."""

    level: Literal["error", "warning"]
    code: str
    where: str
    message: str

    def format(self) -> str:
        return f"{self.level} {self.code} {self.where}: {self.message}"


@dataclass(frozen=True)
class Check:
    code: str
    title: str
    run: Callable[[Protocol], Iterable[tuple[str, str]]]


# --- vocabulary tables -------------------------------------------------------------------

#: literal in another unit than the variable's: (unit the literal is probably in, factor)
UNIT_HINTS: dict[str, tuple[str, float]] = {
    "lvef": ("%", 100.0),
    "bilirubin_mg_dl": ("umol/L", 17.1),
}

#: upper limit of normal of organ-function variables (in the variable's unit); an
#: inclusion rule demanding a value above it admits only abnormal organ function
ORGAN_UPPER_NORMAL: dict[str, float] = {"ast_x_uln": 1.0, "alt_x_uln": 1.0, "bilirubin_mg_dl": 1.2}

#: registration wording of an inclusion criterion that asks for abnormal organ function
ABNORMAL_ORGAN_WORDING: tuple[str, ...] = (
    r"(>|≥|greater than|more than|exceed\w*)\s*\d+(\.\d+)?\s*(x|×|times)\s*(the\s+)?"
    r"(upper limit of normal|ULN)",
    r"bilirubin\s*(>|≥|greater than|more than)\s*\d",
    r"creatinine\s*(>|≥|greater than|more than)\s*\d",
)

#: condition wording -> diagnosis categories it names
CONDITION_DIAGNOSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"\bT[\s-]?cell\b|\bT[\s-]?ALL\b|T[\s-]lymphoblastic leuk", ("T-ALL",)),
    (r"\bmyeloid\b|\bAML\b", ("AML",)),
    (r"mixed[\s-](phenotype|lineage)|\bMPAL\b", ("MPAL",)),
    (r"\bB[\s-]?ALL\b|B[\s-]lymphoblastic", ("B-ALL",)),
)

CD_MARKER = re.compile(r"\bCD[\s-]?(\d+)", re.IGNORECASE)
MOJIBAKE = re.compile(r"Ã.|Â.|ï¼|â€|\ufffd|Featured snippet|Search Results")
TIME_IN_TEXT = re.compile(r"(\d+(?:\.\d+)?)\s*(day|week|month|year)s?", re.IGNORECASE)
DAYS_PER = {"day": 1.0, "week": 7.0, "month": 30.4375, "year": 365.25}


def _unit_key(unit: str | None) -> str:
    text = (unit or "").lower().replace("×", "x").replace(" ", "")
    return {"percent": "%", "pct": "%", "ratio": "fraction", "xuln": "xuln",
            "timesuln": "xuln"}.get(text, text)


def _criteria(p: Protocol) -> Iterator[tuple[str, Criterion]]:
    for i, c in enumerate(p.eligibility.inclusion):
        yield f"eligibility.inclusion[{i}] ({c.id})", c
    for i, c in enumerate(p.eligibility.exclusion):
        yield f"eligibility.exclusion[{i}] ({c.id})", c


# --- error checks ------------------------------------------------------------------------

def _duplicate_ids(p: Protocol) -> Found:
    groups = {
        "eligibility": [c.id for _, c in _criteria(p)],
        "intervention.dose_levels": [d.id for d in p.intervention.dose_levels],
        "endpoints": [e.id for e in p.endpoints],
        "dlt.rules": [r.id for r in p.dlt.rules] + [x.id for x in p.dlt.exceptions],
    }
    for where, ids in groups.items():
        for ident, n in Counter(ids).items():
            if n > 1:
                yield where, f"id `{ident}` is used {n} times; ids must be unique"


def _unknown_variables(p: Protocol) -> Found:
    for where, c in _criteria(p):
        for name in sorted(criteria.variables_of(c.rule) - set(p.variables)):
            yield f"{where}.rule", (f"unknown variable `{name}` in `{c.rule}`; known: "
                                    + ", ".join(sorted(p.variables)))


def _literal_type(var: Variable, cmp: criteria.Comparison) -> str | None:
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    if var.type == "number":
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
            return f"`{var.name}` is a number, compared with {cmp.value!r}"
    elif var.type == "bool":
        if any(not isinstance(v, bool) for v in values) or cmp.op in {"<", "<=", ">", ">="}:
            return f"`{var.name}` is True/False, compared with `{cmp.op} {cmp.value!r}`"
    else:
        if cmp.op in {"<", "<=", ">", ">="}:
            return f"`{var.name}` is a category and cannot be ordered with `{cmp.op}`"
        unknown = [v for v in values if v not in (var.categories or [])]
        if unknown:
            return (f"`{var.name}` has no category {unknown!r}; categories: "
                    f"{var.categories}")
    return None


def _types(p: Protocol) -> Found:
    for where, c in _criteria(p):
        for cmp in criteria.comparisons(c.rule):
            var = p.variables.get(cmp.variable)
            problem = var and _literal_type(var, cmp)
            if problem:
                yield f"{where}.rule", f"{problem} in `{c.rule}`"


def _outside(var: Variable, value: float) -> bool:
    return (var.min is not None and value < var.min) or (var.max is not None and value > var.max)


def _physical_range(p: Protocol) -> Found:
    for where, c in _criteria(p):
        for cmp in criteria.comparisons(c.rule):
            var = p.variables.get(cmp.variable)
            if var is None or var.type != "number" or isinstance(cmp.value, tuple | str | bool):
                continue
            value = float(cmp.value)  # type: ignore[arg-type]
            if not _outside(var, value):
                continue
            hint = UNIT_HINTS.get(var.name)
            if hint and not _outside(var, value / hint[1]):
                continue  # reported as a unit mismatch
            yield f"{where}.rule", (f"bound {cmp.value} for `{var.name}` is outside its possible "
                                    f"range [{var.min}, {var.max}] {var.unit or ''}".rstrip()
                                    + f" in `{c.rule}`")


def _conjunct_comparisons(rule: str) -> list[criteria.Comparison]:
    """Comparisons that must all hold for the rule to hold (top-level ``and`` chain)."""
    node = criteria.parse(rule)
    parts = node.values if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And) else [node]
    out: list[criteria.Comparison] = []
    for part in parts:
        if isinstance(part, ast.Compare):
            out.extend(criteria.comparisons(ast.unparse(part)))
    return out


def _empty_interval(p: Protocol) -> Found:
    for where, c in _criteria(p):
        bounds: dict[str, list[tuple[float, bool, float, bool]]] = {}
        reported: set[str] = set()
        for cmp in _conjunct_comparisons(c.rule):
            var = p.variables.get(cmp.variable)
            if var is None or var.type != "number" or cmp.op not in {"<", "<=", ">", ">=", "=="}:
                continue
            if isinstance(cmp.value, bool) or not isinstance(cmp.value, int | float):
                continue
            v = float(cmp.value)
            if _outside(var, v):
                reported.add(cmp.variable)  # by the physical-range (or unit) check
                continue
            lo, lo_s, hi, hi_s = bounds.get(cmp.variable, [(
                var.min if var.min is not None else -math.inf, False,
                var.max if var.max is not None else math.inf, False)])[-1]
            if cmp.op in {">", ">=", "=="} and (v > lo or (v == lo and cmp.op == ">")):
                lo, lo_s = v, cmp.op == ">"
            if cmp.op in {"<", "<=", "=="} and (v < hi or (v == hi and cmp.op == "<")):
                hi, hi_s = v, cmp.op == "<"
            bounds.setdefault(cmp.variable, []).append((lo, lo_s, hi, hi_s))
        for name, steps in bounds.items():
            if name in reported:
                continue
            lo, lo_s, hi, hi_s = steps[-1]
            if lo > hi or (lo == hi and (lo_s or hi_s)):
                yield f"{where}.rule", (f"impossible range for `{name}`: no value satisfies "
                                        f"`{c.rule}` (lower bound {lo:g} above upper bound {hi:g})")


def _units(p: Protocol) -> Found:
    for where, c in _criteria(p):
        for name, unit in c.units.items():
            var = p.variables.get(name)
            if var is not None and _unit_key(unit) != _unit_key(var.unit):
                yield f"{where}.units.{name}", (f"unit mismatch: the rule's literal is in `{unit}` "
                                                f"but `{name}` is in `{var.unit}`")
        for cmp in criteria.comparisons(c.rule):
            var = p.variables.get(cmp.variable)
            hint = UNIT_HINTS.get(cmp.variable)
            if var is None or hint is None or isinstance(cmp.value, bool | str | tuple):
                continue
            value = float(cmp.value)  # type: ignore[arg-type]
            if _outside(var, value) and not _outside(var, value / hint[1]):
                yield f"{where}.rule", (f"unit mismatch: {cmp.value} for `{var.name}` "
                                        f"reads as {hint[0]}, but `{var.name}` is in `{var.unit}` "
                                        f"(write {value / hint[1]:g})")


def _split(p: Protocol) -> Found:
    split = p.intervention.split
    total = sum(f.fraction for f in split)
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        yield "intervention.split", (f"fractions sum to {total:g}, must sum to 1 "
                                     f"({[f.fraction for f in split]})")
    days = [f.day for f in split]
    if days != sorted(set(days)):
        yield "intervention.split", f"infusion days {days} must be strictly increasing"


def _bags(p: Protocol) -> Found:
    b = p.intervention.bags
    if b.min_bags > b.max_bags:
        yield "intervention.bags", f"min_bags {b.min_bags} > max_bags {b.max_bags}"
    if b.min_volume_ml > b.max_volume_ml:
        yield "intervention.bags", (f"min_volume_ml {b.min_volume_ml:g} > max_volume_ml "
                                    f"{b.max_volume_ml:g}")


def _schedule(p: Protocol) -> Found:
    for field in ("kinetics_days", "cytokine_days", "cd7_days", "marrow_days", "ada_days",
                  "followup_days"):
        days = getattr(p.schedule, field)
        if days != sorted(set(days)):
            yield f"schedule.{field}", f"days {days} must be strictly increasing"


def _dlt(p: Protocol) -> Found:
    for i, x in enumerate(p.dlt.exceptions):
        if x.grade is not None and x.resolves_to_grade_at_most is not None \
                and x.resolves_to_grade_at_most >= x.grade:
            yield f"dlt.exceptions[{i}]", (f"resolves_to_grade_at_most {x.resolves_to_grade_at_most}"
                                           f" must be below grade {x.grade}")


def _derivations(p: Protocol) -> Found:
    for i, e in enumerate(p.endpoints):
        if not e.derivation:
            yield f"endpoints[{i}].derivation", f"endpoint `{e.id}` ({e.name}) has no derivation"
        elif e.derivation not in DERIVATIONS:
            yield f"endpoints[{i}].derivation", (f"endpoint `{e.id}`: unknown derivation "
                                                 f"`{e.derivation}`; known: "
                                                 + ", ".join(DERIVATIONS))


ERROR_CHECKS: tuple[Check, ...] = (
    Check("P101", "duplicate ids", _duplicate_ids),
    Check("P110", "unknown variable in a rule", _unknown_variables),
    Check("P111", "literal of the wrong type or category", _types),
    Check("P120", "impossible range", _empty_interval),
    Check("P121", "bound outside the variable's physical range", _physical_range),
    Check("P122", "split fractions", _split),
    Check("P123", "bag limits", _bags),
    Check("P124", "DLT exception grades", _dlt),
    Check("P125", "schedule days", _schedule),
    Check("P130", "endpoint derivation", _derivations),
    Check("P140", "unit mismatch", _units),
)


# --- warning checks ----------------------------------------------------------------------

def _abnormal_organ_inclusion(p: Protocol) -> Found:
    for i, c in enumerate(p.eligibility.inclusion):
        where = f"eligibility.inclusion[{i}] ({c.id})"
        for pattern in ABNORMAL_ORGAN_WORDING:
            match = re.search(pattern, c.text, re.IGNORECASE)
            if match:
                yield f"{where}.text", (
                    f"inclusion wording \"{match.group(0)}\" admits only patients with abnormal "
                    f"organ function (almost certainly meant <=): \"{c.text}\"; the rule reads "
                    f"`{c.rule}`" + (f" ({c.reading})" if c.reading else ""))
                break
        for cmp in _conjunct_comparisons(c.rule):
            limit = ORGAN_UPPER_NORMAL.get(cmp.variable)
            if limit is not None and cmp.op in {">", ">="} and not cmp.negated \
                    and isinstance(cmp.value, int | float) and cmp.value >= limit:
                yield f"{where}.rule", (f"inclusion rule `{c.rule}` admits only abnormal "
                                        f"`{cmp.variable}` ({cmp.op} {cmp.value})")


def _antigen(p: Protocol) -> Found:
    fields = [("title", p.title), ("arm_label", p.arm_label or ""),
              ("intervention.product", p.intervention.product)]
    fields += [(f"conditions[{i}]", c) for i, c in enumerate(p.conditions)]
    target = p.target_antigen.upper().replace(" ", "")
    for where, text in fields:
        for match in CD_MARKER.finditer(text):
            if f"CD{match.group(1)}" != target:
                yield where, (f"names CD{match.group(1)} in a {p.target_antigen} study: "
                              f"\"{text}\" (target_antigen: {p.target_antigen})")


def _excluded_condition(p: Protocol) -> Found:
    diag_rules = [(c, True) for c in p.eligibility.inclusion] + \
                 [(c, False) for c in p.eligibility.exclusion]
    for i, condition in enumerate(p.conditions):
        for pattern, diagnoses in CONDITION_DIAGNOSES:
            if not re.search(pattern, condition, re.IGNORECASE):
                continue
            for diagnosis in diagnoses:
                excluding = [c.id for c, inclusion in diag_rules
                             if "diagnosis" in criteria.variables_of(c.rule)
                             and criteria.evaluate(c.rule, {"diagnosis": diagnosis}) is (not inclusion)]
                if excluding:
                    yield f"conditions[{i}]", (f"condition \"{condition}\" names {diagnosis}, which "
                                               f"eligibility excludes (criteria {', '.join(excluding)})")


def _assumed_doses(p: Protocol) -> Found:
    assumed = [d for d in p.intervention.dose_levels if d.assumed]
    if assumed:
        yield "intervention.dose_levels", (
            f"{len(assumed)} of {len(p.intervention.dose_levels)} dose levels are assumed, not "
            "registered: " + ", ".join(f"{d.id} {d.cells_per_kg:.2g}/kg" for d in assumed))


def _dose_order(p: Protocol) -> Found:
    doses = [d.cells_per_kg for d in p.intervention.dose_levels]
    if doses != sorted(set(doses)):
        yield "intervention.dose_levels", f"dose levels {doses} are not strictly increasing"


def _beyond_followup(p: Protocol) -> Found:
    last = max(p.schedule.followup_days, default=0)
    for i, e in enumerate(p.endpoints):
        if e.time_frame_days > last:
            yield f"endpoints[{i}].time_frame_days", (
                f"endpoint `{e.id}` time frame {e.time_frame_days} d is beyond the last "
                f"follow-up visit (day {last})")


def _unsampled(p: Protocol) -> Found:
    for i, e in enumerate(p.endpoints):
        d = DERIVATIONS.get(e.derivation or "")
        if d is not None and d.schedule and not getattr(p.schedule, d.schedule):
            yield f"endpoints[{i}]", (f"endpoint `{e.id}` ({d.key}) needs schedule.{d.schedule}, "
                                      "which is empty")


def _unknown_params(p: Protocol) -> Found:
    for i, e in enumerate(p.endpoints):
        d = DERIVATIONS.get(e.derivation or "")
        if d is not None:
            for key in sorted(set(e.params) - set(d.params)):
                yield f"endpoints[{i}].params.{key}", (f"`{d.key}` takes no parameter `{key}` "
                                                       f"(takes: {', '.join(d.params) or 'none'})")


def _time_frame_text(p: Protocol) -> Found:
    for i, e in enumerate(p.endpoints):
        stated = [float(n) * DAYS_PER[u.lower()] for n, u in TIME_IN_TEXT.findall(e.time_frame)]
        if stated and abs(max(stated) - e.time_frame_days) > 0.1 * max(stated):
            yield f"endpoints[{i}].time_frame_days", (
                f"{e.time_frame_days} d does not match the registered time frame "
                f"\"{e.time_frame}\" (~{max(stated):.0f} d)")


def _garbled(p: Protocol) -> Found:
    texts = [("title", p.title)] + [(f"endpoints[{i}].name", e.name)
                                    for i, e in enumerate(p.endpoints)]
    texts += [(f"{w}.text", c.text) for w, c in _criteria(p)]
    for where, text in texts:
        if MOJIBAKE.search(text):
            yield where, f"text looks garbled (encoding or web-scrape artefact): \"{text}\""


def _small_cohorts(p: Protocol) -> Found:
    levels = len(p.intervention.dose_levels)
    if p.target_enrollment < 3 * levels:
        yield "target_enrollment", (f"{p.target_enrollment} patients cannot give 3 per each of "
                                    f"{levels} dose levels")


# --- medical-reviewer checks (W240-W249) -------------------------------------------------

@dataclass(frozen=True)
class SafetyProbe:
    """An unsafe value of a safety variable that an inclusion rule must not admit."""

    variable: str
    unsafe: float
    direction: Literal["low", "high"]  # low: values <= unsafe are unsafe; high: >= unsafe
    why: str


SAFETY_PROBES: dict[str, SafetyProbe] = {p.variable: p for p in (
    SafetyProbe("lvef", 0.35, "low", "reduced ejection fraction (heart failure with reduced EF "
                "is LVEF <= 0.40; McDonagh et al., ESC heart failure guidelines, Eur Heart J "
                "2021;42:3599)"),
    SafetyProbe("nyha_class", 3, "high", "NYHA III, marked limitation of physical activity"),
    SafetyProbe("ecog", 3, "high", "ECOG 3, capable of only limited self-care"),
    SafetyProbe("ast_x_uln", 5.1, "high", "CTCAE v5.0 grade 3 AST increase (> 5 x ULN)"),
    SafetyProbe("alt_x_uln", 5.1, "high", "CTCAE v5.0 grade 3 ALT increase (> 5 x ULN)"),
    SafetyProbe("bilirubin_mg_dl", 3.7, "high",
                "CTCAE v5.0 grade 3 bilirubin increase (> 3 x ULN of 1.2 mg/dL)"),
)}
"""Values an inclusion criterion about organ function must refuse (W240)."""

SAFETY_WORDING: dict[str, str] = {
    "lvef": r"ejection fraction|\bLVEF\b",
    "nyha_class": r"\bNYHA\b|New York Heart",
    "ecog": r"\bECOG\b|performance status",
    "ast_x_uln": r"\bAST\b|aspartate aminotransferase",
    "alt_x_uln": r"\bALT\b|alanine aminotransferase|glutamic[- ]pyruvic",
    "bilirubin_mg_dl": r"bilirubin",
}
"""Registration wording naming each safety variable (W240 reads the criterion text)."""

CONFUSIONS: tuple[tuple[str, str, str], ...] = (
    (r"\batrial\s+(or|and|/)\s*venous\b", "atrial", "arterial"),
    (r"\bvenous\s+(or|and|/)\s*atrial\b", "atrial", "arterial"),
)
"""(pattern, word written, word probably meant): real words misused in context (W241)."""

CLINICAL_TERMS: frozenset[str] = frozenset("""
acute adverse alanine aminotransferase anemia anaemia antibody antigen arrhythmia arrhythmias
arterial aspartate atrial bilirubin cardiac cardiovascular cellular chimeric clearance
comorbidity comorbidities congenital creatinine cytokine cytopenia cytopenic dysfunction
echocardiography ejection embolism engraftment expansion extramedullary failure fibrinogen
glutamic hematologic haematologic hepatitis immunodeficiency infarction infection infusion
injection insufficiency lactating leukemia leukaemia leukemic lymphoblastic lymphocyte
lymphoma marrow mixed myeloid myocardial neurotoxicity neutropenia neutropenic neutrophil
oxaloacetic persistence phenotype platelet pregnant progression proliferation pyruvic receptor
refractory relapse relapsed relapses remission response syndrome thrombosis thrombocytopenia
toxicity transaminase transplantation ventricular
""".split())
"""Clinical words of the registrations' vocabulary; a word one edit away from one of them,
and neither word a prefix of the other, is a probable misspelling (W241)."""

METHOD_KIND: dict[str, str] = {
    **{k: "duration" for k in ("os", "pfs", "efs", "dor", "ck_persistence_qpcr",
                               "ck_persistence_flow")},
    "cir": "cumulative incidence",
    **{k: "proportion" for k in ("ae_incidence", "crs_icans_incidence", "dlt_rate",
                                 "remission_rate", "orr", "mrd_negative_rate",
                                 "molecular_remission_rate", "em_response_rate",
                                 "ada_positive_rate")},
}
"""What each derivation measures, for the wording check (W242)."""

DURATION_WORDING = (r"\bduration\b|\btime (from|to|between)\b|"
                    r"\bfrom the (date|time|day) of\b.*\buntil\b")
"""Outcome wording that defines a duration (W242)."""

PHASE_TEXT = re.compile(r"\bphase\s*(IV|I{1,3}|[1-4])(?:\s*/\s*(IV|I{1,3}|[1-4]))?\b(?!\s*dose)",
                        re.IGNORECASE)
ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4"}

DLT_WORDING = re.compile(r"\bDLTs?\b|dose[- ]limiting", re.IGNORECASE)

SCALE_TEXT = re.compile(r"\bCTCAE\s*(?:v(?:ersion)?\.?\s*)?(\d+(?:\.\d+)*)?", re.IGNORECASE)
PROJECT_CTCAE = "5.0"
"""CTCAE version the project grades by (celltrial.clinical.ctcae)."""
ASTCT_DERIVATIONS = frozenset({"ae_incidence", "crs_icans_incidence"})
"""Derivations that grade CRS and ICANS by ASTCT 2019 (celltrial.clinical.crs_icans)."""


def _edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (insertions, deletions, substitutions, transpositions)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def _one_edit_apart(a: str, b: str) -> bool:
    """``_edit_distance(a, b) == 1`` in linear time: one substitution, one insertion or
    deletion, or one transposition of adjacent letters."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k, (x, y) in enumerate(zip(short, long)) if x != y), len(short))
    return short[i:] == long[i + 1:]


def _registered_texts(p: Protocol) -> Iterator[tuple[str, str]]:
    """Texts in the registration's words (assumed criteria and endpoints excluded)."""
    yield "title", p.title
    yield "design", p.design
    for i, c in enumerate(p.conditions):
        yield f"conditions[{i}]", c
    for where, c in _criteria(p):
        if not c.assumed:
            yield f"{where}.text", c.text
    for i, e in enumerate(p.endpoints):
        yield f"endpoints[{i}].name", e.name
        if e.description:
            yield f"endpoints[{i}].description", e.description
    if p.response_definitions:
        yield "response_definitions", p.response_definitions


def _candidates(var: Variable | None, rule: str, name: str) -> list[object]:
    if var is None:
        return []
    if var.type == "bool":
        return [True, False]
    if var.type == "category":
        return list(var.categories or [])
    values: set[float] = set()
    for cmp in criteria.comparisons(rule):
        if cmp.variable == name and isinstance(cmp.value, int | float) \
                and not isinstance(cmp.value, bool):
            v = float(cmp.value)
            values |= {v, v - 0.01, v + 0.01, v - 1, v + 1}
    for bound in (var.min, var.max):
        if bound is not None:
            values.add(float(bound))
    return sorted(v for v in values if not _outside(var, v))


def _safe_value(name: str, value: object) -> bool:
    probe = SAFETY_PROBES.get(name)
    if probe is None or not isinstance(value, int | float) or isinstance(value, bool):
        return True
    return value > probe.unsafe if probe.direction == "low" else value < probe.unsafe


def _closeness(name: str, value: object) -> float:
    """Order safe values of a safety variable from the one nearest its unsafe side."""
    probe = SAFETY_PROBES.get(name)
    if probe is None or not isinstance(value, int | float) or isinstance(value, bool):
        return 0.0
    return abs(float(value) - probe.unsafe)


def _admits_unsafe(p: Protocol, rule: str) -> tuple[SafetyProbe, dict[str, object]] | None:
    """An assignment with one safety variable at its unsafe value, every other safety
    variable safe, that the rule accepts (None if there is none)."""
    names = sorted(criteria.variables_of(rule))
    for name in names:
        probe = SAFETY_PROBES.get(name)
        if probe is None:
            continue
        others = [n for n in names if n != name]
        grids = [sorted((v for v in _candidates(p.variables.get(n), rule, n)
                         if _safe_value(n, v)), key=lambda v, n=n: _closeness(n, v))
                 for n in others]
        if any(not g for g in grids):
            continue
        for combo in product(*grids):
            values: dict[str, object] = {name: probe.unsafe, **dict(zip(others, combo))}
            if criteria.evaluate(rule, values) is True:
                return probe, values
    return None


def _unsafe_or(p: Protocol) -> Found:
    for i, c in enumerate(p.eligibility.inclusion):
        where = f"eligibility.inclusion[{i}] ({c.id})"
        has_or = any(isinstance(n, ast.BoolOp) and isinstance(n.op, ast.Or)
                     for n in ast.walk(criteria.parse(c.rule)))
        found = _admits_unsafe(p, c.rule) if has_or else None
        if found:
            probe, values = found
            rest = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                             for k, v in values.items() if k != probe.variable)
            yield f"{where}.rule", (
                f"the \"or\" in safety criterion `{c.rule}` admits {probe.variable} "
                f"{probe.unsafe:g} ({probe.why})" + (f" with {rest}" if rest else ""))
            continue
        named = [v for v, pattern in SAFETY_WORDING.items()
                 if re.search(pattern, c.text, re.IGNORECASE)]
        if len(named) >= 2 and re.search(r"\bor\b", c.text, re.IGNORECASE):
            yield f"{where}.text", (
                f"the registered wording joins safety criteria ({', '.join(named)}) with "
                f"\"or\": taken literally it admits an unsafe value of one when the other is "
                f"met (\"{c.text}\"); the rule reads `{c.rule}`"
                + (f" ({c.reading})" if c.reading else ""))


def _misspellings(p: Protocol) -> Found:
    for where, text in _registered_texts(p):
        reported: set[str] = set()
        for pattern, written, meant in CONFUSIONS:
            match = re.search(pattern, text, re.IGNORECASE)
            if match and written not in reported:
                reported.add(written)
                yield where, (f"\"{written}\" is probably \"{meant}\" in \"{match.group(0)}\" "
                              f"(\"{text}\")")
        for word in re.findall(r"[A-Za-z]+", text):
            w = word.lower()
            if len(w) < 7 or w in CLINICAL_TERMS or w in reported:
                continue
            near = sorted(t for t in CLINICAL_TERMS if abs(len(t) - len(w)) <= 1
                          and not t.startswith(w) and not w.startswith(t)
                          and _one_edit_apart(w, t))
            if near:
                reported.add(w)
                yield where, (f"\"{word}\" is probably a misspelling of \"{near[0]}\" "
                              f"(\"{text}\")")


def _wording_vs_method(p: Protocol) -> Found:
    for i, e in enumerate(p.endpoints):
        kind = METHOD_KIND.get(e.derivation or "")
        if kind not in {"cumulative incidence", "proportion"}:
            continue
        for field, text in (("name", e.name), ("description", e.description)):
            match = re.search(DURATION_WORDING, text or "", re.IGNORECASE)
            if match:
                yield f"endpoints[{i}].{field}", (
                    f"endpoint `{e.id}` is worded as a duration (\"{match.group(0)}\" in "
                    f"\"{text}\") but its method `{e.derivation}` is a {kind}")
                break


def _phases(text: str) -> list[str]:
    out = []
    for a, b in PHASE_TEXT.findall(text):
        parts = [ROMAN.get(x.lower(), x) for x in (a, b) if x]
        out.append("/".join(parts))
    return out


def _contradictory_phase(p: Protocol) -> Found:
    stated: dict[str, list[str]] = {}
    field_phases = _phases(f"phase {p.phase}") if re.search(r"\d|\bI", p.phase) else []
    for ph in field_phases:
        stated.setdefault(ph, []).append("phase")
    for where, text in (("title", p.title), ("design", p.design)):
        for ph in _phases(text):
            stated.setdefault(ph, []).append(where)
    if len(stated) > 1:
        yield "phase", ("contradictory phase in one record: " + "; ".join(
            f"phase {ph} ({', '.join(dict.fromkeys(where))})" for ph, where in stated.items()))


def _dlt_time_frame(p: Protocol) -> Found:
    window = p.dlt.window_days
    for i, e in enumerate(p.endpoints):
        if (e.derivation == "dlt_rate" or DLT_WORDING.search(e.name)) \
                and e.time_frame_days > window:
            yield f"endpoints[{i}].time_frame", (
                f"DLT outcome `{e.id}` has time frame \"{e.time_frame}\" ({e.time_frame_days} d), "
                f"longer than the DLT window of {window} d (dlt.window_days)")


def _grading_scale(p: Protocol) -> Found:
    astct = any(r.scale == "astct" for r in p.dlt.rules) or \
        any(e.derivation in ASTCT_DERIVATIONS for e in p.endpoints)
    for where, text in _registered_texts(p):
        for match in SCALE_TEXT.finditer(text):
            version = match.group(1)
            problems = []
            if version and version not in {PROJECT_CTCAE, PROJECT_CTCAE.split(".")[0]}:
                problems.append(f"the project grades by CTCAE v{PROJECT_CTCAE}")
            if astct:
                problems.append("the project grades CRS and ICANS by ASTCT 2019 (Lee et al., "
                                "BBMT 2019), not CTCAE")
            if problems:
                yield where, (f"the registration names \"{match.group(0).strip()}\" (\"{text}\"); "
                              + "; ".join(problems))
            break


FLOW_CONCENTRATION_DERIVATIONS = frozenset({"ck_cmax_flow", "ck_auc_0_28d_flow"})
"""Flow derivations whose value is a level over time: a peak or an area (W246)."""
FLOW_ABSOLUTE_ANALYTE = "CARTABS"
"""CAR+ cells/uL, the flow count the store measures next to % of CD3+ (PC CARTABS)."""
CONCENTRATION_WORDING = re.compile(r"\bpeak\b|\bconcentrations?\b|\bC\s?max\b|\blevels?\b",
                                   re.IGNORECASE)
"""Registered wording of a concentration (W246)."""


def _flow_peak_unit(p: Protocol) -> Found:
    for i, e in enumerate(p.endpoints):
        if e.derivation not in FLOW_CONCENTRATION_DERIVATIONS:
            continue
        analyte = e.params.get("analyte")
        if analyte == FLOW_ABSOLUTE_ANALYTE:
            continue
        match, text = None, ""
        for text in (e.name, e.description or ""):
            match = CONCENTRATION_WORDING.search(text)
            if match is not None:
                break
        if match is None:
            continue
        start = max(0, text.rfind(";", 0, match.start()) + 1)
        end = text.find(";", match.end())
        text = text[start:end if end >= 0 else len(text)].strip()
        how = (f"params.analyte `{analyte}`" if analyte else
               "no params.analyte: the derivation reads CAR+ cells/uL where the data have it, "
               "else % of CD3+")
        yield f"endpoints[{i}].params.analyte", (
            f"endpoint `{e.id}` is a flow \"{match.group(0)}\" (\"{text}\") that may be reported "
            f"in % CAR+ of CD3+ ({how}) although CAR+ cells/uL (PC {FLOW_ABSOLUTE_ANALYTE}) is "
            "measured: % of CD3+ is a proportion that rises when T cells fall (lymphodepletion, "
            "CD7 fratricide) without more CAR-T cells; report cells/uL with % of CD3+ as the "
            "secondary (params.analyte CARTABS, or a lint reading)")


WARNING_CHECKS: tuple[Check, ...] = (
    Check("W201", "inclusion criterion admits only abnormal organ function", _abnormal_organ_inclusion),
    Check("W202", "CD marker other than the target antigen", _antigen),
    Check("W203", "condition names a diagnosis the eligibility excludes", _excluded_condition),
    Check("W210", "assumed dose levels", _assumed_doses),
    Check("W211", "dose levels not increasing", _dose_order),
    Check("W212", "too few patients for the dose levels", _small_cohorts),
    Check("W220", "endpoint time frame beyond follow-up", _beyond_followup),
    Check("W221", "endpoint needs visits the schedule lacks", _unsampled),
    Check("W222", "unknown derivation parameter", _unknown_params),
    Check("W223", "time_frame_days differs from the registered time frame", _time_frame_text),
    Check("W230", "garbled text", _garbled),
    Check("W240", "an \"or\" lets an unsafe value through a safety criterion", _unsafe_or),
    Check("W241", "probable misspelling of a clinical term", _misspellings),
    Check("W242", "outcome worded as a duration, measured as a rate", _wording_vs_method),
    Check("W243", "contradictory phase", _contradictory_phase),
    Check("W244", "DLT outcome time frame longer than the DLT window", _dlt_time_frame),
    Check("W245", "grading scale differs from the registration's", _grading_scale),
    Check("W246", "flow peak or AUC reported in % of CD3+ where cells/uL is measured",
          _flow_peak_unit),
)


def _file_id(p: Protocol, path: Path | None) -> Found:
    if path is not None and path.resolve().parent == library_dir().resolve() and path.stem != p.id:
        yield "id", f"`{p.id}` differs from the file name `{path.stem}` of a library protocol"


def lint(protocol_or_path: Protocol | str | Path, *, path: Path | None = None) -> list[LintMessage]:
    """Check a protocol (object, id or path); errors first, then warnings, each in check order.

    >>> [m.code for m in lint("nct04762485") if m.level == "warning"][:2]
    ['W201', 'W202']
    """
    if isinstance(protocol_or_path, Protocol):
        protocol = protocol_or_path
        label = path.name if path is not None else protocol.id
    else:
        try:
            path = resolve(protocol_or_path)
        except ProtocolError as exc:
            return [LintMessage("error", "P100", str(protocol_or_path), exc.message)]
        label = path.name
        parsed, problems = validate(path)
        if parsed is None:
            return [LintMessage("error", "P100", f"{path}: {where}", msg) for where, msg in problems]
        protocol = parsed
    out: list[LintMessage] = []
    for check in (Check("P150", "file name", lambda p: _file_id(p, path)), *ERROR_CHECKS):
        out += [LintMessage("error", check.code, f"{label}: {w}", m) for w, m in check.run(protocol)]
    readings = {(r.code, r.where): r.reading for r in protocol.lint_readings}
    used: set[tuple[str, str]] = set()
    for check in WARNING_CHECKS:
        for w, m in check.run(protocol):
            reading = readings.get((check.code, w))
            if reading is not None:
                used.add((check.code, w))
                m = f"{m}; marked: {reading}"
            out.append(LintMessage("warning", check.code, f"{label}: {w}", m))
    for i, r in enumerate(protocol.lint_readings):
        if (r.code, r.where) not in used:
            out.append(LintMessage("warning", "W249", f"{label}: lint_readings[{i}]",
                                   f"reading for {r.code} at `{r.where}` marks no finding"))
    return out
