"""The data cut keeps what was known at the end of the cut day, and nothing later."""

from __future__ import annotations

import pandas as pd
import pytest

from celltrial.conduct import apply_data_cut, parse_cut, run_virtual_trial
from celltrial.errors import CelltrialError
from celltrial.protocols import load


def frames() -> dict[str, pd.DataFrame]:
    dm = pd.DataFrame({
        "USUBJID": ["S1", "S2", "S3"], "RFICDTC": ["2025-01-01", "2025-02-01", "2025-07-01"],
        "RFSTDTC": ["2025-01-20", "2025-06-29", "2025-07-20"],
        "RFPENDTC": ["2025-03-01", "2025-12-01", "2025-08-01"],
        "DTHDTC": ["2025-03-01", None, None], "DTHFL": ["Y", "", ""]})
    ae = pd.DataFrame({
        "USUBJID": ["S1", "S1", "S2"], "AETERM": ["CRS", "Sepsis", "CRS"],
        "AETOXGR": [2, 5, 1], "AESTDTC": ["2025-01-22", "2025-02-20", "2025-07-01"],
        "AEENDTC": ["2025-01-25", "2025-03-01", "2025-07-03"],
        "AEOUT": ["RECOVERED/RESOLVED", "FATAL", "RECOVERED/RESOLVED"]})
    ds = pd.DataFrame({"USUBJID": ["S1", "S2"], "DSDECOD": ["DEATH", "COMPLETED"],
                       "DSSTDTC": ["2025-03-01", "2025-12-01"]})
    lb = pd.DataFrame({"USUBJID": ["S1", "S2", "S2", "S3"],
                       "LBDTC": ["2025-01-21T08:00", "2025-06-30", "2025-07-01T09:30",
                                 "2025-07-02"]})
    return {"DM": dm, "AE": ae, "DS": ds, "LB": lb}


# (cut, subjects, S1 dead, S1 sepsis: grade, outcome, end; S2 infused; S2 dispositions)
CASES = [
    ("2025-06-30", ["S1", "S2"], True, (5, "FATAL", "2025-03-01"), True, 0),
    ("2025-02-25", ["S1", "S2"], False, (4, "NOT RECOVERED/NOT RESOLVED", None), False, 0),
    ("2025-12-31", ["S1", "S2", "S3"], True, (5, "FATAL", "2025-03-01"), True, 1),
]


@pytest.mark.parametrize("cut, subjects, dead, sepsis, infused, dispositions", CASES)
def test_cut(cut, subjects, dead, sepsis, infused, dispositions):
    out = apply_data_cut(frames(), cut)
    dm = out["DM"].set_index("USUBJID")
    assert list(dm.index) == subjects
    assert (dm.loc["S1", "DTHFL"] == "Y") == dead
    row = out["AE"][out["AE"]["AETERM"] == "Sepsis"].iloc[0]
    assert (row["AETOXGR"], row["AEOUT"], row["AEENDTC"]) == sepsis
    assert pd.notna(dm.loc["S2", "RFSTDTC"]) == infused
    assert (out["DS"]["USUBJID"] == "S2").sum() == dispositions
    for name, frame in out.items():
        for column in frame.columns:
            if column.endswith("DTC"):
                assert (frame[column].dropna().str.slice(0, 10) <= cut).all(), (name, column)


def test_a_record_on_the_cut_day_is_kept_whatever_its_time():
    out = apply_data_cut(frames(), "2025-07-01")
    assert "2025-07-01T09:30" in set(out["LB"]["LBDTC"])


@pytest.mark.parametrize("later, earlier", [("2026-01-01", "2025-02-25"),
                                            ("2025-06-30", "2025-02-25"),
                                            ("2025-07-02", "2025-07-01")])
def test_cutting_twice_equals_cutting_once_at_the_earlier_day(later, earlier):
    twice = apply_data_cut(apply_data_cut(frames(), later), earlier)
    once = apply_data_cut(frames(), earlier)
    for name in once:
        pd.testing.assert_frame_equal(twice[name], once[name], check_dtype=False)


def test_a_virtual_study_cut_twice_equals_one_cut():
    domains = run_virtual_trial(load("cd7-aml-mll"), 12, 4, data_cut="2026-12-01").domains
    twice = apply_data_cut(domains, "2025-09-30")
    once = run_virtual_trial(load("cd7-aml-mll"), 12, 4, data_cut="2026-12-01").domains
    once = apply_data_cut(once, "2025-09-30")
    for name in once:
        pd.testing.assert_frame_equal(twice[name], once[name])


@pytest.mark.parametrize("text", ["2025-13-01", "yesterday", "01/02/2025"])
def test_a_bad_cut_is_refused(text):
    with pytest.raises(CelltrialError, match="ISO 8601 date"):
        parse_cut(text)
