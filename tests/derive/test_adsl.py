"""ADSL analysis sets and key dates, worked out by hand from the frames in conftest.py."""

from __future__ import annotations

import pandas as pd
import pytest

from celltrial.derive import build_adsl

# subject: ENRLFL, SAFFL, DLTEVLFL, DLTFL, EFFFL, TRT01A, TRT01AN
FLAGS = {
    "S1": ("Y", "Y", "Y", "N", "Y", "DL1", 1.0),   # followed 365 days, CRS grade 1
    "S2": ("Y", "Y", "Y", "Y", "Y", "DL1", 1.0),   # grade 3 pneumonitis day 5-15: DLT
    "S3": ("Y", "Y", "Y", "N", "Y", "DL2", 2.0),
    "S4": ("Y", "Y", "Y", "N", "Y", "DL2", 2.0),   # grade 3 CRS resolved within 72 h: excused
    "S5": ("Y", "Y", "Y", "N", "Y", "DL2", 2.0),
    "S6": ("N", "N", "N", None, "N", None, None),  # screen failure, never infused
    "S7": ("Y", "Y", "N", "N", "Y", "DL1", 1.0),   # died day 10 without DLT: not evaluable;
                                                   # died before assessment: efficacy-evaluable
}


@pytest.fixture()
def adsl(domains, protocol) -> pd.DataFrame:
    return build_adsl(domains, protocol).set_index("USUBJID")


@pytest.mark.parametrize("subject", sorted(FLAGS))
def test_analysis_sets(adsl, subject):
    enrl, saf, dltevl, dlt, eff, trt, trtn = FLAGS[subject]
    row = adsl.loc[subject]
    assert (row["ENRLFL"], row["SAFFL"], row["DLTEVLFL"], row["EFFFL"]) == (enrl, saf, dltevl, eff)
    assert (row["DLTFL"] if isinstance(row["DLTFL"], str) else None) == dlt
    assert (row["TRT01A"] if isinstance(row["TRT01A"], str) else None) == trt
    assert (None if pd.isna(row["TRT01AN"]) else row["TRT01AN"]) == trtn


def test_dates_and_baseline(adsl):
    s1, s2, s3 = adsl.loc["S1"], adsl.loc["S2"], adsl.loc["S3"]
    assert s1["TRTSDT"] == pd.Timestamp("2024-01-10")
    assert s1["LSTALVDT"] == pd.Timestamp("2025-01-09")   # day 365, DS COMPLETED
    assert s1["BBLAST"] == 40.0                            # marrow preferred to blood (12%)
    assert s1["BCD7BLST"] == 95.0
    assert s1["TRTDOSE"] == 1e6
    assert s2["DTHFL"] == "Y" and s2["DTHDT"] == pd.Timestamp("2024-05-11")   # day 100
    assert s3["HSCTFL"] == "Y" and s3["HSCTDT"] == pd.Timestamp("2024-04-15")  # day 45
    assert s3["EMDFL"] == "Y" and s1["EMDFL"] == "N"
    assert pd.isna(adsl.loc["S6", "TRTSDT"])


def test_lymphodepletion_is_not_a_transplant(adsl):
    assert adsl.loc["S1", "HSCTFL"] == "N"
