"""Dose-limiting toxicity (DLT) from graded toxicities and the protocol's DLT definition.

Sources. The window, the rules, the exceptions and the censoring events are the protocol's
data (``protocol.dlt``: ``window_days``, ``rules`` = :class:`~celltrial.protocols.DLTRule`,
``exceptions`` = :class:`~celltrial.protocols.DLTException`, ``censored_by``); in the five
shipped studies they are assumed, each with its rationale in the protocol file. Grades are
CTCAE v5.0 (NCI, 2017) for every term but cytokine release syndrome (CRS) and immune effector
cell-associated neurotoxicity syndrome (ICANS), which are graded by the ASTCT 2019 consensus
(Lee et al., Biol Blood Marrow Transplant 2019;25:625-638). This module only applies them.

Time. Days are study days from the first infusion (``first_infusion_day``, day 0 by default);
a fractional day carries the clock time (hours / 24). A study day ``d`` covers ``[d, d + 1)``:
the window and the censoring day are judged on whole study days, hours only on durations.

1. **When a rule is met.** A rule matches a toxicity when its ``terms``/``categories`` match
   (absent = any; an ``astct`` rule only CRS and ICANS) and the toxicity reached
   ``min_grade``. The day it *met the rule* is the first day of its ``grade_course`` ((day,
   grade) pairs) with grade >= ``min_grade``; a fall below that grade ends the episode and a
   later return starts a new one, judged on its own. Without a course, or with a course that
   never documents that grade, it is the onset day (the reported grade is taken as reached at
   onset, which is conservative), and the event says so; how it went on is still read from
   the course.
2. **Window.** An episode counts only when it met the rule inside the window (study days
   ``first_infusion_day`` to ``first_infusion_day + window_days``, inclusive). One reaching
   the grade only later is listed as *outside window (met on day X)*: a cytopenia starting at
   grade 1 on day 2 and reaching grade 4 on day 300 is not a DLT.
3. **Censoring** (``censor_day``, e.g. the first allogeneic HSCT): an episode that met the rule
   after the censoring day is listed as *after censoring (day Y: event)* and does not count;
   one meeting it on the censoring day itself counts (the order within a day is not known).
   The grade course and the resolution day are read only up to the censoring day.
4. **Exceptions** (first one that excuses wins). Its ``grade`` must equal the episode's grade
   (the worst one in the window and before censoring). Its condition is judged on the course:
   ``resolves_to_grade_at_most`` + ``within_hours``: hours from the first time the course
   reached the exception's grade to the first later entry at or below that level (or the
   resolution day); ``counts_only_if_persists_beyond_day``: the first entry below the grade
   (or the resolution day) is on or before that study day; ``counts_only_if_lasts_more_than_days``:
   days from the first entry at the grade to the first entry below it (or the resolution day)
   are at most that many (``end - start``: grade 4 from day 5 and grade 3 on day 19 lasted
   14 days). No condition = always excused.
5. **Conservative when a condition cannot be judged.** Without the evidence a condition needs
   (no documented fall or end, or a course censored before it could be seen) the exception
   does not excuse: the episode stays a DLT and its reason says why. A censored duration is
   therefore counted as a DLT, never as excused.
6. **Decision.** A toxicity is a DLT when any matching rule has an unexcused episode in the
   window; that event (first rule in protocol order, then first in time) is reported, else
   the first excused one, else the first one not counted (outside window or censored). The
   patient has a DLT when any toxicity is one. Every event's ``reason`` names the rule, the
   day it was met and the exception applied or why it was not.

>>> from celltrial.protocols import load
>>> p = load("cd7-zz-phase1")     # rules D1-D5, exceptions X1-X4, 28-day window
>>> crs = {"term": "Cytokine release syndrome", "category": "crs", "grade": 3,
...        "onset_day": 2, "grade_course": [(2.0, 3), (2.0 + 71 / 24, 2)]}
>>> r = evaluate_dlt(p, [crs])
>>> r.is_dlt, r.events[0].excused_by            # grade <= 2 after 71 h
(False, 'X1')
>>> late = {"term": "Neutrophil count decreased", "category": "hematologic", "grade": 4,
...         "onset_day": 2, "grade_course": [(2, 1), (300, 4)]}
>>> evaluate_dlt(p, [late]).not_counted[0].reason
'D4: Hematologic toxicity grade 4 (CTCAE v5.0); outside window (met on day 300)'
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from celltrial.errors import invalid

__all__ = ["DLTEvent", "DLTResult", "Toxicity", "evaluate_dlt", "study_day_text"]

CATEGORIES = ("hematologic", "non_hematologic", "crs", "icans")

Status = Literal["dlt", "excused", "outside_window", "censored"]
"""``dlt`` / ``excused``: met a rule in the window (counted); ``outside_window`` /
``censored``: met it only outside the window or after the censoring day (not counted)."""

_EPS = 1e-9  # fractional days computed from clock times: 3.0 may arrive as 2.9999999999


def _study_day(day: float) -> int:
    """The study day holding ``day`` (a day ``d`` covers ``[d, d + 1)``)."""
    return math.floor(day + _EPS)


def study_day_text(day: float) -> str:
    """A study day as read: ``28``, or ``2 14:00`` where it carries a clock time.

    >>> study_day_text(28.0), study_day_text(2 + 14 / 24)
    ('28', '2 14:00')
    """
    whole = _study_day(day)
    minutes = round((day - whole) * 1440)
    if minutes in (0, 1440):
        return f"{whole + minutes // 1440}"
    return f"{whole} {minutes // 60:02d}:{minutes % 60:02d}"


_day = study_day_text


@dataclass(frozen=True)
class Toxicity:
    """A graded toxicity (CTCAE v5.0, or ASTCT 2019 for CRS/ICANS); days are study days.

    ``grade`` is the worst grade reported; ``grade_course`` the (day, grade) observations
    (daily ASTCT grades, CTCAE grades of blood counts), days fractional where a clock time
    was recorded; ``resolution_day`` the day it ended (grade 0), None when ongoing."""

    term: str
    category: str
    grade: int
    onset_day: float
    resolution_day: float | None = None
    grade_course: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True)
class DLTEvent:
    """One toxicity judged against a DLT rule.

    ``rule_id`` the rule it met, ``met_day`` the day it first met the rule's grade, ``grade``
    the grade judged (worst in the window and before censoring), ``excused_by`` the exception
    that excused it (None otherwise), ``status`` one of :data:`Status`, ``reason`` which rule
    decided and why, and ``detail`` the part of the reason after the rule (the exception
    applied or why not, or why the event was not counted)."""

    toxicity: Toxicity
    rule_id: str
    excused_by: str | None
    reason: str
    met_day: float | None = None
    grade: int | None = None
    status: Status | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if self.status is None:
            object.__setattr__(self, "status", "dlt" if self.excused_by is None else "excused")
        if self.grade is None:
            object.__setattr__(self, "grade", self.toxicity.grade)

    @property
    def counted(self) -> bool:
        """Met the rule inside the window and before censoring (a DLT or excused)."""
        return self.status in ("dlt", "excused")

    def as_dict(self) -> dict[str, Any]:
        tox = self.toxicity
        return {"term": tox.term, "category": tox.category, "grade": self.grade,
                "reported_grade": tox.grade, "onset_day": tox.onset_day,
                "met_day": self.met_day, "rule": self.rule_id, "excused_by": self.excused_by,
                "status": self.status, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class DLTResult:
    """One patient's DLT assessment.

    ``events``: the toxicities that met a rule in the window (DLT or excused), one per
    toxicity; ``not_counted``: those that met a rule only outside the window or after
    censoring (``outside_window`` repeats the toxicities of the first kind);
    ``censor_day``/``censor_event``: the censoring applied, if any."""

    is_dlt: bool
    events: tuple[DLTEvent, ...] = ()
    window: tuple[float, float] = (0.0, 28.0)
    definition: str = ""
    assumed: bool = False
    outside_window: tuple[Toxicity, ...] = field(default_factory=tuple)
    not_counted: tuple[DLTEvent, ...] = ()
    censor_day: float | None = None
    censor_event: str | None = None

    @property
    def dlts(self) -> tuple[DLTEvent, ...]:
        return tuple(e for e in self.events if e.status == "dlt")

    @property
    def considered(self) -> tuple[DLTEvent, ...]:
        """Every event judged, counted or not, by the day it met its rule."""
        both = self.events + self.not_counted
        return tuple(sorted(both, key=lambda e: math.inf if e.met_day is None else e.met_day))

    def as_dict(self) -> dict[str, Any]:
        return {"is_dlt": self.is_dlt, "window": list(self.window),
                "censor_day": self.censor_day, "censor_event": self.censor_event,
                "events": [e.as_dict() for e in self.considered]}


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


@dataclass(frozen=True)
class _Episode:
    """A run of the course at >= a rule's grade: the day it began (met the rule), its worst
    grade in the judged period, and whether a course follows it (else only the resolution
    day tells how it ended)."""

    start: float
    grade: int
    from_course: bool
    note: str = ""
    end: float = math.inf  # first course day below the rule's grade (inf: none)


def _episodes(tox: Toxicity, level: int, last_day: float) -> list[_Episode]:
    """The episodes at >= ``level``; grades after study day ``last_day`` (window end or
    censoring) do not make an episode's judged grade."""
    course = tox.grade_course
    top_course = max((g for _, g in course), default=-1)
    if top_course < level:
        # the course does not show when the reported grade was reached: the onset day is used;
        # the course still shows how the toxicity went on from there
        note = (f"grade course never reaches grade {level} (reported grade {tox.grade}): onset "
                f"day {_day(tox.onset_day)} used" if course else "")
        return [_Episode(tox.onset_day, tox.grade, bool(course), note)]
    above = tox.grade > top_course  # the course misses the reported worst grade
    note = (f"reported grade {tox.grade} is above its course (worst {top_course}): grade "
            f"{tox.grade} used" if above else "")
    result: list[_Episode] = []
    start: float | None = None
    judged = whole = 0
    for day, grade in (*course, (math.inf, -1)):
        if grade >= level:
            if start is None:
                start, judged, whole = day, 0, 0
            whole = max(whole, grade)
            if _study_day(day) <= last_day:
                judged = max(judged, grade)
        elif start is not None:
            worst = max(judged or whole, tox.grade if above else 0)
            result.append(_Episode(start, worst, True, note, day))
            start = None
    return result


