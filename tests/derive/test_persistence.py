"""Persistence as time to loss of detectable CAR-T (celltrial.derive.persistence): the event and
censoring rules as a table, and the Kaplan-Meier endpoint on patients who die or go to
transplant while CAR-T cells are still detectable."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from celltrial.derive.analysis import derive_datasets
from celltrial.derive.endpoints import compute_endpoint
from celltrial.derive.persistence import build_persistence, loss_of_persistence
from celltrial.errors import InvalidValue
from celltrial.protocols import load

from .conftest import make_domains

T, F = True, False
NAN = math.nan

# samples (day, quantifiable), death day, HSCT day, confirm -> (AVAL, CNSR, EVNTTYPE, LASTQDY)
CASES = [
    ("loss seen at the first BLQ sample", [(7, T), (28, T), (90, F), (180, F)], NAN, NAN, 1,
     (90.0, 0, 1, 28.0)),
    ("still detectable at the last sample", [(7, T), (28, T)], NAN, NAN, 1, (28.0, 1, 0, 28.0)),
    ("died while detectable: censored at the last quantifiable sample", [(7, T), (28, T)], 40,
     NAN, 1, (28.0, 1, 2, 28.0)),
    ("HSCT while detectable; BLQ samples after the HSCT not read", [(7, T), (28, T), (60, F)],
     NAN, 45, 1, (28.0, 1, 3, 28.0)),
    ("a sample on the HSCT day is not read", [(7, T), (45, F)], NAN, 45, 1, (7.0, 1, 3, 7.0)),
    ("a BLQ sample on the day of death is read", [(7, T), (30, F)], 30, NAN, 1,
     (30.0, 0, 1, 7.0)),
    ("loss seen before death is an event", [(7, T), (14, F)], 40, NAN, 1, (14.0, 0, 1, 7.0)),
    ("an intermittent BLQ sample is not a loss", [(7, T), (14, F), (28, T)], NAN, NAN, 1,
     (28.0, 1, 0, 28.0)),
    ("confirm 2: one trailing BLQ sample is not enough", [(7, T), (28, T), (90, F)], NAN, NAN,
     2, (28.0, 1, 0, 28.0)),
    ("confirm 2: two BLQ samples date the loss at the first", [(7, T), (28, T), (90, F),
                                                               (120, F)], NAN, NAN, 2,
     (90.0, 0, 1, 28.0)),
    ("day 0 (pre-infusion) is not read", [(0, T), (7, F)], NAN, NAN, 1, None),
    ("never quantifiable: no row", [(7, F), (14, F)], NAN, NAN, 1, None),
]


@pytest.mark.parametrize(("label", "samples", "death", "hsct", "confirm", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_loss_of_persistence_rules(label, samples, death, hsct, confirm, expected):
    assert loss_of_persistence(samples, death_day=death, hsct_day=hsct,
                               confirm=confirm) == expected


@pytest.mark.parametrize("confirm", [0, -1, 1.5, True, "2"])
def test_confirm_must_be_a_positive_whole_number(confirm):
    with pytest.raises(InvalidValue, match="confirm"):
        loss_of_persistence([(7, True)], confirm=confirm)


START = pd.Timestamp("2024-01-01")

# subject: (samples (day, value or None = BLQ), death day, HSCT day)
KM_SUBJECTS = {
    "A": ([(7, 500.0), (14, 300.0), (30, None)], None, None),         # loss on day 30
    "B": ([(7, 800.0), (20, 100.0)], 25, None),                       # died detectable: c20
    "C": ([(7, 900.0), (40, 50.0), (60, None)], None, 50),            # HSCT detectable: c40
    "D": ([(7, 400.0), (45, 20.0), (60, None), (90, None)], None, None),  # loss on day 60
    "E": ([(7, 100.0), (90, 10.0)], None, None),                      # detectable: c90
    "F": ([(7, None), (14, None)], None, None),                       # never quantifiable
}


def _km_datasets() -> dict[str, pd.DataFrame]:
    adsl, adpc = [], []
    for u, (samples, death, hsct) in KM_SUBJECTS.items():
        adsl.append({"STUDYID": "X", "USUBJID": u, "SAFFL": "Y", "TRTSDT": START,
                     "DTHDT": START + pd.Timedelta(days=death) if death else pd.NaT,
                     "HSCTDT": START + pd.Timedelta(days=hsct) if hsct else pd.NaT,
                     "TRT01A": "DL1", "TRT01AN": 1.0})
        for d, v in samples:
            adpc.append({"USUBJID": u, "PARAMCD": "CARTQPCR", "TIME": float(d), "AVAL": v,
                         "BLQFL": "Y" if v is None else "N", "PCSPEC": "BLOOD"})
    adsl_frame = pd.DataFrame(adsl).astype({"DTHDT": "datetime64[us]",
                                            "HSCTDT": "datetime64[us]"})
    adpc_frame = pd.DataFrame(adpc).astype({"AVAL": float})
    tlast = adpc_frame[adpc_frame["AVAL"].notna()].groupby("USUBJID")["TIME"].max()
    adpp = pd.DataFrame({"USUBJID": tlast.index, "PPTESTCD": "TLST", "ANALYTE": "CARTQPCR",
                         "AVAL": tlast.to_numpy()})
    return {"adsl": adsl_frame, "adpc": adpc_frame, "adpp": adpp}


def test_rows_with_deaths_and_transplant():
    rows = build_persistence(_km_datasets()["adpc"], _km_datasets()["adsl"]).set_index(
        "USUBJID")
    assert rows.loc[["A", "B", "C", "D", "E"], "AVAL"].tolist() == [30, 20, 40, 60, 90]
    assert rows.loc[["A", "B", "C", "D", "E"], "CNSR"].tolist() == [0, 1, 1, 0, 1]
    assert rows.loc[["A", "B", "C", "D", "E"], "EVNTDESC"].tolist() == [
        "LOSS OF DETECTABLE CAR-T", "DEATH BEFORE LOSS SEEN", "ALLOGENEIC HSCT BEFORE LOSS SEEN",
        "LOSS OF DETECTABLE CAR-T", "DETECTABLE AT LAST SAMPLE"]
    assert "F" not in rows.index
    assert set(rows["PARAMCD"]) == {"LOSSQPCR"}


def test_kaplan_meier_endpoint_censors_death_and_transplant():
    """Times 20+ 30 40+ 60 90+: S(30) = 3/4, S(60) = 3/4 * 1/2 = 0.375, so the median is 60
    (R: survfit(Surv(c(20,30,40,60,90), c(0,1,0,1,0)) ~ 1) prints median 60); the naive
    median of the last quantifiable days (14, 20, 40, 45, 90) is 40."""
    endpoint = next(e for e in load("cd7-aml-mll").endpoints
                    if e.derivation == "ck_persistence_qpcr")
    result = compute_endpoint(_km_datasets(), endpoint, None)
    assert result.status == "ok", result.reason
    assert result.estimate == 60.0
    assert result.n == 5
    assert result.estimates["events"] == 2
    assert result.estimates["never_quantifiable"] == 1
    assert result.estimates["censoring"] == {
        "LOSS OF DETECTABLE CAR-T": 2, "DEATH BEFORE LOSS SEEN": 1,
        "ALLOGENEIC HSCT BEFORE LOSS SEEN": 1, "DETECTABLE AT LAST SAMPLE": 1}
    assert result.estimates["median_tlast_biased"] == 40.0
    assert "Kaplan-Meier" in result.method
    assert "1 death before loss seen" in result.summary


def test_kaplan_meier_survival_values_against_hand_computation():
    from celltrial.stats import kaplan_meier

    rows = build_persistence(_km_datasets()["adpc"], _km_datasets()["adsl"])
    fit = kaplan_meier(rows["AVAL"].to_numpy(float), (rows["CNSR"] == 0).to_numpy(int))
    at = fit.at([30.0, 59.0, 60.0])
    assert np.allclose(at["surv"].to_numpy(), [0.75, 0.75, 0.375])


def test_median_not_reached_is_a_result():
    data = _km_datasets()
    keep = data["adpc"]["USUBJID"].isin(["B", "C", "E"])
    data = {**data, "adpc": data["adpc"][keep]}
    endpoint = next(e for e in load("cd7-aml-mll").endpoints
                    if e.derivation == "ck_persistence_qpcr")
    result = compute_endpoint(data, endpoint, None)
    assert result.status == "ok"
    assert result.estimate is None and result.reason == "median not reached"


def test_derive_datasets_adds_persistence_to_adtte():
    adtte = derive_datasets(make_domains(), load("cd7-zz-phase1"))["adtte"]
    loss = adtte[adtte["PARAMCD"].str.startswith("LOSS")].set_index("USUBJID")
    # S1: qPCR quantifiable d7-d28, BLQ d90 and d180 -> loss seen on day 90
    assert loss.loc["S1", ["PARAMCD", "AVAL", "CNSR", "LASTQDY"]].tolist() == [
        "LOSSQPCR", 90.0, 0, 28.0]
    # S2: flow quantifiable to d28, BLQ d60 (relapse d60, death d100) -> loss on day 60
    assert loss.loc["S2", ["PARAMCD", "AVAL", "CNSR"]].tolist() == ["LOSSPCT", 60.0, 0]
    assert set(adtte.loc[~adtte["PARAMCD"].str.startswith("LOSS"), "PARAMCD"]) >= {"OS", "PFS"}
