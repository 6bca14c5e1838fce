"""Acute graft-versus-host disease: organ stage and overall grade by the MAGIC criteria.

Source: Harris AC, Young R, Devine S, et al. International, multicenter standardization of
acute graft-versus-host disease clinical data collection: a report from the Mount Sinai
Acute GVHD International Consortium. Biol Blood Marrow Transplant 2016;22(1):4-10,
Table 1 (organ staging) and Table 2 (overall clinical grade). Relevant to CD7 CAR-T made
from a donor (the prior HSCT donor or a new HLA-matched donor; Pan 2021 JCO, GVHD grade 1-2
in 60%; ../shared/CLINICAL_REFERENCE.md section 6).

Organ stage (Table 1), one observation per organ:

======  ============================  =================  ==================================
stage   skin (active erythema, % BSA)  liver (bilirubin)  lower GI, adult (stool/day)
======  ============================  =================  ==================================
0       no active rash                 < 2 mg/dL          < 500 mL or < 3 episodes
1       maculopapular rash < 25%       2-3 mg/dL          500-999 mL or 3-4 episodes
2       25-50%                         3.1-6 mg/dL        1000-1500 mL or 5-7 episodes
3       > 50%                          6.1-15 mg/dL       > 1500 mL or > 7 episodes
4       erythroderma with bullae and   > 15 mg/dL         severe abdominal pain with or
        desquamation > 5% BSA                             without ileus, or grossly bloody
                                                          stool
======  ============================  =================  ==================================

Children (``paediatric=True``): lower GI by mL/kg/day (< 10, 10-19.9, 20-30, > 30) or
episodes (< 4, 4-6, 7-10, > 10). Upper GI: stage 1 = persistent nausea, vomiting or anorexia,
otherwise 0.

Overall grade (Table 2): 0 = no organ stage 1-4; I = skin stage 1-2 without liver, upper GI
or lower GI involvement; II = skin stage 3 and/or liver stage 1 and/or upper GI stage 1 and/or
lower GI stage 1; III = liver stage 2-3 and/or lower GI stage 2-3 (skin 0-3, upper GI 0-1);
IV = skin, liver or lower GI stage 4.

Readings of a printed table on a continuous scale: bilirubin "2-3" is 2 <= b <= 3, "3.1-6"
is 3 < b <= 6, "6.1-15" is 6 < b <= 15; stool "500-999" is 500 <= v < 1000 and "1000-1500"
is 1000 <= v <= 1500; paediatric "10-19.9" is 10 <= v < 20 and "20-30" is 20 <= v <= 30.
When both stool volume and episodes are given the higher stage counts.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celltrial.errors import invalid

__all__ = ["BILIRUBIN_STAGES", "GVHD_KEYS", "LOWER_GI_STAGES", "SKIN_STAGES", "GVHDGrade",
           "grade_gvhd", "stage_liver", "stage_lower_gi", "stage_skin", "stage_upper_gi"]

# (stage, lower bound, lower bound inclusive) scanned from the highest stage down
SKIN_STAGES: tuple[tuple[int, float, bool], ...] = ((3, 50.0, False), (2, 25.0, True),
                                                    (1, 0.0, False))
"""Skin stage by active-erythema BSA %: > 50 -> 3, 25-50 -> 2, > 0 and < 25 -> 1 (stage 4
needs bullae with desquamation > 5% BSA: ``skin_bullae_pct``). Harris 2016, Table 1."""

BILIRUBIN_STAGES: tuple[tuple[int, float, bool], ...] = ((4, 15.0, False), (3, 6.0, False),
                                                         (2, 3.0, False), (1, 2.0, True))
"""Liver stage by total bilirubin mg/dL: > 15 -> 4, > 6 -> 3, > 3 -> 2, >= 2 -> 1."""

LOWER_GI_STAGES: dict[str, tuple[tuple[int, float, bool], ...]] = {
    "adult_ml": ((3, 1500.0, False), (2, 1000.0, True), (1, 500.0, True)),
    "adult_episodes": ((3, 7.0, False), (2, 5.0, True), (1, 3.0, True)),
    "child_ml_per_kg": ((3, 30.0, False), (2, 20.0, True), (1, 10.0, True)),
    "child_episodes": ((3, 10.0, False), (2, 7.0, True), (1, 4.0, True)),
}
"""Lower-GI stage 1-3 by stool volume or episodes per day (adult: mL, child: mL/kg);
stage 4 = severe abdominal pain or grossly bloody stool (``gi_severe_pain_or_bleeding``)."""

SKIN_BULLAE_STAGE4_PCT = 5.0
"""Bullae and desquamation over > 5% BSA make skin stage 4."""

GVHD_KEYS = frozenset({"skin_bsa_pct", "skin_bullae_pct", "bilirubin_mg_dl",
                       "upper_gi_persistent", "stool_ml", "stool_episodes",
                       "gi_severe_pain_or_bleeding", "paediatric", "day"})


def _number(key: str, value: object, hi: float) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) \
            or not math.isfinite(float(value)) or not 0.0 <= float(value) <= hi:
        raise invalid(key, value, f"a number between 0 and {hi:g}")
    return float(value)


def _band(value: float, rows: tuple[tuple[int, float, bool], ...]) -> int:
    for stage, bound, inclusive in rows:
        if value > bound or (inclusive and value == bound):
            return stage
    return 0


def stage_skin(bsa_pct: float | None, bullae_pct: float | None = None) -> int:
    """Skin stage 0-4 (Harris 2016, Table 1).

    >>> stage_skin(25), stage_skin(51), stage_skin(80, bullae_pct=6)
    (2, 3, 4)
    """
    bsa = 0.0 if bsa_pct is None else _number("skin_bsa_pct", bsa_pct, 100.0)
    bullae = 0.0 if bullae_pct is None else _number("skin_bullae_pct", bullae_pct, 100.0)
    if bullae > SKIN_BULLAE_STAGE4_PCT:
        return 4
    return _band(bsa, SKIN_STAGES)


def stage_liver(bilirubin_mg_dl: float | None) -> int:
    """Liver stage 0-4 by total bilirubin in mg/dL (Harris 2016, Table 1).

    >>> [stage_liver(b) for b in (1.9, 2.0, 3.0, 3.1, 6.0, 6.1, 15.0, 15.1)]
    [0, 1, 1, 2, 2, 3, 3, 4]
    """
    if bilirubin_mg_dl is None:
        return 0
    return _band(_number("bilirubin_mg_dl", bilirubin_mg_dl, 60.0), BILIRUBIN_STAGES)


def stage_upper_gi(persistent: bool | None) -> int:
    """Upper GI stage: 1 = persistent nausea, vomiting or anorexia, else 0."""
    if persistent is not None and not isinstance(persistent, bool):
        raise invalid("upper_gi_persistent", persistent, "true or false")
    return 1 if persistent else 0


def stage_lower_gi(stool_ml: float | None = None, stool_episodes: float | None = None, *,
                   severe_pain_or_bleeding: bool = False, paediatric: bool = False) -> int:
    """Lower-GI stage 0-4; ``stool_ml`` is mL/day (adult) or mL/kg/day (``paediatric``).

    >>> stage_lower_gi(999), stage_lower_gi(1000), stage_lower_gi(200, 8)
    (1, 2, 3)
    """
    if severe_pain_or_bleeding:
        return 4
    vol_key, ep_key = ("child_ml_per_kg", "child_episodes") if paediatric else \
        ("adult_ml", "adult_episodes")
    stages = [0]
    if stool_ml is not None:
        stages.append(_band(_number("stool_ml", stool_ml, 20000.0), LOWER_GI_STAGES[vol_key]))
    if stool_episodes is not None:
        stages.append(_band(_number("stool_episodes", stool_episodes, 100.0),
                            LOWER_GI_STAGES[ep_key]))
    return max(stages)


@dataclass(frozen=True)
class GVHDGrade:
    """MAGIC overall grade 0-4 (0 = none, 1-4 = I-IV) and the organ stages it came from."""

    grade: int
    skin: int
    liver: int
    upper_gi: int
    lower_gi: int

    @property
    def roman(self) -> str:
        return ["0", "I", "II", "III", "IV"][self.grade]


def overall_grade(skin: int, liver: int, upper_gi: int, lower_gi: int) -> int:
    """MAGIC overall grade from organ stages (Harris 2016, Table 2).

    >>> overall_grade(2, 0, 0, 0), overall_grade(3, 0, 0, 0), overall_grade(1, 0, 1, 0)
    (1, 2, 2)
    >>> overall_grade(0, 2, 0, 0), overall_grade(0, 0, 1, 4)
    (3, 4)
    """
    if max(skin, liver, lower_gi) >= 4:
        return 4
    if liver >= 2 or lower_gi >= 2:
        return 3
    if skin == 3 or liver == 1 or upper_gi >= 1 or lower_gi == 1:
        return 2
    if skin >= 1:
        return 1
    return 0


def grade_gvhd(observation: Mapping[str, Any]) -> GVHDGrade:
    """Stage every organ and grade one acute GVHD observation (keys: :data:`GVHD_KEYS`).

    >>> grade_gvhd({"skin_bsa_pct": 30, "stool_ml": 1200}).roman
    'III'
    """
    if not isinstance(observation, Mapping):
        raise invalid("observation", observation, "a mapping of the GVHD vocabulary")
    for key in observation:
        if key not in GVHD_KEYS:
            raise invalid("observation key", key, f"one of {sorted(GVHD_KEYS)}")
    paediatric = bool(observation.get("paediatric") or False)
    pain = observation.get("gi_severe_pain_or_bleeding") or False
    if not isinstance(pain, bool):
        raise invalid("gi_severe_pain_or_bleeding", pain, "true or false")
    skin = stage_skin(observation.get("skin_bsa_pct"), observation.get("skin_bullae_pct"))
    liver = stage_liver(observation.get("bilirubin_mg_dl"))
    upper = stage_upper_gi(observation.get("upper_gi_persistent"))
    lower = stage_lower_gi(observation.get("stool_ml"), observation.get("stool_episodes"),
                           severe_pain_or_bleeding=pain, paediatric=paediatric)
    return GVHDGrade(overall_grade(skin, liver, upper, lower), skin, liver, upper, lower)