@dataclass(frozen=True)
class _Evidence:
    """What an exception may read of a toxicity: the course and the resolution day up to the
    censoring day, and the words to say so when that cut hid the answer."""

    course: tuple[tuple[float, int], ...]
    resolution: float | None
    cut: str  # "" or ", course read up to the censoring on day Y (event)"


def _evidence(tox: Toxicity, censor: float | None, event: str | None) -> _Evidence:
    if censor is None:
        return _Evidence(tox.grade_course, tox.resolution_day, "")
    last = _study_day(censor)
    course = tuple((d, g) for d, g in tox.grade_course if _study_day(d) <= last)
    res = tox.resolution_day
    seen_res = res if res is not None and _study_day(res) <= last else None
    hidden = len(course) < len(tox.grade_course) or seen_res is None
    cut = f", course read up to the censoring on day {_day(censor)} ({event or 'censored'})"
    return _Evidence(course, seen_res, cut if hidden else "")


def _excuses(exc: Any, tox: Toxicity, ep: _Episode, ev: _Evidence, first_day: float
             ) -> tuple[bool, str]:
    """Whether ``exc`` excuses the episode, and the words saying why (or why not)."""
    if not _matches(exc.terms, exc.categories, tox):
        return False, ""
    if exc.grade is not None and ep.grade != exc.grade:
        return False, ""
    level = exc.grade if exc.grade is not None else ep.grade
    seen = ev.course if ep.from_course else ()
    start = next((d for d, g in seen if ep.start <= d < ep.end and g >= level), ep.start)

    def first_after(below: int) -> float | None:
        """First day after ``start`` with grade <= ``below`` (course, else resolution)."""
        for day, grade in seen:
            if day > start and grade <= below:
                return day
        return ev.resolution if ev.resolution is not None and ev.resolution >= start else None

    not_applied = f"{exc.id} not applied:"
    unjudged = (f"cannot be judged{ev.cut}; counted (conservative)" if ev.cut
                else "still ongoing (no end documented)")
    if exc.resolves_to_grade_at_most is not None:
        to = exc.resolves_to_grade_at_most
        fall = first_after(to)
        if fall is None:
            why = f"cannot be judged{ev.cut}; counted (conservative)" if ev.cut else \
                f"no documented fall to grade <= {to}"
            return False, f"{not_applied} {why}"
        hours = round((fall - start) * 24.0, 6)
        limit = exc.within_hours if exc.within_hours is not None else math.inf
        if hours > limit:
            return False, f"{not_applied} grade <= {to} after {hours:g} h > {limit:g} h"
        return True, f"{exc.id}: {exc.description} (after {hours:g} h)"
    persists = exc.counts_only_if_persists_beyond_day
    lasts = getattr(exc, "counts_only_if_lasts_more_than_days", None)
    if persists is None and lasts is None:
        return True, f"{exc.id}: {exc.description}"
    end = first_after(level - 1)
    last_at = max((d for d, g in seen if d >= start and g >= level), default=start)
    if persists is not None:
        limit_day = first_day + persists
        if end is None:
            if _study_day(last_at) > limit_day:
                return False, (f"{not_applied} still grade >= {level} on day "
                               f"{_day(last_at)} > day {limit_day:g}")
            return False, f"{not_applied} {unjudged}"
        if _study_day(end) > limit_day:
            return False, f"{not_applied} persisted to day {_day(end)} > day {limit_day:g}"
        return True, f"{exc.id}: {exc.description} (ended day {_day(end)})"
    assert lasts is not None
    if end is None:
        if last_at - start > lasts:
            return False, (f"{not_applied} still grade >= {level} after "
                           f"{round(last_at - start, 6):g} days > {lasts:g}")
        return False, f"{not_applied} {unjudged}"
    days = round(end - start, 6)
    if days > lasts:
        return False, f"{not_applied} grade >= {level} lasted {days:g} days > {lasts:g}"
    return True, f"{exc.id}: {exc.description} (grade >= {level} lasted {days:g} days)"


