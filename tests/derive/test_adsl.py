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


# --- disposition reasons, prior therapy, DLT events, MRD status (issue 11) -------------------

# subject: DCSREAS, DCSREASP, SCRFCRIT (conftest: S6 DSTERM "ineligible" names no criterion)
DISPOSITION = {
    "S1": (None, None, None),                    # COMPLETED
    "S2": ("DEATH", "disease", None),
    "S4": ("DEATH", "infection", None),
    "S6": ("SCREEN FAILURE", "ineligible", None),
    "S3": (None, None, None),                    # no disposition yet: ONGOING
}


def _text(value):
    return value if isinstance(value, str) else None


@pytest.mark.parametrize("subject", sorted(DISPOSITION))
def test_reason_for_discontinuation(adsl, subject):
    row = adsl.loc[subject]
    assert (_text(row["DCSREAS"]), _text(row["DCSREASP"]),
            _text(row["SCRFCRIT"])) == DISPOSITION[subject]


@pytest.mark.parametrize(("term", "criteria"), [
    ("Screen failure: criteria not met I2", "I2"),                        # virtual patients
    ("Screen failure: criteria not met A3, B2", "A3, B2"),
    ("Screen failure: criteria not met: A1 ecog = 3 (ECOG 0-2, adult); B2 true (Not in "
     "the registration: uncontrolled active infection)", "A1, B2"),        # web screening page
    ("Screen failure: criteria not met Z9", None),                        # not a criterion of it
])
def test_screen_failure_gives_the_failed_criterion(domains, protocol, term, criteria):
    ds = domains["DS"]
    ds.loc[ds["USUBJID"] == "S6", "DSTERM"] = term
    row = build_adsl(domains, protocol).set_index("USUBJID").loc["S6"]
    assert row["DCSREAS"] == "SCREEN FAILURE"
    assert row["DCSREASP"] == term
    assert _text(row["SCRFCRIT"]) == criteria


def test_lost_to_follow_up_before_a_later_record_is_the_reason(domains, protocol):
    ds = domains["DS"]
    extra = pd.DataFrame([{"STUDYID": "cd7-zz-phase1", "USUBJID": "S5",
                           "DSDECOD": "LOST TO FOLLOW-UP", "DSTERM": "moved away",
                           "DSSTDTC": "2024-08-29", "DSSEQ": 1}])
    domains["DS"] = pd.concat([ds, extra], ignore_index=True)
    row = build_adsl(domains, protocol).set_index("USUBJID").loc["S5"]
    assert (row["EOSSTT"], row["DCSREAS"], row["DCSREASP"]) == ("DISCONTINUED",
                                                                "LOST TO FOLLOW-UP", "moved away")


def test_prior_lines_and_prior_transplant(domains, protocol):
    from .conftest import day

    cm = pd.DataFrame([
        # S1: a two-drug regimen started together, then a third drug: 2 lines
        {"USUBJID": "S1", "CMTRT": "Vincristine", "CMCAT": "PRIOR ANTICANCER THERAPY",
         "CMSTDTC": "2023-03-01"},
        {"USUBJID": "S1", "CMTRT": "Dexamethasone", "CMCAT": "PRIOR ANTICANCER THERAPY",
         "CMSTDTC": "2023-03-01"},
        {"USUBJID": "S1", "CMTRT": "Nelarabine", "CMCAT": "PRIOR ANTICANCER THERAPY",
         "CMSTDTC": "2023-09-01"},
        # after the first infusion: not prior, whatever its category
        {"USUBJID": "S1", "CMTRT": "Venetoclax", "CMCAT": "PRIOR ANTICANCER THERAPY",
         "CMSTDTC": day("S1", 60)},
        # S2: one undated prior therapy (1 line); tocilizumab is no anticancer therapy
        {"USUBJID": "S2", "CMTRT": "Azacitidine", "CMCAT": "PRIOR ANTICANCER THERAPY",
         "CMSTDTC": None},
        {"USUBJID": "S2", "CMTRT": "TOCILIZUMAB", "CMCAT": "CRS/ICANS MANAGEMENT",
         "CMSTDTC": day("S2", 3)},
    ])
    cm.insert(0, "STUDYID", "cd7-zz-phase1")
    pr = domains["PR"]
    domains["PR"] = pd.concat([pr, pd.DataFrame([
        {"STUDYID": "cd7-zz-phase1", "USUBJID": "S2", "PRTRT": "ALLOGENEIC HSCT",
         "PRSTDTC": "2023-05-01", "PRSEQ": 1}])], ignore_index=True)
    domains["CM"] = cm
    adsl = build_adsl(domains, protocol).set_index("USUBJID")
    assert adsl.loc["S1", "PRLINES"] == 2.0
    assert adsl.loc["S2", "PRLINES"] == 1.0
    assert pd.isna(adsl.loc["S3", "PRLINES"])            # nothing recorded: not "0"
    assert adsl.loc["S2", "PRHSCTFL"] == "Y"
    assert _text(adsl.loc["S3", "PRHSCTFL"]) is None      # HSCT on day 45: after, not prior
    assert adsl.loc["S3", "HSCTFL"] == "Y"


def test_no_treatment_history_is_not_collected(adsl):
    assert adsl["PRLINES"].isna().all()
    assert adsl["PRHSCTFL"].isna().all()


def test_the_dlt_event_per_patient(adsl):
    s2 = adsl.loc["S2"]   # grade 3 pneumonitis day 5-15: non-hematologic grade >= 3 (D3)
    assert (s2["DLTFL"], s2["DLTTERM"], s2["DLTDY"], s2["DLTRULE"]) == (
        "Y", "Pneumonitis grade 3", 5.0, "D3")
    s4 = adsl.loc["S4"]   # grade 3 CRS resolved within 72 h: excused, no DLT event
    assert s4["DLTFL"] == "N" and _text(s4["DLTTERM"]) is None and pd.isna(s4["DLTDY"])


def test_mrd_status_in_remission(domains, protocol):
    from celltrial.derive import build_adlb, build_adrs
    from celltrial.derive.adsl import with_mrd_status

    adsl = build_adsl(domains, protocol)
    out = with_mrd_status(adsl, build_adrs(domains, adsl), build_adlb(domains, adsl))
    status = out.set_index("USUBJID")["MRDSTAT"]
    assert status["S1"] == "NEGATIVE"   # CR d28, T-ALL, flow MRD 1e-5 < 1e-4 on day 28
    assert status["S2"] == "POSITIVE"   # CRi d28, AML, flow MRD 0.2% >= 0.1% on day 28
    assert status["S3"] is None         # CR without an MRD result: not recorded
    assert status["S5"] is None         # no remission


def test_mrd_status_without_any_remission_is_empty(domains, protocol):
    from celltrial.derive import build_adlb, build_adrs
    from celltrial.derive.adsl import with_mrd_status

    domains["RS"] = domains["RS"].assign(RSSTRESC="NR", RSORRES="NR")
    adsl = build_adsl(domains, protocol)
    out = with_mrd_status(adsl, build_adrs(domains, adsl), build_adlb(domains, adsl))
    assert out["MRDSTAT"].isna().all()
