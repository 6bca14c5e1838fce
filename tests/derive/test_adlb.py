"""ADLB: baseline, change from baseline, fold change and CTCAE v5.0 grade."""

from __future__ import annotations

import pytest

from celltrial.derive import build_adlb, build_adsl


@pytest.fixture()
def adlb(domains, protocol):
    return build_adlb(domains, build_adsl(domains, protocol))


def _row(adlb, subject, test, day):
    rows = adlb[(adlb["USUBJID"] == subject) & (adlb["PARAMCD"] == test) & (adlb["ADY"] == day)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_baseline_and_change(adlb):
    il6 = _row(adlb, "S1", "IL6", 3)
    assert (il6["BASE"], il6["CHG"], il6["R2BASE"]) == (5.0, 245.0, 50.0)
    assert _row(adlb, "S1", "IL6", 0)["ABLFL"] == "Y"
    cd7 = _row(adlb, "S1", "CD7ABS", 14)
    assert (cd7["BASE"], cd7["AVAL"]) == (800.0, 2.0)


@pytest.mark.parametrize(("day", "grade"), [
    (-2, 1),   # ANC 1.5 x10^9/L, LLN 2.0: < LLN - 1.5 -> grade 1
    (7, 4),    # ANC 0.4 x10^9/L: < 0.5 -> grade 4
])
def test_ctcae_grade(adlb, day, grade):
    row = _row(adlb, "S1", "NEUT", day)
    assert row["ATOXGRN"] == grade
    assert row["ATOXDSC"] == "Neutrophil count decreased"


def test_no_grade_without_ctcae_term(adlb):
    assert adlb.loc[adlb["PARAMCD"].isin(["CD7ABS", "IL6", "MRD"]), "ATOXGRN"].isna().all()
