"""ASTCT 2019 CRS/ICANS grading: every row of the consensus tables, both sides of each line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celltrial.clinical import Episode, daily_grades, episodes, grade_crs, grade_icans, ice_score
from celltrial.clinical.crs_icans import CRS_LEVELS, ICANS_LEVELS
from celltrial.errors import InvalidValue

# (temperature_c, fever_masked, hypotension, oxygen, grade)
CRS_ROWS = [
    (37.9, False, "none", "none", 0),
    (38.0, False, "none", "none", 1),  # fever is >= 38.0 C
    (39.5, False, "none", "none", 1),
    (38.0, False, "fluids", "none", 2),
    (38.0, False, "none", "low_flow", 2),
    (38.0, False, "one_vasopressor", "none", 3),
    (38.0, False, "none", "high_flow", 3),
    (38.0, False, "one_vasopressor", "low_flow", 3),  # [S1]: fever + 1 pressor + low-flow = 3
    (38.0, False, "multiple_vasopressors", "none", 4),
    (38.0, False, "none", "positive_pressure", 4),
    (38.0, False, "fluids", "positive_pressure", 4),
    (37.9, False, "one_vasopressor", "high_flow", 0),  # no fever, not masked: not CRS
    (37.0, True, "none", "none", 0),
    (37.0, True, "fluids", "none", 2),  # after tocilizumab/antipyretics fever not required
    (37.0, True, "none", "low_flow", 2),
    (37.0, True, "one_vasopressor", "none", 3),
    (37.0, True, "none", "positive_pressure", 4),
    (None, True, "multiple_vasopressors", None, 4),
    (38.5, True, "none", "none", 1),
]


@pytest.mark.parametrize(("temperature", "masked", "hypotension", "oxygen", "grade"), CRS_ROWS)
def test_crs_table(temperature, masked, hypotension, oxygen, grade):
    obs = {"temperature_c": temperature, "fever_masked": masked, "hypotension": hypotension,
           "oxygen": oxygen}
    assert grade_crs(obs) == grade


def test_crs_missing_keys_mean_normal():
    assert grade_crs({}) == 0
    assert grade_crs({"temperature_c": 38.2}) == 1
    assert grade_crs({"fever_masked": True}) == 0


# (ice_score, consciousness, seizure, motor, edema, grade)
ICANS_ROWS = [
    (10, "alert", "none", "none", "none", 0),
    (9, "alert", "none", "none", "none", 1), (7, "alert", "none", "none", "none", 1),
    (6, "alert", "none", "none", "none", 2), (3, "alert", "none", "none", "none", 2),
    (2, "alert", "none", "none", "none", 3), (0, "alert", "none", "none", "none", 3),
    (10, "awakens_spontaneously", "none", "none", "none", 1),
    (10, "awakens_to_voice", "none", "none", "none", 2),
    (10, "awakens_to_touch", "none", "none", "none", 3),
    (0, "unarousable", "none", "none", "none", 4),  # ICE 0 unarousable = 4
    (None, "unarousable", "none", "none", "none", 4),
    (10, "alert", "rapidly_resolving", "none", "none", 3),
    (3, "alert", "rapidly_resolving", "none", "none", 3),  # [S3]: ICE 3 + seizure = 3
    (10, "alert", "prolonged", "none", "none", 4),
    (10, "alert", "none", "focal_weakness", "none", 4),
    (10, "alert", "none", "none", "focal", 3),
    (10, "alert", "none", "none", "diffuse", 4),
    (8, "awakens_to_voice", "none", "none", "none", 2),
    (None, "alert", "none", "none", "none", 0),
]


@pytest.mark.parametrize(("ice", "consciousness", "seizure", "motor", "edema", "grade"), ICANS_ROWS)
def test_icans_table(ice, consciousness, seizure, motor, edema, grade):
    obs = {"ice_score": ice, "consciousness": consciousness, "seizure": seizure, "motor": motor,
           "edema": edema}
    assert grade_icans(obs) == grade


@pytest.mark.parametrize(("items", "score"), [
    ({"orientation": 4, "naming": 3, "commands": 1, "writing": 1, "attention": 1}, 10),
    ({"orientation": 0, "naming": 0, "commands": 0, "writing": 0, "attention": 0}, 0),
    ({"orientation": 2, "naming": 1, "commands": 1, "writing": 0, "attention": 0}, 4),
])
def test_ice_score(items, score):
    assert ice_score(items) == score


@pytest.mark.parametrize(("items", "message"), [
    ({"orientation": 5, "naming": 3, "commands": 1, "writing": 1, "attention": 1},
     "ICE item `orientation`"),
    ({"orientation": 4, "naming": 3, "commands": 1, "writing": 1}, "ICE item `attention`"),
    ({"orientation": 4, "naming": 3, "commands": 1, "writing": 1, "attention": 1, "mood": 1},
     "ICE item"),
    ({"orientation": 4, "naming": 3, "commands": True, "writing": 1, "attention": 1},
     "ICE item `commands`"),
])
def test_ice_score_bad_items(items, message):
    with pytest.raises(InvalidValue, match=message):
        ice_score(items)


@pytest.mark.parametrize(("obs", "message"), [
    ({"hypotension": "pressors"}, "Invalid `hypotension`"),
    ({"oxygen": "nasal"}, "Invalid `oxygen`"),
    ({"temp": 38.5}, "Invalid `observation key`: got `'temp'`"),
    ({"temperature_c": 100.4}, "Invalid `temperature_c`"),
    ({"fever_masked": "yes"}, "Invalid `fever_masked`"),
    ({"ice_score": 11}, "Invalid `ice_score`"),
    ({"consciousness": "drowsy"}, "Invalid `consciousness`"),
    ({"seizure": "focal"}, "Invalid `seizure`"),
    ({"edema": "cerebral"}, "Invalid `edema`"),
])
def test_bad_observation_names_it(obs, message):
    with pytest.raises(InvalidValue, match=message):
        grade_crs(obs)
    with pytest.raises(InvalidValue, match=message):
        grade_icans(obs)


_HYPO = list(CRS_LEVELS["hypotension"])
_OXY = list(CRS_LEVELS["oxygen"])


@given(st.floats(35.0, 41.0), st.booleans(), st.integers(0, 3), st.integers(0, 3),
       st.integers(0, 3), st.integers(0, 3))
def test_crs_never_lower_when_worse(temp, masked, h1, h2, o1, o2):
    better = {"temperature_c": temp, "fever_masked": masked, "hypotension": _HYPO[min(h1, h2)],
              "oxygen": _OXY[min(o1, o2)]}
    worse = {**better, "hypotension": _HYPO[max(h1, h2)], "oxygen": _OXY[max(o1, o2)]}
    assert grade_crs(worse) >= grade_crs(better)


@given(st.integers(0, 10), st.integers(0, 10), *(st.integers(0, len(v) - 1)
                                                 for v in ICANS_LEVELS.values()))
def test_icans_never_lower_when_worse(ice_a, ice_b, c, s, m, e):
    names = [list(v) for v in ICANS_LEVELS.values()]
    better = {"ice_score": max(ice_a, ice_b), "consciousness": names[0][0]}
    worse = {"ice_score": min(ice_a, ice_b), "consciousness": names[0][c], "seizure": names[1][s],
             "motor": names[2][m], "edema": names[3][e]}
    assert grade_icans(worse) >= grade_icans(better)


def test_patient_history_crs_days_and_episodes():
    """Fever day 1, hypotension on fluids day 2, tocilizumab + one pressor day 3 (afebrile),
    back to grade 1 day 5, resolved day 6; second episode day 10 (fever only) still ongoing."""
    obs = [
        {"day": 0, "temperature_c": 36.8},
        {"day": 1, "temperature_c": 38.4},
        {"day": 1, "temperature_c": 37.5},  # two readings: the worst counts
        {"day": 2, "temperature_c": 39.1, "hypotension": "fluids"},
        {"day": 3, "temperature_c": 37.2, "fever_masked": True, "hypotension": "one_vasopressor",
         "oxygen": "low_flow"},
        {"day": 5, "temperature_c": 38.1, "fever_masked": True},
        {"day": 6, "temperature_c": 36.9, "fever_masked": True},
        {"day": 10, "temperature_c": 38.2},
    ]
    assert daily_grades(obs, "crs") == {0: 0, 1: 1, 2: 2, 3: 3, 5: 1, 6: 0, 10: 1}
    assert episodes(obs, "crs") == [
        Episode(max_grade=3, onset_day=1, start_day=1, end_day=5, duration_days=5, resolved=True),
        Episode(max_grade=1, onset_day=10, start_day=10, end_day=10, duration_days=1,
                resolved=False),
    ]


def test_patient_history_icans():
    obs = [{"day": 4, "ice_score": 10}, {"day": 5, "ice_score": 8},
           {"day": 6, "ice_score": 2, "consciousness": "awakens_to_voice"},
           {"day": 7, "ice_score": 6}, {"day": 8, "ice_score": 10}]
    assert daily_grades(obs, "icans") == {4: 0, 5: 1, 6: 3, 7: 2, 8: 0}
    (ep,) = episodes(obs, "icans")
    assert (ep.max_grade, ep.onset_day, ep.duration_days, ep.resolved) == (3, 5, 3, True)


def test_daily_grades_needs_day_and_kind():
    with pytest.raises(InvalidValue, match="`day`"):
        daily_grades([{"temperature_c": 38.5}], "crs")
    with pytest.raises(InvalidValue, match="Invalid `kind`"):
        daily_grades([], "neuro")  # type: ignore[arg-type]
