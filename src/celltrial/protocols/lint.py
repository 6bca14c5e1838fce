"""Protocol lint: errors that make a protocol unusable, warnings for suspicious content.

Both kinds of check are declared as data (``ERROR_CHECKS``, ``WARNING_CHECKS``): a code, a
title and a function yielding ``(field path, message)``. A protocol with any error is
refused by :func:`celltrial.protocols.load` and ``celltrial protocol lint`` exits 1;
warnings are printed and the exit code stays 0.
"""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from celltrial.errors import ProtocolError
from celltrial.protocols import criteria
from celltrial.protocols.derivations import DERIVATIONS
from celltrial.protocols.library import library_dir, resolve, validate
from celltrial.protocols.schema import Criterion, Protocol, Variable

__all__ = ["ERROR_CHECKS", "WARNING_CHECKS", "Check", "LintMessage", "lint"]

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
    for check in WARNING_CHECKS:
        out += [LintMessage("warning", check.code, f"{label}: {w}", m) for w, m in check.run(protocol)]
    return out
