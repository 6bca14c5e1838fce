"""ADEX (exposure per patient and split fraction) on hand-built EX records, worked out by hand.

Protocol nct04762485: DL1 0.5e6, DL2 1e6 CAR+ cells/kg; split day 0 30%, day 1 70%; hold rules
H1 (CRS >= 2), H2 (any ICANS), H3 (uncontrolled infection); dose tolerance 30%.

| subject | level | fraction 1 (day 0)          | fraction 2 (day 1)                         |
|---------|-------|-----------------------------|--------------------------------------------|
| P1      | DL1   | 1.5e5/kg given, 2 bags      | 3.5e5/kg given, 1 bag                      |
| P2      | DL2   | 3.0e5/kg given, 1 bag       | WITHHELD: H1 (CRS grade 2 seen), dose 0    |
| P3      | DL2   | 4.5e5/kg given (1.5 x plan) | no record: died on day 0 ... (dies day 0)  |
| P4      | DL1   | 1.5e5/kg given              | no record, alive: data cut on day 0        |
| P5      | DL1   | screen failure: no EX, not in ADEX                                        |
"""

from __future__ import annotations

import pandas as pd
import pytest

from celltrial.derive import build_adsl
from celltrial.derive.adex import ADEX_COLUMNS, build_adex, hold_rule_of
from celltrial.protocols import load

STUDY = "nct04762485"
DAY0 = {"P1": "2024-01-10", "P2": "2024-02-01", "P3": "2024-03-01", "P4": "2024-04-01"}


def _day(subject: str, n: int) -> str:
    return (pd.Timestamp(DAY0[subject]) + pd.Timedelta(days=n)).date().isoformat()


def _domains() -> dict[str, pd.DataFrame]:
    dm = pd.DataFrame([
        {"USUBJID": u, "SUBJID": u, "SITEID": "01", "AGE": 40, "SEX": "F", "DISEASE": "T-ALL",
         "ARMCD": level, "RFICDTC": "2024-01-01", "RFSTDTC": DAY0.get(u),
         "DTHDTC": _day("P3", 0) if u == "P3" else None, "DTHFL": "Y" if u == "P3" else None}
        for u, level in (("P1", "DL1"), ("P2", "DL2"), ("P3", "DL2"), ("P4", "DL1"),
                         ("P5", "DL1"))])
    dm.insert(0, "STUDYID", STUDY)

    def ex(u: str, n: int, day: int, dose: float, bags: int, adj: str | None = None) -> dict:
        return {"STUDYID": STUDY, "USUBJID": u, "EXSEQ": n, "EXTRT": "CD7 CAR-T",
                "EXFRACN": n, "EXDOSE": dose, "EXDOSU": "cells/kg", "EXDOSTOT": dose * 60,
                "EXVOL": 0.0 if dose == 0 else 20.0, "EXBAGN": bags,
                "EXSTDTC": _day(u, day), "EXADJ": adj}

    ex_rows = pd.DataFrame([
        ex("P1", 1, 0, 1.5e5, 2), ex("P1", 2, 1, 3.5e5, 1),
        ex("P2", 1, 0, 3.0e5, 1),
        ex("P2", 2, 1, 0.0, 0, "WITHHELD: H1: CRS grade >= 2 after the previous fraction "
                              "(CRS grade 2 seen)"),
        ex("P3", 1, 0, 4.5e5, 1), ex("P4", 1, 0, 1.5e5, 1)])
    ds = pd.DataFrame([
        {"STUDYID": STUDY, "USUBJID": "P5", "DSDECOD": "SCREEN FAILURE",
         "DSTERM": "Screen failure: criteria not met I1", "DSSTDTC": "2024-01-05"},
        {"STUDYID": STUDY, "USUBJID": "P3", "DSDECOD": "DEATH", "DSTERM": "Sepsis",
         "DSSTDTC": _day("P3", 0)}])
    return {"DM": dm, "EX": ex_rows, "DS": ds}


@pytest.fixture(scope="module")
def adex() -> pd.DataFrame:
    protocol = load(STUDY)
    domains = _domains()
    return build_adex(domains, build_adsl(domains, protocol), protocol).set_index(
        ["USUBJID", "EXFRACN"])


def test_one_row_per_infused_patient_and_planned_fraction(adex):
    assert list(adex.reset_index()[list(ADEX_COLUMNS)].columns) == list(ADEX_COLUMNS)
    assert set(adex.reset_index().columns) == set(ADEX_COLUMNS)
    assert sorted(adex.index) == [("P1", 1), ("P1", 2), ("P2", 1), ("P2", 2), ("P3", 1),
                                  ("P3", 2), ("P4", 1), ("P4", 2)]   # P5 never infused


