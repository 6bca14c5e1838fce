"""Eligibility screening on the shipped nct04762485 protocol: each criterion's boundary."""

from __future__ import annotations

import pytest

from celltrial.clinical import screen
from celltrial.errors import InvalidValue
from celltrial.protocols import load



@pytest.fixture(scope="module")
def protocol():
    return load("nct04762485")


def test_eligible_patient(protocol, eligible):
    result = screen(protocol, eligible)
    assert result.eligible and result.decision == "eligible"
    assert all(c.status == "met" for c in result.criteria)
    assert {c.kind for c in result.criteria} == {"inclusion", "exclusion"}
    i2 = next(c for c in result.criteria if c.id == "I2")
    assert i2.values == {"age_years": 40} and i2.rule == "12 <= age_years <= 65"


# (change, the one criterion that fails) -- values just outside each boundary
FAILS = [
    ({"age_years": 11.9}, "I2"), ({"age_years": 65.1}, "I2"), ({"ecog": 3}, "I3"),
    ({"cd7_blast_pct": 30.0}, "I4"), ({"lvef": 0.49, "nyha_class": 3}, "I5"),
    ({"lvef": 0.49, "nyha_class": 1}, "I5"), ({"lvef": 0.6, "nyha_class": 3}, "I5"),
    ({"lvef": 0.35, "nyha_class": 2}, "I5"),  # the registered "or" would admit it
    ({"ast_x_uln": 3.01}, "I6"), ({"bilirubin_mg_dl": 2.01}, "I6"),
    ({"diagnosis": "B-ALL"}, "I1"), ({"relapsed_refractory": False}, "I1"),
    ({"pregnant_or_lactating": True}, "E1"), ({"cns_leukemia": True}, "E3"),
    ({"hiv_infection": True}, "E6"), ({"investigator_unsuitable": True}, "E9"),
]
PASSES = [{"age_years": 12}, {"age_years": 65}, {"ecog": 2}, {"cd7_blast_pct": 30.1},
          {"lvef": 0.5, "nyha_class": 2}, {"ast_x_uln": 3.0},
          {"bilirubin_mg_dl": 2.0}, {"diagnosis": "T-LBL"}]


@pytest.mark.parametrize(("change", "criterion"), FAILS)
def test_failing_one_criterion_names_exactly_it(protocol, eligible, change, criterion):
    result = screen(protocol, {**eligible, **change})
    assert not result.eligible and result.decision == "not eligible"
    assert [c.id for c in result.failed] == [criterion]


@pytest.mark.parametrize("change", PASSES)
def test_boundary_values_pass(protocol, eligible, change):
    assert screen(protocol, {**eligible, **change}).eligible


def test_missing_data_is_reported_not_guessed(protocol, eligible):
    patient = {k: v for k, v in eligible.items() if k not in ("ecog", "hiv_infection")}
    result = screen(protocol, patient)
    assert not result.eligible and result.decision == "incomplete"
    assert {c.id: c.missing for c in result.incomplete} == {"I3": ("ecog",),
                                                            "E6": ("hiv_infection",)}
    # a missing value that cannot change the answer is not "missing data"
    result = screen(protocol, {**patient, "lvef": 0.4, "nyha_class": None})
    assert next(c for c in result.criteria if c.id == "I5").status == "not met"
    result = screen(protocol, {**patient, "lvef": 0.7, "nyha_class": None})
    assert next(c for c in result.criteria if c.id == "I5").status == "missing data"


@pytest.mark.parametrize("study", ["nct04762485", "cd7-aml-mll", "cd7-tall-dlt",
                                   "cd7-tall-phase1", "cd7-zz-phase1"])
def test_every_study_refuses_lvef_035_with_nyha_2(study, eligible):
    """Issue 13: LVEF >= 0.5 "or" NYHA I/II, read safely (both required) in all five."""
    from celltrial.protocols import load

    p = load(study)
    [cardiac] = [c for c in p.eligibility.inclusion if "lvef" in c.rule]
    patient = {k: v for k, v in eligible.items() if k in p.variables}
    for lvef, nyha, status in ((0.35, 2, "not met"), (0.6, 3, "not met"), (0.5, 2, "met"),
                               (0.6, 1, "met")):
        result = screen(p, {**patient, "lvef": lvef, "nyha_class": nyha})
        assert next(c for c in result.criteria if c.id == cardiac.id).status == status
        if status == "not met":
            assert not result.eligible


@pytest.mark.parametrize(("change", "message"), [
    ({"ecog_ps": 1}, "Invalid `patient variable`: got `'ecog_ps'`"),
    ({"age_years": 200}, "Invalid `age_years`"),
    ({"age_years": "forty"}, "Invalid `age_years`"),
    ({"cns_leukemia": "no"}, "Invalid `cns_leukemia`"),
    ({"diagnosis": "CLL"}, "Invalid `diagnosis`"),
])
def test_bad_patient_values_name_the_field(protocol, eligible, change, message):
    with pytest.raises(InvalidValue, match=message):
        screen(protocol, {**eligible, **change})
