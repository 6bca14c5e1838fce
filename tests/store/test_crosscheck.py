"""Cross-check warnings of one subject's records (celltrial.store.crosscheck), case by case."""

from __future__ import annotations

import pytest

from celltrial.store.crosscheck import cross_check_warnings

CRS = "Cytokine release syndrome"


def ae(term, grade, start, end=None, voided=None):
    return {"AEDECOD": term, "AETOXGR": grade, "AESTDTC": start, "AEENDTC": end,
            "voided": voided}


def xc(crs, day, icans=None):
    return {"XCCRSGR": crs, "XCICAGR": icans, "XCDTC": day, "voided": None}


def lb(code, grade, day, value=0.3, unit="10^9/L"):
    return {"LBTESTCD": code, "LBTOXGR": grade, "LBDTC": day, "LBSTRESN": value,
            "LBSTRESU": unit, "voided": None}


@pytest.mark.parametrize(("records", "expected"), [
    # daily CRS grade vs the AE log
    ({"XC": [xc(2, "2024-01-12")], "AE": [ae(CRS, 2, "2024-01-11")]}, []),
    ({"XC": [xc(3, "2024-01-12")], "AE": [ae(CRS, 2, "2024-01-11")]},
     ["Daily CRS grade 3 on 2024-01-12 is above the worst CRS grade in the AE log (grade 2)"]),
    ({"XC": [xc(1, "2024-01-12")], "AE": []},
     ["Daily CRS grade 1 on 2024-01-12 is above the worst CRS grade in the AE log (no CRS AE)"]),
    ({"XC": [xc(0, "2024-01-12")], "AE": []}, []),
    ({"XC": [xc(None, "2024-01-12")], "AE": []}, []),                 # not assessed
    ({"XC": [xc(3, "2024-01-12")], "AE": [ae(CRS, 3, "2024-01-11", voided="typo")]},
     ["Daily CRS grade 3 on 2024-01-12 is above the worst CRS grade in the AE log (no CRS AE)"]),
    ({"XC": [xc(0, "2024-01-12", icans=2)], "AE": []},
     ["Daily ICANS grade 2 on 2024-01-12 is above the worst ICANS grade in the AE log "
      "(no ICANS AE)"]),
    # grade >= 3 lab without a covering AE
    ({"LB": [lb("NEUT", 4, "2024-01-15")],
      "AE": [ae("Neutrophil count decreased", 4, "2024-01-13", "2024-01-20")]}, []),
    ({"LB": [lb("NEUT", 4, "2024-01-15")],
      "AE": [ae("Neutrophil count decreased", 4, "2024-01-13")]}, []),   # ongoing
    ({"LB": [lb("NEUT", 2, "2024-01-15")], "AE": []}, []),
    ({"LB": [lb("NEUT", 3, "2024-01-25")],
      "AE": [ae("Neutrophil count decreased", 4, "2024-01-13", "2024-01-20")]},
     ["Grade 3 NEUT (0.3 10^9/L) on 2024-01-25 without an AE of 'Neutrophil count decreased' "
      "covering that day"]),
    ({"LB": [lb("PLAT", 3, "2024-01-15", 20, "10^9/L")],
      "AE": [ae("Neutrophil count decreased", 4, "2024-01-13")]},
     ["Grade 3 PLAT (20 10^9/L) on 2024-01-15 without an AE of 'Platelet count decreased' "
      "covering that day"]),
])
def test_cross_checks(records, expected):
    assert cross_check_warnings(records) == expected
