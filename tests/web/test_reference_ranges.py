"""Issue 10 part 3: reference ranges are stored in the SDTM variables of their unit.

SDTMIG 3.4 LB: LBORNRLO/LBORNRHI hold the range in the original unit (LBORRESU, next to
LBORRES), LBSTNRLO/LBSTNRHI the same range in the standard unit (LBSTRESU, next to LBSTRESN).
A neutrophil count typed as 400 cells/uL with a lower limit 1800 cells/uL is stored as
LBORRES 400 / LBORNRLO 1800 in cells/uL and LBSTRESN 0.4 / LBSTNRLO 1.8 in 10^9/L
(celltrial.clinical.units), on the web form and through the API alike; the store refuses a
row whose two ranges disagree; ADLB and the SDTM export read the standard-unit range."""

from __future__ import annotations

import pandas as pd
import pytest

from celltrial.clinical import grade_lab
from celltrial.derive.adlb import standard_ranges
from celltrial.errors import StoreError
from celltrial.store import DOMAINS, read_domain, write_record
from celltrial.store.sdtm.convert import to_sdtm
from tests.web.conftest import STUDY, form_token, form_value

S = f"/studies/{STUDY}"
NEUT = "Neutrophil count decreased"


def _row(site, usubjid: str, seq: int) -> dict:
    frame = read_domain(site.store, STUDY, "LB")
    return frame[(frame["USUBJID"] == usubjid) & (frame["LBSEQ"] == seq)].iloc[0].to_dict()


def test_web_form_stores_the_range_as_typed_and_in_the_standard_unit(site) -> None:
    client = site.login("inv01")
    page = client.get(f"{S}/subjects/01-001/labs/new").text
    response = client.post(f"{S}/subjects/01-001/labs/new", data={
        "csrf_token": form_token(page), "submission": form_value(page, "submission"),
        "test": "NEUT", "value": "400", "unit": "cells/uL", "lln": "1800", "uln": "7500",
        "date": "2024-01-12T09:00"})
    assert response.status_code == 200 and "/saved/" in str(response.url)
    seq = int(str(response.url).rsplit("/", 1)[1])
    row = _row(site, "01-001", seq)
    assert (row["LBORRES"], row["LBORRESU"], row["LBORNRLO"], row["LBORNRHI"]) == (
        "400", "cells/uL", 1800.0, 7500.0)
    assert (row["LBSTRESN"], row["LBSTRESU"]) == (pytest.approx(0.4), "10^9/L")
    assert (row["LBSTNRLO"], row["LBSTNRHI"]) == (pytest.approx(1.8), pytest.approx(7.5))
    assert row["LBTOXGR"] == int(grade_lab(NEUT, 0.4, "10^9/L", lln=1.8)) == 4


def test_api_stores_both_ranges_and_a_correction_keeps_them_in_step(site, api_post) -> None:
    created = api_post("inv01", f"/api{S}/labs", {
        "usubjid": "01-002", "test": "NEUT", "value": 1.2, "unit": "10^3/uL", "lln": 2,
        "date": "2024-01-25"})
    assert created.status_code == 201, created.text
    record = created.json()["record"]
    assert (record["LBORNRLO"], record["LBORRESU"]) == (2.0, "10^3/uL")
    assert record["LBSTNRLO"] == pytest.approx(2.0) and record["LBSTRESU"] == "10^9/L"
    seq = record["LBSEQ"]
    fixed = api_post("inv01", f"/api{S}/corrections", {
        "usubjid": "01-002", "domain": "LB", "seq": seq, "version": 1,
        "reason": "the lab's range is 1.5", "changes": {"LBORNRLO": 1.5}})
    assert fixed.status_code == 200, fixed.text
    row = _row(site, "01-002", seq)
    assert (row["LBORNRLO"], row["LBSTNRLO"], row["LBORRESU"], row["LBORRES"]) == (
        1.5, pytest.approx(1.5), "10^3/uL", "1.2")
    assert row["LBTOXGR"] == int(grade_lab(NEUT, 1.2, "10^9/L", lln=1.5)) == 2


def test_the_store_refuses_a_range_in_the_wrong_unit(site) -> None:
    """The issue's row: 400 cells/uL next to LBORNRLO 1.8 (the 10^9/L limit) and LBSTNRLO
    1.8: the two ranges disagree by a factor 1000, nothing is written."""
    before = site.counts()["LB"]
    with pytest.raises(StoreError, match="LBSTNRLO") as refused:
        write_record(site.store, STUDY, "LB", {
            "USUBJID": "01-001", "LBCAT": "HEMATOLOGY", "LBTESTCD": "NEUT",
            "LBTEST": "Neutrophils", "LBORRES": "400", "LBORRESU": "cells/uL",
            "LBSTRESN": 0.4, "LBSTRESU": "10^9/L", "LBORNRLO": 1.8, "LBSTNRLO": 1.8,
            "LBTOXGR": 4, "LBDTC": "2024-01-12"}, user="inv01", reason="test")
    assert "0.0018" in refused.value.message
    assert site.counts()["LB"] == before


def test_adlb_and_the_sdtm_export_read_the_standard_unit_range() -> None:
    lb = pd.DataFrame({
        "USUBJID": ["1", "1", "1"], "STUDYID": ["S"] * 3, "LBSEQ": [1, 2, 3],
        "LBTESTCD": ["NEUT"] * 3, "LBTEST": ["Neutrophils"] * 3, "LBCAT": ["HEMATOLOGY"] * 3,
        "LBORRES": ["400", "0.4", "500"], "LBORRESU": ["cells/uL", "10^9/L", "cells/uL"],
        "LBSTRESN": [0.4, 0.4, 0.5], "LBSTRESU": ["10^9/L"] * 3,
        "LBORNRLO": [1800.0, 1.8, 2000.0], "LBORNRHI": [7500.0, 7.5, None],
        "LBSTNRLO": [1.8, None, None], "LBSTNRHI": [7.5, None, None],
        "LBTOXGR": [4, 4, 4], "LBDTC": ["2024-01-01"] * 3, "LBSPEC": ["BLOOD"] * 3,
        "LBMETHOD": [None] * 3})
    lo, hi = standard_ranges(lb)
    # stored std range; same unit taken as is; before migration 0009: converted from cells/uL
    assert lo.tolist() == pytest.approx([1.8, 1.8, 2.0])
    assert hi.tolist()[:2] == pytest.approx([7.5, 7.5]) and pd.isna(hi.iloc[2])
    frames = {name: pd.DataFrame(columns=list(dict.fromkeys(
        ["STUDYID", "USUBJID", *(v.name for v in DOMAINS[name].variables)])))
        for name in ("DM", "EX", "DS")}
    frames["DM"].loc[0] = {"STUDYID": "S", "USUBJID": "1", "SITEID": "01", "SUBJID": "1"}
    sdtm = to_sdtm({**frames, "LB": lb})["LB"]
    assert sdtm["LBSTNRLO"].tolist() == pytest.approx([1.8, 1.8, 2.0])
    assert sdtm["LBORNRLO"].tolist() == ["1800", "1.8", "2000"]
