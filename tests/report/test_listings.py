"""The appendix listings (ICH E3 16.2) and the rows that read optional ADaM variables.

On every library study (fixture ``reported``): each listing is in the report, one row per
screened patient / infused patient / treatment-emergent AE of ADSL / ADAE. On one study's
datasets, changed as a derivation would change them: ADSL DCSREAS (ADaM IG reason for
discontinuation) puts the reasons into the disposition; TOCIFL/CORTFL (drugs for CRS/ICANS from
CM) add their rows to Table 14.3.3; a registered MRD outcome measure gives the MRD-negative row
of Table 14.2.1 from endpoints.json.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from celltrial.report.csr import CsrTable, n_pct
from celltrial.report.data import ReportData
from celltrial.report.listings import LISTINGS, adverse_event_listing, disposition_listing
from celltrial.report.sections import build_sections


def tables(rd: ReportData) -> dict[str, CsrTable]:
    return {b.table.number: b.table for s in build_sections(rd) for b in s.blocks
            if b.kind == "table"}


def data(reported, **changed: pd.DataFrame) -> ReportData:
    return ReportData(reported.protocol, {**reported.datasets, **changed}, reported.endpoints)


def test_every_listing_is_in_the_report_with_one_row_per_patient_or_event(reported):
    html = reported.files.html.read_text(encoding="utf-8")
    rd = data(reported)
    for build in LISTINGS:
        listing = build(rd)
        assert f"Listing {listing.number}: {listing.title}" in html
        assert f'id="{listing.anchor}"' in html
    adsl = reported.datasets["adsl"]
    disposition = disposition_listing(rd)
    assert [r.label for r in disposition.rows] == sorted(adsl["USUBJID"])
    failed = adsl.loc[adsl["ENRLFL"] != "Y", "USUBJID"]
    assert {r.label for r in disposition.rows if "screen failure" in r.cells} == set(failed)
    adae = reported.datasets["adae"]
    infused = set(adsl.loc[adsl["SAFFL"] == "Y", "USUBJID"])
    teae = adae[(adae["TRTEMFL"] == "Y") & adae["USUBJID"].isin(infused)]
    listing = adverse_event_listing(rd)
    events = [r for r in listing.rows if not r.group]
    assert len(events) == len(teae)
    assert sorted(r.label for r in events) == sorted(teae["AEDECOD"].astype(str))
    assert sum(r.group for r in listing.rows) == teae["USUBJID"].nunique()


def test_discontinuation_reasons_are_tabulated_where_adsl_carries_them(reported):
    adsl = reported.datasets["adsl"].copy()
    assert {"DCSREAS", "DCSREASP", "SCRFCRIT"} <= set(adsl.columns)  # derived by ADSL
    without = adsl.drop(columns=["DCSREAS", "DCSREASP", "SCRFCRIT"])
    before = tables(data(reported, adsl=without))["14.1.1"]
    assert any("not carried" in note for note in before.footnotes)
    failed = adsl["ENRLFL"] != "Y"
    ids = [c.id for c in reported.protocol.eligibility.inclusion]
    first, second = ids[0], ids[1]
    # hand-set: every screen failure failed the first inclusion criterion, the first of them
    # also the second; the infused patients discontinued by death or lost to follow-up
    adsl["SCRFCRIT"] = pd.Series(np.where(failed, first, None), index=adsl.index, dtype=object)
    if failed.any():
        adsl.loc[adsl.index[failed][0], "SCRFCRIT"] = f"{first}, {second}"
    reasons = np.where(failed, "SCREEN FAILURE",
                       np.where(adsl["DTHFL"] == "Y", "DEATH", "LOST TO FOLLOW-UP"))
    adsl["DCSREAS"] = pd.Series(reasons, index=adsl.index).where(
        (adsl["EOSSTT"] == "DISCONTINUED") | failed)
    table = tables(data(reported, adsl=adsl))["14.1.1"]
    labels = {r.label: r.cells[0] for r in table.rows if r.cells}
    n_failed = int(failed.sum())
    if n_failed:
        by_first = [v for k, v in labels.items() if k.startswith(f"{first} (inclusion): ")]
        by_second = [v for k, v in labels.items() if k.startswith(f"{second} (inclusion): ")]
        assert by_first == [n_pct(n_failed, len(adsl))]
        assert by_second == [n_pct(1, len(adsl))]
    stopped = adsl[(adsl["SAFFL"] == "Y") & (adsl["EOSSTT"] == "DISCONTINUED")]
    died = int((stopped["DTHFL"] == "Y").sum())
    if died:
        assert labels["Death"] == n_pct(died, len(adsl))
    assert any("DCSREAS" in note for note in table.footnotes)
    assert any("SCRFCRIT" in note for note in table.footnotes)
    listing = disposition_listing(data(reported, adsl=adsl))
    assert "Reason" in listing.columns
    assert not any("not carried" in note for note in listing.footnotes)
    if n_failed:
        reason = listing.columns.index("Reason")
        row = next(r for r in listing.rows if r.label == adsl.loc[failed, "USUBJID"].iloc[0])
        assert row.cells[reason] == f"Screen failure: criteria not met {first}, {second}"


def test_tocilizumab_and_steroid_rows_read_the_adsl_flags(reported):
    adsl = reported.datasets["adsl"].copy()
    for var in ("TOCIFL", "TOCISTDY", "CORTFL", "CORTSTDY"):
        adsl = adsl.drop(columns=var, errors="ignore")
    without = tables(data(reported, adsl=adsl))["14.3.3"]
    assert "Tocilizumab" not in {r.label for r in without.rows}
    assert any("ADSL has no TOCIFL/CORTFL" in note for note in without.footnotes)
    infused = adsl["SAFFL"] == "Y"
    if not infused.any():
        return
    given = infused & (infused.cumsum() % 2 == 1)  # the 1st, 3rd, ... infused patient
    adsl["TOCIFL"] = np.where(given, "Y", "N")
    adsl["TOCISTDY"] = np.where(given, 3.0, np.nan)
    adsl["CORTFL"] = "N"
    adsl["CORTSTDY"] = np.nan
    table = tables(data(reported, adsl=adsl))["14.3.3"]
    rows = {r.label: r.cells for r in table.rows}
    n_infused = int(infused.sum())
    assert rows["Tocilizumab"][-1] == n_pct(int(given.sum()), n_infused)
    assert rows["Corticosteroids"][-1] == "0"
    labels = [r.label for r in table.rows]
    first_dose = table.rows[labels.index("Tocilizumab") + 1]
    assert first_dose.label == "First dose, day after infusion: median (min, max)"
    assert first_dose.cells[-1] == "3 (3, 3)"
    assert any("TOCIFL" in note for note in table.footnotes)


def test_mrd_negative_remission_by_dose_level_from_the_registered_outcome(reported):
    table = tables(data(reported))["14.2.1"]
    if not table.rows:  # no efficacy-evaluable patient
        return
    mrd = [e for e in reported.endpoints
           if e["derivation"] in ("mrd_negative_rate", "molecular_remission_rate")]
    rows = [r for r in table.rows if ("MRD-negative" in r.label or "Molecular" in r.label)
            and "per patient" not in r.label]
    ok = [e for e in mrd if e["status"] == "ok"]
    assert len(rows) == len(ok)
    for e, row in zip(ok, rows, strict=True):
        by = e["estimates"]["by_dose_level"]
        total = row.cells[-1]
        assert total == n_pct(e["estimates"]["x"], e["n"])
        for level, v in by.items():
            # the dose-level columns carry the endpoint's own counts
            assert n_pct(v["x"], v["n"]) in row.cells, level
    if not mrd:
        assert any(re.search("(?i)no MRD outcome measure is registered", n)
                   for n in table.footnotes)
