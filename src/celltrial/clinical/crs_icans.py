"""ASTCT 2019 consensus grading of CRS and ICANS, the ICE score, day-by-day grades, episodes.

Source: Lee DW et al. ASTCT Consensus Grading for Cytokine Release Syndrome and Neurologic
Toxicity Associated with Immune Effector Cells. Biol Blood Marrow Transplant
2019;25:625-638 (CRS table; ICE score; ICANS table for adults and children > 12 y);
../shared/CLINICAL_REFERENCE.md section 1.

An observation is a mapping in the shared vocabulary (web app and store use the same words):

- CRS: ``temperature_c`` (float), ``fever_masked`` (bool: antipyretics or anti-cytokine
  therapy given), ``hypotension`` in none / fluids / one_vasopressor / multiple_vasopressors,
  ``oxygen`` in none / low_flow / high_flow / positive_pressure.
- ICANS: ``ice_score`` (0-10 or None = not assessable), ``consciousness`` in alert /
  awakens_spontaneously / awakens_to_voice / awakens_to_touch / unarousable, ``seizure`` in
  none / rapidly_resolving / prolonged, ``motor`` in none / focal_weakness, ``edema`` in
  none / focal / diffuse.
- ``day`` (study day) for :func:`daily_grades` and :func:`episodes`.

A missing key means none/normal; an unknown key or value raises
:class:`~celltrial.errors.InvalidValue` naming it. One observation may carry both CRS and
ICANS keys; each grader reads its own.

CRS rules: fever is temperature >= 38.0 C; the grade is that of the most severe of
hypotension and hypoxia (one vasopressor with or without vasopressin = 3; multiple
vasopressors excluding vasopressin = 4); fever alone = 1; without fever, hypotension/hypoxia
are not CRS (grade 0) unless ``fever_masked`` is true (ASTCT: once antipyretics or
anti-cytokine therapy are given, fever is no longer required to grade). Grade 5 (death) is
not in the observation vocabulary.

ICANS rules: grade = the most severe domain. ICE 7-9 -> 1, 3-6 -> 2, 0-2 -> 3 (an ICE of 0
in an unarousable patient is grade 4 through the consciousness domain); consciousness:
awakens spontaneously 1, to voice 2, only to tactile stimulus 3, unarousable 4; seizure:
rapidly resolving (or non-convulsive on EEG resolving with intervention) 3, prolonged
(> 5 min) or repetitive without return to baseline 4; deep focal motor weakness 4; focal
edema on neuroimaging 3, diffuse edema (or posturing, CN VI palsy, papilledema, Cushing's
triad) 4. Children <= 12 y use CAPD instead of ICE: not covered here (CAPD cut-offs for
grades 2-4 not found).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from celltrial.errors import invalid

__all__ = ["CRS_LEVELS", "ICANS_LEVELS", "ICE_ITEMS", "OBSERVATION_KEYS", "Episode",
           "assessed", "daily_grades", "episodes", "grade_crs", "grade_icans", "ice_score"]

FEVER_C = 38.0
"""ASTCT 2019: fever is a temperature >= 38.0 C."""

CRS_LEVELS: dict[str, dict[str, int]] = {
    "hypotension": {"none": 0, "fluids": 2, "one_vasopressor": 3, "multiple_vasopressors": 4},
    "oxygen": {"none": 0, "low_flow": 2, "high_flow": 3, "positive_pressure": 4},
}
"""CRS domain value -> the grade it sets (ASTCT 2019 CRS table)."""

ICANS_LEVELS: dict[str, dict[str, int]] = {
    "consciousness": {"alert": 0, "awakens_spontaneously": 1, "awakens_to_voice": 2,
                      "awakens_to_touch": 3, "unarousable": 4},
    "seizure": {"none": 0, "rapidly_resolving": 3, "prolonged": 4},
    "motor": {"none": 0, "focal_weakness": 4},
    "edema": {"none": 0, "focal": 3, "diffuse": 4},
}
"""ICANS domain value -> the grade it sets (ASTCT 2019 ICANS table, adults and > 12 y)."""

ICE_GRADES: tuple[tuple[int, int, int], ...] = ((10, 10, 0), (7, 9, 1), (3, 6, 2), (0, 2, 3))
"""ICE score ranges (low, high, grade)."""

ICE_ITEMS: dict[str, int] = {"orientation": 4, "naming": 3, "commands": 1, "writing": 1,
                             "attention": 1}
"""ICE items and their maximum points: orientation to year, month, city, hospital (4); naming
3 objects (3); following simple commands (1); writing a standard sentence (1); counting back
from 100 by 10 (1)."""

CRS_KEYS = frozenset({"temperature_c", "fever_masked", *CRS_LEVELS})
ICANS_KEYS = frozenset({"ice_score", *ICANS_LEVELS})
OBSERVATION_KEYS = CRS_KEYS | ICANS_KEYS | {"day"}


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check(observation: Mapping[str, Any]) -> None:
    if not isinstance(observation, Mapping):
        raise invalid("observation", observation, "a mapping of the CRS/ICANS vocabulary")
    for key, value in observation.items():
        if key not in OBSERVATION_KEYS:
            raise invalid("observation key", key, f"one of {sorted(OBSERVATION_KEYS)}")
        if key in CRS_LEVELS or key in ICANS_LEVELS:
            levels = {**CRS_LEVELS, **ICANS_LEVELS}[key]
            if value is not None and value not in levels:
                raise invalid(key, value, f"one of {list(levels)}")
        elif key == "temperature_c" and value is not None:
            if not _is_number(value) or not 25.0 <= float(value) <= 45.0:
                raise invalid("temperature_c", value, "a body temperature in C (25-45)")
        elif key == "fever_masked" and value is not None and not (
                isinstance(value, bool) or type(value).__module__ == "numpy"
                and type(value).__name__ in ("bool", "bool_")):
            raise invalid("fever_masked", value, "true or false")
        elif key == "ice_score" and value is not None:
            if not _is_integer(value) or not 0 <= value <= 10:
                raise invalid("ice_score", value, "an integer 0-10, or None when not assessable")
        elif key == "day" and value is not None and not _is_number(value):
            raise invalid("day", value, "a study day (number)")


CRS_ASSESSMENT = ("temperature_c", *CRS_LEVELS)
"""What a CRS grade is read from (ASTCT 2019 CRS table: fever, hypotension, hypoxia)."""
ICANS_ASSESSMENT = ("ice_score", *ICANS_LEVELS)
"""What an ICANS grade is read from (ASTCT 2019 ICANS table: ICE score, consciousness,
seizure, motor findings, raised intracranial pressure / cerebral edema)."""


def assessed(observation: Mapping[str, Any]) -> tuple[bool, bool]:
    """(CRS assessed, ICANS assessed): whether the observation holds any parameter of the
    ASTCT 2019 table the grade is read from.

    An observation without any of them is missing data, not grade 0: grade it only where
    it was assessed (a masked-fever flag alone assesses nothing).

    >>> assessed({"temperature_c": 37.1})
    (True, False)
    >>> assessed({"fever_masked": True})
    (False, False)
    """
    def given(keys: tuple[str, ...]) -> bool:
        return any(observation.get(k) is not None for k in keys)

    return given(CRS_ASSESSMENT), given(ICANS_ASSESSMENT)


def grade_crs(observation: Mapping[str, Any]) -> int:
    """ASTCT 2019 CRS grade 0-4 of one observation.

    >>> grade_crs({"temperature_c": 38.6, "hypotension": "fluids", "oxygen": "high_flow"})
    3
    >>> grade_crs({"temperature_c": 37.2, "fever_masked": True, "hypotension": "one_vasopressor"})
    3
    """
    _check(observation)
    temperature = observation.get("temperature_c")
    fever = temperature is not None and float(temperature) >= FEVER_C
    masked = bool(observation.get("fever_masked"))
    organ = max(CRS_LEVELS[k][observation.get(k) or "none"] for k in CRS_LEVELS)
    if fever:
        return max(1, organ)
    return organ if masked else 0


def ice_score(items: Mapping[str, Any]) -> int:
    """The ICE score (0-10) from its five items (ASTCT 2019).

    >>> ice_score({"orientation": 3, "naming": 3, "commands": 1, "writing": 0, "attention": 1})
    8
    """
    if not isinstance(items, Mapping):
        raise invalid("ICE items", items, f"a mapping with {list(ICE_ITEMS)}")
    for key in items:
        if key not in ICE_ITEMS:
            raise invalid("ICE item", key, f"one of {list(ICE_ITEMS)}")
    total = 0
    for key, most in ICE_ITEMS.items():
        if key not in items or items[key] is None:
            raise invalid(f"ICE item `{key}`", None, f"given (0-{most}); every item is needed")
        value = items[key]
        if not _is_integer(value) or not 0 <= value <= most:
            raise invalid(f"ICE item `{key}`", value, f"an integer 0-{most}")
        total += int(value)
    return total


def _ice_grade(score: int | None) -> int:
    if score is None:
        return 0
    return next(g for lo, hi, g in ICE_GRADES if lo <= score <= hi)


def grade_icans(observation: Mapping[str, Any]) -> int:
    """ASTCT 2019 ICANS grade 0-4 of one observation (adults and children > 12 y).

    >>> grade_icans({"ice_score": 3, "seizure": "rapidly_resolving"})
    3
    >>> grade_icans({"ice_score": None, "consciousness": "unarousable"})
    4
    """
    _check(observation)
    normal = {k: next(iter(levels)) for k, levels in ICANS_LEVELS.items()}  # alert / none
    domains = [ICANS_LEVELS[k][observation.get(k) or normal[k]] for k in ICANS_LEVELS]
    return max(_ice_grade(observation.get("ice_score")), *domains)


_GRADERS = {"crs": grade_crs, "icans": grade_icans}


def _grader(kind: str) -> Any:
    if kind not in _GRADERS:
        raise invalid("kind", kind, "'crs' or 'icans'")
    return _GRADERS[kind]


def daily_grades(observations: Iterable[Mapping[str, Any]], kind: Literal["crs", "icans"]
                 ) -> dict[int, int]:
    """The worst grade per study day, ordered by day (days without observations are absent)."""
    grade = _grader(kind)
    days: dict[int, int] = {}
    for i, obs in enumerate(observations):
        _check(obs)
        day = obs.get("day")
        if day is None:
            raise invalid(f"observation {i} `day`", None, "a study day for day-by-day grading")
        d = int(day)
        days[d] = max(days.get(d, 0), grade(obs))
    return dict(sorted(days.items()))


@dataclass(frozen=True)
class Episode:
    """One CRS or ICANS episode: consecutive graded days >= 1 up to an observed grade-0 day.

    ``duration_days`` = end_day - start_day + 1 (an episode on one day lasts 1 day, as ADAE's
    ADURN); ``resolved`` is False when the last observation still had grade >= 1.
    """

    max_grade: int
    onset_day: int
    start_day: int
    end_day: int
    duration_days: int
    resolved: bool


def episodes(observations: Iterable[Mapping[str, Any]], kind: Literal["crs", "icans"]
             ) -> list[Episode]:
    """Episodes from observations with ``day``: a run of days with grade >= 1 that ends at
    the next observed grade-0 day (days without an observation do not end an episode).
    """
    result: list[Episode] = []
    start = end = top = None
    for day, g in daily_grades(observations, kind).items():
        if g > 0:
            if start is None:
                start, top = day, 0
            end, top = day, max(top or 0, g)
        elif start is not None:
            result.append(Episode(top or 0, start, start, end or start, (end or start) - start + 1,
                                  True))
            start = end = top = None
    if start is not None:
        result.append(Episode(top or 0, start, start, end or start, (end or start) - start + 1,
                              False))
    return result
