"""ADSL analysis sets and key dates, worked out by hand from the frames in conftest.py."""

from __future__ import annotations

import pandas as pd
import pytest

from celltrial.derive import build_adsl

from .conftest import make_domains

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


def _neutropenia(counts: dict[int, float]) -> dict[str, pd.DataFrame]:
    """S5 with a grade 4 neutropenia AE recorded from day 1 to day 60 and its ANC course
    (LLN 2.0 x10^9/L: <0.5 grade 4, 0.5-<1.0 grade 3, 1.0-<1.5 grade 2, 1.5-<2.0 grade 1)."""
    from .conftest import day

    domains = make_domains()
    ae = pd.DataFrame([{"STUDYID": "cd7-zz-phase1", "USUBJID": "S5", "AESEQ": 99,
                        "AETERM": "neutropenia", "AEDECOD": "Neutrophil count decreased",
                        "AETOXGR": 4, "AETOXSCL": "CTCAE v5.0", "AESTDTC": day("S5", 1),
                        "AEENDTC": day("S5", 60), "AESER": "N", "AEREL": "RELATED"}])
    lb = pd.DataFrame([{"STUDYID": "cd7-zz-phase1", "USUBJID": "S5", "LBSEQ": 90 + i,
                        "LBCAT": "HEMATOLOGY", "LBTESTCD": "NEUT", "LBTEST": "Neutrophils",
                        "LBSPEC": "BLOOD", "LBORRES": str(v), "LBORRESU": "10^9/L",
                        "LBSTRESN": v, "LBSTRESU": "10^9/L", "LBORNRLO": 2.0, "LBORNRHI": 7.5,
                        "LBDTC": day("S5", n), "LBMETHOD": None}
                       for i, (n, v) in enumerate(sorted(counts.items()))])
    domains["AE"] = pd.concat([domains["AE"], ae], ignore_index=True)
    domains["LB"] = pd.concat([domains["LB"], lb], ignore_index=True)
    return domains


@pytest.mark.parametrize(("counts", "dlt"), [
    # grade 4 until day 14, grade 3 on day 21: ended by day 28 -> excused (X4)
    ({1: 0.3, 14: 0.4, 21: 0.8, 60: 1.6}, "N"),
    # grade 4 on day 14, first seen below grade 4 on day 28 itself: ended by day 28 -> excused
    ({1: 0.3, 14: 0.4, 28: 0.6, 60: 1.6}, "N"),
    # still grade 4 on day 28, first seen below on day 35: persisted beyond day 28 -> DLT
    ({1: 0.3, 28: 0.4, 35: 1.2, 60: 1.6}, "Y"),
])
def test_cytopenia_duration_is_read_from_the_blood_counts(counts, dlt, protocol):
    """cd7-zz-phase1 X4: grade 4 cytopenia counts only if it persists beyond day 28; the AE
    record (day 1-60) alone would make every case a DLT."""
    adsl = build_adsl(_neutropenia(counts), protocol).set_index("USUBJID")
    assert adsl.loc["S5", "DLTFL"] == dlt
