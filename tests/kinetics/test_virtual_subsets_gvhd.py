"""Virtual patients, issue 13: lymphocyte subsets (CD3+, CD4+, CD8+ T and NK cells) read from
the mechanistic model's normal CD7+ cells on the protocol's schedule, and acute GVHD of a
donor-derived product graded by MAGIC from organ stages (``clinical.gvhd.grade_gvhd``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from celltrial.clinical.gvhd import grade_gvhd
from celltrial.kinetics.virtual import (
    GVHD_PATTERNS, GVHD_TERM, LYMPHOCYTE_SUBSETS, PRODUCT_GVHD, SUBSET, _cd7_negative_t,
    gvhd_observation, lymphocyte_subsets, virtual_cohort,
)
from celltrial.protocols import load

E, M, B, BN, N, IL6 = range(6)
SUBSET_CODES = [t.code for t in LYMPHOCYTE_SUBSETS]


def _study_day(frame: pd.DataFrame, column: str, dm: pd.DataFrame) -> pd.Series:
    start = pd.to_datetime(frame["USUBJID"].map(dm.set_index("USUBJID")["RFSTDTC"]))
    return (pd.to_datetime(frame[column]) - start).dt.days


@pytest.fixture(scope="module")
def zz():
    return load("cd7-zz-phase1")


@pytest.fixture(scope="module")
def cohort(zz) -> dict[str, pd.DataFrame]:
    """120 patients of cd7-zz-phase1 (autologous product) at 1 x 10^6 cells/kg."""
    return virtual_cohort(zz, 120, 5, level=1)


@pytest.fixture(scope="module")
def donor_cohort(zz) -> dict[str, pd.DataFrame]:
    """The same patients with the product made from a new donor (protocol data)."""
    donor = zz.model_copy(update={"intervention": zz.intervention.model_copy(
        update={"product_origin": "donor_new"})})
    return virtual_cohort(donor, 120, 5, level=1)


# ------------------------------------------------------------------ the observation model

def test_subsets_split_the_model_cells():
    state = np.zeros(6)
    state[[E, M, N]] = (30.0, 10.0, 500.0)
    got = lymphocyte_subsets(state, 14)
    t = (1 - SUBSET["nk_share"]) * 500.0 + _cd7_negative_t(14)
    assert got["NKABS"] == pytest.approx(SUBSET["nk_share"] * 500.0)
    assert got["CD3ABS"] == pytest.approx(40.0 + t)
    assert got["CD4ABS"] == pytest.approx(SUBSET["car_cd4_share"] * 40 + SUBSET["cd4_share"] * t)
    assert got["CD8ABS"] == pytest.approx((1 - SUBSET["car_cd4_share"]) * 40
                                          + SUBSET["cd8_share"] * t)
    # T + NK + the other lymphocytes are the model's lymphocyte count (LB LYM)
    lym = state[E] + state[M] + state[N] + _cd7_negative_t(14) + SUBSET["other_lymphocytes"]
    assert got["CD3ABS"] + got["NKABS"] + SUBSET["other_lymphocytes"] == pytest.approx(lym)


def test_baseline_of_a_typical_patient_is_in_the_reference_ranges():
    """Before lymphodepletion at the typical normal CD7+ steady state (1,200/uL), every subset
    lies in the 95% range of healthy adults (Wong 2013) and CD4:CD8 is about 1.4."""
    got = lymphocyte_subsets(np.zeros(6), -7, normal_cd7_steady=1200.0)
    for test in LYMPHOCYTE_SUBSETS:
        assert test.low <= got[test.code] <= test.high, (test.code, got[test.code])
    assert 1.2 <= got["CD4ABS"] / got["CD8ABS"] <= 1.7


# ------------------------------------------------------------------ the records

def test_subsets_on_the_schedule_and_not_after_hsct_or_death(cohort, zz):
    dm, lb, pr = cohort["DM"], cohort["LB"], cohort["PR"]
    rows = lb[lb["LBTESTCD"].isin(SUBSET_CODES)]
    assert set(rows["LBTESTCD"]) == set(SUBSET_CODES)
    assert (rows["LBSTRESU"] == "cells/uL").all() and (rows["LBMETHOD"] == "FLOW").all()
    days = _study_day(rows, "LBDTC", dm)
    schedule = {-7, *zz.schedule.cd7_days, *zz.schedule.followup_days}
    assert set(days) <= schedule
    hsct = pr[pr["PRTRT"] == "ALLOGENEIC HSCT"]
    hsct_day = _study_day(hsct, "PRSTDTC", dm).groupby(hsct["USUBJID"]).min()
    after = days.to_numpy() >= rows["USUBJID"].map(hsct_day).fillna(np.inf).to_numpy()
    assert not after.any()
    death = _study_day(dm[dm["DTHDTC"].notna()], "DTHDTC", dm).groupby(
        dm.loc[dm["DTHDTC"].notna(), "USUBJID"]).min()
    assert not (days.to_numpy() > rows["USUBJID"].map(death).fillna(np.inf).to_numpy()).any()
    # four tests per visit
    assert (rows.groupby(["USUBJID", "LBDTC"]).size() == 4).all()


def _by_day(cohort, code: str, day: int) -> pd.Series:
    lb, dm = cohort["LB"], cohort["DM"]
    rows = lb[lb["LBTESTCD"] == code]
    return rows.loc[_study_day(rows, "LBDTC", dm) == day, "LBSTRESN"].astype(float)


def test_baseline_subsets_and_lymphocytes_agree(cohort):
    """Day -7 (before lymphodepletion): medians within the healthy ranges, and LB LYM equals
    CD3 + NK + the other lymphocytes up to the measurement noise."""
    for test in LYMPHOCYTE_SUBSETS:
        median = float(_by_day(cohort, test.code, -7).median())
        assert test.low <= median <= test.high, (test.code, median)
    lb, dm = cohort["LB"], cohort["DM"]
    base = lb[_study_day(lb, "LBDTC", dm) == -7].pivot_table(
        index="USUBJID", columns="LBTESTCD", values="LBSTRESN", aggfunc="first")
    ratio = 1000 * base["LYM"] / (base["CD3ABS"] + base["NKABS"] + SUBSET["other_lymphocytes"])
    assert 0.9 <= float(ratio.median()) <= 1.1


def test_cd7_car_t_depletes_nk_and_cd7_positive_t_cells(cohort):
    """[D1] Pan 2021: CD7+ normal T and NK cells depleted, CD7-negative T cells expanding. At
    day 28 nearly every patient is NK-aplastic (< 50/uL) and CD4+ < 200/uL; by day 180 the
    T cells are back above 200/uL in most (CD7-negative expansion), the NK cells not yet in
    all."""
    nk28, cd4_28 = _by_day(cohort, "NKABS", 28), _by_day(cohort, "CD4ABS", 28)
    assert len(nk28) >= 80
    assert (nk28 < 50).mean() >= 0.8
    assert (cd4_28 < 200).mean() >= 0.8
    cd3_180 = _by_day(cohort, "CD3ABS", 180)
    assert len(cd3_180) >= 20 and (cd3_180 >= 200).mean() >= 0.7


# ------------------------------------------------------------------ GVHD

@pytest.mark.parametrize("grade", sorted(GVHD_PATTERNS))
def test_every_gvhd_pattern_has_its_magic_grade_at_both_ends(grade):
    for _, organs in GVHD_PATTERNS[grade]:
        for end in (0, 1):
            obs = {k: (v if isinstance(v, bool) else v[end]) for k, v in organs.items()}
            assert grade_gvhd(obs).grade == grade, obs


@pytest.mark.parametrize("grade", sorted(GVHD_PATTERNS))
def test_drawn_gvhd_observations_have_their_grade(grade):
    rng = np.random.default_rng(grade)
    for _ in range(200):
        assert grade_gvhd(gvhd_observation(grade, rng)).grade == grade


def _gvhd_before_hsct(cohort) -> pd.DataFrame:
    ae, dm, pr = cohort["AE"], cohort["DM"], cohort["PR"]
    gvhd = ae[ae["AEDECOD"] == GVHD_TERM]
    start = _study_day(gvhd, "AESTDTC", dm)
    hsct = pr[pr["PRTRT"] == "ALLOGENEIC HSCT"]
    hsct_day = _study_day(hsct, "PRSTDTC", dm).groupby(hsct["USUBJID"]).min()
    return gvhd[start.to_numpy() < gvhd["USUBJID"].map(hsct_day).fillna(np.inf).to_numpy()]


def test_autologous_product_has_no_gvhd_before_hsct(cohort):
    assert _gvhd_before_hsct(cohort).empty


def test_donor_derived_product_gives_gvhd_at_the_published_rate(donor_cohort, cohort):
    """[D4] 40% acute GVHD of any grade, grade 3 rare, no grade 4-5; an HSCT before the onset
    takes some away. The records of the donor cohort otherwise match the autologous cohort's
    (the GVHD draws come from a child generator)."""
    gvhd = _gvhd_before_hsct(donor_cohort)
    infused = donor_cohort["DM"]["RFSTDTC"].notna().sum()
    rate = gvhd["USUBJID"].nunique() / infused
    assert 0.22 <= rate <= PRODUCT_GVHD.probability + 0.1, rate
    assert set(gvhd["AETOXGR"].astype(int)) <= {1, 2, 3}
    assert (gvhd["AETOXSCL"] == "MAGIC 2016").all()
    # grade II-III is treated with methylprednisolone (CM, GVHD MANAGEMENT), grade I is not
    cm = donor_cohort["CM"]
    steroid = cm[cm["CMCAT"] == "GVHD MANAGEMENT"]
    assert set(steroid["USUBJID"]) == set(gvhd.loc[gvhd["AETOXGR"] >= 2, "USUBJID"])
    assert (steroid["CMDECOD"] == "METHYLPREDNISOLONE").all()
    assert (cohort["CM"]["CMCAT"] != "GVHD MANAGEMENT").all()
    cols = ["USUBJID", "LBTESTCD", "LBDTC", "LBSTRESN"]
    other = donor_cohort["LB"][donor_cohort["LB"]["LBTESTCD"] != "BILI"][cols]
    same = cohort["LB"][cohort["LB"]["LBTESTCD"] != "BILI"][cols]
    pd.testing.assert_frame_equal(other.reset_index(drop=True), same.reset_index(drop=True))