@pytest.mark.parametrize("key, status, planned, actual, ratio, outside", [
    (("P1", 1), "GIVEN", 1.5e5, 1.5e5, 1.0, "N"),      # 0.5e6 x 30%
    (("P1", 2), "GIVEN", 3.5e5, 3.5e5, 1.0, "N"),      # 0.5e6 x 70%
    (("P2", 1), "GIVEN", 3.0e5, 3.0e5, 1.0, "N"),      # 1e6 x 30%
    (("P3", 1), "GIVEN", 3.0e5, 4.5e5, 1.5, "Y"),      # 50% over: outside the 30% tolerance
    (("P2", 2), "WITHHELD", 7.0e5, 0.0, None, None),
])
def test_planned_and_actual_cells_per_kg(adex, key, status, planned, actual, ratio, outside):
    row = adex.loc[key]
    assert row["FRSTAT"] == status
    assert row["PLDOSE"] == pytest.approx(planned)
    assert row["ADOSE"] == pytest.approx(actual)
    assert (None if pd.isna(row["DOSERAT"]) else row["DOSERAT"]) == (
        None if ratio is None else pytest.approx(ratio))
    assert (row["OUTTOLFL"] if isinstance(row["OUTTOLFL"], str) else None) == outside


def test_withheld_second_fraction_names_its_hold_rule(adex):
    row = adex.loc[("P2", 2)]
    assert row["FRSTAT"] == "WITHHELD"
    assert row["HOLDRL"] == "H1"
    assert row["HOLDRSN"] == "H1: CRS grade >= 2 after the previous fraction (CRS grade 2 seen)"
    assert (row["PLANDY"], row["ASTDY"], row["FRACPLN"]) == (1.0, 1.0, 0.7)
    assert adex.loc[("P1", 2), "HOLDRL"] is None


def test_a_planned_fraction_without_a_record_says_why(adex):
    died = adex.loc[("P3", 2)]
    assert died["FRSTAT"] == "NOT RECORDED"
    assert died["HOLDRSN"] == "died on day 0, before the planned day 1"
    assert pd.isna(died["ADOSE"])
    cut = adex.loc[("P4", 2)]
    assert cut["FRSTAT"] == "NOT RECORDED"
    assert cut["HOLDRSN"].startswith("planned day 1 after the last day known alive (0")


def test_bags_and_dose_levels(adex):
    assert adex.loc[("P1", 1), "EXBAGN"] == 2 and adex.loc[("P1", 2), "EXBAGN"] == 1
    assert adex.loc[("P2", 1), "TRT01A"] == "DL2" and adex.loc[("P2", 1), "TRT01AN"] == 2.0


def test_a_fraction_withheld_after_a_withheld_one_carries_its_rule():
    protocol = load(STUDY)
    domains = _domains()
    ex = domains["EX"]
    ex.loc[ex["USUBJID"] == "P2", "EXADJ"] = [None, "WITHHELD: H2: Any ICANS after the previous "
                                                    "fraction (ICANS grade 1 seen)"]
    third = ex[ex["USUBJID"] == "P2"].iloc[[1]].assign(
        EXFRACN=3, EXSEQ=3, EXADJ="WITHHELD: fraction 2 was withheld: later fractions are not "
                                  "given")
    domains["EX"] = pd.concat([ex, third], ignore_index=True)
    adex = build_adex(domains, build_adsl(domains, protocol), protocol).set_index(
        ["USUBJID", "EXFRACN"])
    assert adex.loc[("P2", 2), "HOLDRL"] == "H2"
    assert adex.loc[("P2", 3), "HOLDRL"] == "H2"
    assert pd.isna(adex.loc[("P2", 3), "PLANDY"])   # the protocol plans two fractions


def test_hold_rule_is_read_only_when_the_protocol_has_it():
    assert hold_rule_of("H1: CRS grade >= 2", ["H1"]) == "H1"
    assert hold_rule_of("H9: unknown", ["H1"]) is None
    assert hold_rule_of(None, ["H1"]) is None


def test_no_infusion_gives_an_empty_dataset_with_the_columns():
    protocol = load(STUDY)
    domains = _domains()
    domains["EX"] = domains["EX"].iloc[0:0]
    adex = build_adex(domains, build_adsl(domains, protocol), protocol)
    assert adex.empty and list(adex.columns) == list(ADEX_COLUMNS)