def _judge(definition: Any, rule: Any, tox: Toxicity, ep: _Episode, ev: _Evidence,
           first_day: float) -> DLTEvent:
    excused_by, notes = None, []
    for exc in definition.exceptions:
        ok, why = _excuses(exc, tox, ep, ev, first_day)
        if ok:
            excused_by, notes = exc.id, [why]
            break
        if why:
            notes.append(why)
    detail = "; ".join([*([ep.note] if ep.note else []), *notes]) or "no exception applies"
    reason = f"{rule.id}: {rule.description}; met on day {_day(ep.start)}; {detail}"
    return DLTEvent(tox, rule.id, excused_by, reason, ep.start, ep.grade, detail=detail)


def evaluate_dlt(protocol: Any, toxicities: Iterable[Toxicity | Mapping[str, Any]], *,
                 first_infusion_day: float = 0, censor_day: float | None = None,
                 censor_event: str | None = None) -> DLTResult:
    """Apply the protocol's DLT definition to one patient's graded toxicities.

    ``toxicities``: :class:`Toxicity` objects or mappings with the same keys.
    ``censor_day``: study day of the first censoring event the protocol lists in
    ``dlt.censored_by`` (e.g. the allogeneic HSCT), named by ``censor_event`` in the reasons;
    None = followed without censoring. The rules are those of the module docstring."""
    first = _number("first_infusion_day", first_infusion_day)
    censor = None if censor_day is None else _number("censor_day", censor_day)
    if censor is not None and censor < first:
        raise invalid("censor_day", censor_day, f">= first_infusion_day {first:g}")
    definition = protocol.dlt
    window = (first, first + definition.window_days)
    last_day = window[1] if censor is None else min(window[1], _study_day(censor))
    events: list[DLTEvent] = []
    skipped: list[DLTEvent] = []
    for i, item in enumerate(toxicities):
        tox = _toxicity(i, item)
        worst = max([tox.grade, *(g for _, g in tox.grade_course)])
        if worst == 0:
            continue
        ev = _evidence(tox, censor, censor_event)
        counted: list[DLTEvent] = []
        later: list[DLTEvent] = []
        for rule in definition.rules:
            if rule.scale == "astct" and tox.category not in ("crs", "icans"):
                continue
            if worst < rule.min_grade or not _matches(rule.terms, rule.categories, tox):
                continue
            for ep in _episodes(tox, rule.min_grade, last_day):
                day = _study_day(ep.start)
                head = f"{rule.id}: {rule.description}"
                if not window[0] <= day <= window[1]:
                    why = f"outside window (met on day {_day(ep.start)})"
                    later.append(DLTEvent(tox, rule.id, None, f"{head}; {why}", ep.start,
                                          ep.grade, "outside_window", why))
                elif censor is not None and day > _study_day(censor):
                    why = (f"after censoring (day {_day(censor)}: {censor_event or 'censored'}); "
                           f"met on day {_day(ep.start)}")
                    later.append(DLTEvent(tox, rule.id, None, f"{head}; {why}", ep.start,
                                          ep.grade, "censored", why))
                else:
                    counted.append(_judge(definition, rule, tox, ep, ev, first))
        if counted:
            events.append(next((e for e in counted if e.status == "dlt"), counted[0]))
        elif later:
            skipped.append(later[0])
    return DLTResult(any(e.status == "dlt" for e in events), tuple(events), window,
                     definition.definition, definition.assumed,
                     tuple(e.toxicity for e in skipped if e.status == "outside_window"),
                     tuple(skipped), censor, censor_event if censor is not None else None)
