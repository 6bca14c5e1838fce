"""Dose-limiting toxicity (DLT) from graded toxicities and the protocol's DLT definition.

All rules and exceptions are the protocol's data (``protocol.dlt``: ``window_days``,
``rules`` = :class:`~celltrial.protocols.DLTRule`, ``exceptions`` =
:class:`~celltrial.protocols.DLTException`); this module only applies them:

- Window: toxicities with onset from the first infusion (day ``first_infusion_day``) to
  ``first_infusion_day + window_days`` inclusive.
- A toxicity matches a rule when its grade >= ``min_grade`` and its term / category is in the
  rule's ``terms`` / ``categories`` (absent = any). A rule on the ``astct`` scale matches only
  CRS and ICANS; a ``ctcae`` rule without categories matches any toxicity (e.g. grade 5).
- An exception applies when term / category match (absent = any), ``grade`` equals the
  toxicity's grade (absent = any) and its condition holds:
  ``resolves_to_grade_at_most`` + ``within_hours``: the grade fell to that level within the
  hours after the toxicity reached its grade, read from ``grade_course`` ((day, grade)
  pairs; days may be fractional: hours / 24) or else from ``resolution_day`` (grade 0);
  ``counts_only_if_persists_beyond_day``: the toxicity ended (grade below its own, or
  resolved) by that study day. No condition = always excused. Without the evidence an
  exception needs, it does not excuse (the event stays a DLT, and the event says why).
- The patient has a DLT when any toxicity matches a rule and no exception excuses it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from celltrial.errors import invalid

__all__ = ["DLTEvent", "DLTResult", "Toxicity", "evaluate_dlt"]

CATEGORIES = ("hematologic", "non_hematologic", "crs", "icans")


@dataclass(frozen=True)
class Toxicity:
    """A graded toxicity (CTCAE v5.0 or ASTCT 2019 for CRS/ICANS); days are study days."""

    term: str
    category: str
    grade: int
    onset_day: float
    resolution_day: float | None = None
    grade_course: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True)
class DLTEvent:
    """A toxicity that met a DLT rule; ``excused_by`` is the exception id, or None."""

    toxicity: Toxicity
    rule_id: str
    excused_by: str | None
    reason: str


@dataclass(frozen=True)
class DLTResult:
    is_dlt: bool
    events: tuple[DLTEvent, ...] = ()
    window: tuple[float, float] = (0.0, 28.0)
    definition: str = ""
    assumed: bool = False
    outside_window: tuple[Toxicity, ...] = field(default_factory=tuple)

    @property
    def dlts(self) -> tuple[DLTEvent, ...]:
        return tuple(e for e in self.events if e.excused_by is None)


_KEYS = {"term", "category", "grade", "onset_day", "resolution_day", "grade_course"}


def _number(what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value):
        raise invalid(what, value, "a number (study day)")
    return float(value)


def _grade(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != int(value) \
            or not 0 <= value <= 5:
        raise invalid(what, value, "an integer grade 0-5")
    return int(value)


def _toxicity(i: int, item: Toxicity | Mapping[str, Any]) -> Toxicity:
    if isinstance(item, Toxicity):
        data: Mapping[str, Any] = item.__dict__
    elif isinstance(item, Mapping):
        data = item
        for key in data:
            if key not in _KEYS:
                raise invalid(f"toxicity {i} key", key, f"one of {sorted(_KEYS)}")
    else:
        raise invalid(f"toxicity {i}", item, "a mapping or Toxicity")
    term = data.get("term")
    if not isinstance(term, str) or not term.strip():
        raise invalid(f"toxicity {i} `term`", term, "a CTCAE/ASTCT term")
    category = data.get("category")
    if category not in CATEGORIES:
        raise invalid(f"toxicity {i} `category`", category, f"one of {list(CATEGORIES)}")
    onset = _number(f"toxicity {i} `onset_day`", data.get("onset_day"))
    res = data.get("resolution_day")
    res_day = None if res is None else _number(f"toxicity {i} `resolution_day`", res)
    if res_day is not None and res_day < onset:
        raise invalid(f"toxicity {i} `resolution_day`", res, f">= onset_day {onset:g}")
    course: list[tuple[float, int]] = []
    for step in data.get("grade_course") or ():
        if not isinstance(step, Sequence) or len(step) != 2:
            raise invalid(f"toxicity {i} `grade_course` entry", step, "a (day, grade) pair")
        course.append((_number(f"toxicity {i} course day", step[0]),
                       _grade(f"toxicity {i} course grade", step[1])))
    return Toxicity(term.strip(), category, _grade(f"toxicity {i} `grade`", data.get("grade")),
                    onset, res_day, tuple(sorted(course)))


def _matches(names: list[str] | None, cats: list[str] | None, tox: Toxicity) -> bool:
    if names is not None and tox.term.lower() not in {n.lower() for n in names}:
        return False
    return cats is None or tox.category in cats


def _peak_start(tox: Toxicity) -> float:
    """First day the toxicity reached its (worst) grade: from the course, else onset."""
    return next((day for day, grade in tox.grade_course if grade >= tox.grade), tox.onset_day)


def _first_day_at_most(tox: Toxicity, level: int) -> float | None:
    """First day after the peak began on which the grade was <= level (course, else
    resolution day)."""
    start = _peak_start(tox)
    for day, grade in tox.grade_course:
        if day > start and grade <= level:
            return day
    return tox.resolution_day


def _excuses(exc: Any, tox: Toxicity, first_day: float) -> tuple[bool, str]:
    if not _matches(exc.terms, exc.categories, tox):
        return False, ""
    if exc.grade is not None and tox.grade != exc.grade:
        return False, ""
    if exc.resolves_to_grade_at_most is not None:
        day = _first_day_at_most(tox, exc.resolves_to_grade_at_most)
        if day is None:
            return False, (f"{exc.id} not applied: no documented fall to grade <= "
                           f"{exc.resolves_to_grade_at_most}")
        hours = (day - _peak_start(tox)) * 24.0
        limit = exc.within_hours if exc.within_hours is not None else math.inf
        if hours > limit:
            return False, (f"{exc.id} not applied: grade <= {exc.resolves_to_grade_at_most} after "
                           f"{hours:g} h > {limit:g} h")
        return True, f"{exc.id}: {exc.description} (after {hours:g} h)"
    if exc.counts_only_if_persists_beyond_day is not None:
        end = _first_day_at_most(tox, tox.grade - 1)
        limit = first_day + exc.counts_only_if_persists_beyond_day
        if end is None:
            return False, f"{exc.id} not applied: still ongoing (no end documented)"
        if end > limit:
            return False, f"{exc.id} not applied: persisted to day {end:g} > day {limit:g}"
        return True, f"{exc.id}: {exc.description} (ended day {end:g})"
    return True, f"{exc.id}: {exc.description}"


def evaluate_dlt(protocol: Any, toxicities: Iterable[Toxicity | Mapping[str, Any]], *,
                 first_infusion_day: float = 0) -> DLTResult:
    """Apply the protocol's DLT definition to one patient's graded toxicities."""
    first = _number("first_infusion_day", first_infusion_day)
    definition = protocol.dlt
    window = (first, first + definition.window_days)
    events: list[DLTEvent] = []
    outside: list[Toxicity] = []
    for i, item in enumerate(toxicities):
        tox = _toxicity(i, item)
        if tox.grade == 0:
            continue
        if not window[0] <= tox.onset_day <= window[1]:
            outside.append(tox)
            continue
        for rule in definition.rules:
            if rule.scale == "astct" and tox.category not in ("crs", "icans"):
                continue
            if tox.grade < rule.min_grade or not _matches(rule.terms, rule.categories, tox):
                continue
            excused_by, notes = None, []
            for exc in definition.exceptions:
                ok, why = _excuses(exc, tox, first)
                if ok:
                    excused_by = exc.id
                    notes = [why]
                    break
                if why:
                    notes.append(why)
            reason = f"{rule.id}: {rule.description}" + (f"; {'; '.join(notes)}" if notes else "")
            events.append(DLTEvent(tox, rule.id, excused_by, reason))
            break
    return DLTResult(any(e.excused_by is None for e in events), tuple(events), window,
                     definition.definition, definition.assumed, tuple(outside))
