"""RP2D rule (celltrial.design.rp2d): exact intervals against R, hand-worked recommendations,
the protocol's rule, and the recommendation from analysis datasets."""

import math

import numpy as np
import pandas as pd
import pytest

from celltrial.design.rp2d import RP2DRule, clopper_pearson, recommend_from_adam, rule_of
from celltrial.errors import CelltrialError
from celltrial.protocols import load


@pytest.mark.parametrize(("x", "n", "lo", "hi"), [
    (3, 10, 0.06673951, 0.65245285),   # R: binom.test(3, 10)$conf.int
    (0, 10, 0.0, 0.30849710),          # R: binom.test(0, 10)$conf.int
    (10, 10, 0.69150290, 1.0),         # R: binom.test(10, 10)$conf.int
])
def test_clopper_pearson_matches_r(x, n, lo, hi):
    got = clopper_pearson(x, n)
    assert got[0] == pytest.approx(lo, abs=1e-7) and got[1] == pytest.approx(hi, abs=1e-7)


def test_clopper_pearson_closed_forms_and_symmetry():
    for n in (1, 3, 15, 40):
        assert clopper_pearson(0, n)[1] == pytest.approx(1 - 0.025 ** (1 / n), abs=1e-12)
        for x in range(n + 1):
            lo, hi = clopper_pearson(x, n)
            lo2, hi2 = clopper_pearson(n - x, n)
            assert lo == pytest.approx(1 - hi2, abs=1e-12)
    assert all(math.isnan(v) for v in clopper_pearson(0, 0))


def test_hand_worked_recommendation():
    # isotonic (y+0.05)/(n+0.1): 0.0161, 0.1721, 0.5000 (already increasing); dose 3 unsafe.
    # utility 100 pE(1-pT) + 40 (1-pE)(1-pT) + 60 pE pT:
    #   dose 1: pE 1/3 -> 32.796 + 26.237 + 0.323 = 59.355
    #   dose 2: pE 1/2 -> 41.393 + 16.557 + 5.164 = 63.115   => RP2D dose 2
    rec = RP2DRule(target=0.3).recommend([3, 6, 6], [0, 1, 3], [1, 3, 5])
    t = rec.table
    assert list(t["safe"]) == [True, True, False]
    assert t["p_dlt_isotonic"].round(4).tolist() == [0.0161, 0.1721, 0.5]
    assert t["utility"].iloc[0] == pytest.approx(59.3548, abs=1e-3)
    assert t["utility"].iloc[1] == pytest.approx(63.1148, abs=1e-3)
    assert rec.dose == 2 and "highest utility 63.1" in rec.reason


def test_isotonic_pooling_decides_safety():
    # raw rates 2/6 > 0.3 at dose 1 and 0/6 at dose 2 pool to ~0.17: both safe
    rec = RP2DRule(target=0.3).recommend([6, 6], [2, 0], [3, 3])
    assert rec.table["p_dlt_isotonic"].iloc[0] == pytest.approx(
        rec.table["p_dlt_isotonic"].iloc[1]) == pytest.approx((2.05 + 0.05) / 12.2)
    assert rec.table["safe"].all()


def test_futility_none_safe_exposure_and_ties():
    rule = RP2DRule(target=0.3, min_response=0.25)
    # 0/15 responses: exact upper limit 1 - 0.025^(1/15) = 0.218 < 0.25: futile
    rec = rule.recommend([15], [0], [0])
    assert rec.dose is None and "futile" in rec.reason and rec.table["futile"].iloc[0]
    assert rule.recommend([3], [3], [3]).dose is None
    assert "no dose with isotonic" in rule.recommend([3], [3], [3]).reason
    assert rule.recommend([0, 0], [0, 0], [0, 0]).reason == "no patient treated"
    # equal counts, equal utility: the higher median AUC0-28d wins; without AUC the lower dose
    assert rule.recommend([3, 3], [0, 0], [2, 2], [5e4, 9e4]).dose == 2
    assert rule.recommend([3, 3], [0, 0], [2, 2]).dose == 1
    floor = RP2DRule(target=0.3, min_auc28=6e4)
    assert floor.recommend([3, 3], [0, 0], [3, 2], [5e4, 9e4]).dose == 2
    with pytest.raises(CelltrialError):
        rule.recommend([3], [4], [0])


def test_rule_of_protocol():
    rule, assumed, note = rule_of(load("cd7-zz-phase1"))
    assert (rule.target, rule.min_response, rule.u2, rule.u3) == (0.35, 0.25, 40, 60)
    assert assumed and "assumed" in note
    for study in ("cd7-aml-mll", "cd7-tall-dlt", "cd7-tall-phase1", "nct04762485"):
        p = load(study)
        assert p.rp2d is not None and p.rp2d.assumed and p.rp2d.sources
        assert rule_of(p)[0].target == p.escalation.target


def test_recommend_from_adam():
    p = load("cd7-tall-phase1")  # four dose levels
    adsl = pd.DataFrame({
        "USUBJID": [f"S{i}" for i in range(9)],
        "TRT01AN": [1, 1, 1, 2, 2, 2, 2, 2, 2],
        "DLTEVLFL": ["Y"] * 8 + ["N"],
        "DLTFL": ["N", "N", "N", "N", "Y", "N", "N", "N", "N"],
    })
    adrs = pd.DataFrame({"USUBJID": [f"S{i}" for i in range(9)], "PARAMCD": "BOR",
                         "AVALC": ["CR", "PD", "NR", "CR", "CRi", "CR", "NR", "CR", "CR"]})
    adpp = pd.DataFrame({"USUBJID": [f"S{i}" for i in range(9)], "PARAMCD": "AUC28_QPCR",
                         "AVAL": [1e4, 2e4, 3e4, 5e4, 6e4, 7e4, 8e4, 9e4, 1e5]})
    rec = recommend_from_adam(p, adsl, adrs, adpp)
    t = rec.table
    assert list(t["n"]) == [3, 5, 0, 0] and list(t["dlt"]) == [0, 1, 0, 0]
    assert list(t["responders"]) == [1, 4, 0, 0]
    assert t["auc28_median"].iloc[0] == 2e4 and t["auc28_median"].iloc[1] == 7.5e4
    assert np.isnan(t["auc28_median"].iloc[2])
    assert rec.dose == 2


def test_table_interval_is_clopper_pearson_and_choose_is_recommend():
    rule = RP2DRule(target=0.3, conf_level=0.9)
    n, y, r = [3, 6, 10, 0], [0, 1, 2, 0], [0, 6, 4, 0]
    t = rule.table(n, y, r)
    for i in range(3):
        lo, hi = clopper_pearson(r[i], n[i], 0.9)
        assert t["response_lo"].iloc[i] == pytest.approx(lo, abs=1e-12)
        assert t["response_hi"].iloc[i] == pytest.approx(hi, abs=1e-12)
    assert np.isnan(t["response_lo"].iloc[3])
    rng = np.random.default_rng(0)
    for _ in range(200):
        nn = rng.integers(0, 10, 4)
        yy = rng.binomial(nn, 0.25)
        rr = rng.binomial(nn, 0.4)
        auc = rng.choice([np.nan, 1e4, 2e4], 4)
        assert rule.choose(nn, yy, rr, auc) == rule.recommend(nn, yy, rr, auc).dose
