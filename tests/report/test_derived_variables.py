"""Report tables that read the derivations of issue 11: ADEX (fractions given or withheld, the
hold rule, bags), ADSL prior therapy, the DLT events, MRD status, and persistence as the
Kaplan-Meier time to loss of detectable CAR-T (endpoints.json "persistence").

On every library study (fixture ``reported``) and on its datasets changed by hand the way a
derivation would change them; the counts are re-read from the datasets.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from celltrial.report.csr import CsrTable, est_ci, n_pct
from celltrial.report.data import ReportData
from celltrial.report.listings import exposure_listing
from celltrial.report.sections import build_sections


def tables(rd: ReportData) -> dict[str, CsrTable]:
    return {b.table.number: b.table for s in build_sections(rd) for b in s.blocks
            if b.kind == "table"}


def data(reported, persistence=None, **changed: pd.DataFrame) -> ReportData:
    payload = json.loads((reported.analysis_dir / "endpoints.json").read_text("utf-8"))
    return ReportData(reported.protocol, {**reported.datasets, **changed}, reported.endpoints,
                      persistence=payload.get("persistence") if persistence is None
                      else persistence)


def rows_of(table: CsrTable) -> dict[str, tuple[str, ...]]:
    return {r.label: r.cells for r in table.rows}


def test_fractions_given_and_withheld_come_from_adex(reported):
    adex = reported.datasets["adex"].copy()
    infused = reported.datasets["adsl"].query("SAFFL == 'Y'")
    if infused.empty:
        assert "14.1.5" not in tables(data(reported))
        return
    assert set(adex["USUBJID"]) == set(infused["USUBJID"])
    split = reported.protocol.intervention.split
    assert sorted(adex.groupby("USUBJID").size().unique()) == [len(split)]
    # hand-set: the last planned fraction of the first patient withheld by the first hold rule
    last = len(split)
    who = adex.loc[adex["EXFRACN"] == last, "USUBJID"].iloc[0]
    at = (adex["USUBJID"] == who) & (adex["EXFRACN"] == last)
    rules = reported.protocol.intervention.hold_rules
    rule = rules[0].id if rules else "H1"
    adex.loc[at, ["FRSTAT", "HOLDRL", "HOLDRSN", "ADOSE"]] = ["WITHHELD", rule, "hand-set", 0.0]
    table = tables(data(reported, adex=adex))["14.1.5"]
    n = len(infused)
    labels = [r.label for r in table.rows]
    heading = labels.index(next(lb for lb in labels if lb.startswith(f"Fraction {last} ")))
    block = table.rows[heading:]
    withheld = next(r for r in block if r.label == "Withheld")
    n_withheld = int(((adex["EXFRACN"] == last) & (adex["FRSTAT"] == "WITHHELD")).sum())
    assert withheld.cells[-1] == n_pct(n_withheld, n)
    expected = (f"Hold rule {rule}: {rules[0].description}" if rules
                else "Hold rule not named in the record")
    assert any(r.label == expected for r in block)
    listing = exposure_listing(data(reported, adex=adex))
    assert listing.columns[-3:] == ("Fractions given", "Fractions not given", "Bags")
    row = next(r for r in listing.rows if r.label == who)
    assert f"{last} withheld ({rule})" in row.cells[-2]


def test_prior_therapy_is_said_not_collected_or_tabulated(reported):
    adsl = reported.datasets["adsl"].copy()
    if not (adsl["SAFFL"] == "Y").any():
        return
    table = tables(data(reported))["14.1.3"]
    assert adsl["PRLINES"].isna().all()  # the virtual patients carry no treatment history
    assert set(rows_of(table)["Prior lines of anticancer therapy"]) == {"not collected"}
    assert any("not collected" in note for note in table.footnotes)
    infused = adsl["SAFFL"] == "Y"
    adsl["PRLINES"] = np.where(infused, 2.0, np.nan)
    adsl["PRHSCTFL"] = pd.Series(np.where(infused & (infused.cumsum() == 1), "Y", None),
                                 index=adsl.index, dtype=object)
    table = tables(data(reported, adsl=adsl))["14.1.3"]
    labels = [r.label for r in table.rows]
    prior = table.rows[labels.index("Prior lines of anticancer therapy"):]
    assert [(r.label, r.cells[-1]) for r in prior[1:3]] == [
        ("n (recorded)", str(int(infused.sum()))), ("Median (min, max)", "2 (2, 2)")]
    assert (prior[4].label, prior[4].cells[-1]) == ("Yes", n_pct(1, int(infused.sum())))


def test_dlt_events_per_patient(reported):
    adsl = reported.datasets["adsl"]
    table = tables(data(reported))["12.5"]
    dlt = adsl[adsl["DLTFL"] == "Y"]
    assert sorted(r.label for r in table.rows) == sorted(dlt["USUBJID"])
    for r in table.rows:
        term = dlt.set_index("USUBJID").loc[r.label, "DLTTERM"]
        assert isinstance(term, str) and term and r.cells[1] == term
    if dlt.empty:
        assert "No infused patient had a DLT" in table.empty_reason


def test_persistence_is_the_kaplan_meier_time_to_loss(reported):
    payload = json.loads((reported.analysis_dir / "endpoints.json").read_text("utf-8"))
    summary = payload["persistence"]
    adtte = reported.datasets["adtte"]
    loss = adtte[adtte["PARAMCD"] == "LOSSQPCR"]
    if loss.empty:
        assert "CARTQPCR" not in summary
        return
    qpcr = summary["CARTQPCR"]
    assert (qpcr["n"], qpcr["events"]) == (len(loss), int((loss["CNSR"] == 0).sum()))
    assert sum(qpcr["censoring"].values()) == int((loss["CNSR"] == 1).sum())
    # the registered persistence outcome measure, where there is one, gives the same median
    for e in reported.endpoints:
        if e["derivation"] == "ck_persistence_qpcr" and e["status"] == "ok":
            assert e["estimate"] is None or math.isclose(e["estimate"], qpcr["median"])
    table = tables(data(reported))["14.4.2"]
    labels = [r.label for r in table.rows]
    block = table.rows[labels.index("CAR transgene by qPCR"):]   # qPCR first, then flow
    rows = {r.label: r.cells for r in reversed(block)}            # the first of each label
    median = rows["Median time to loss, days (95% CI)"][-1]
    if qpcr["median"] is None:
        assert median.startswith("not reached")
    else:
        assert median == est_ci(qpcr["median"], qpcr["median_ci"])
    assert rows["Patients with a quantifiable sample"][-1] == str(qpcr["n"])
    assert any("censored at the last quantifiable sample" in n for n in table.footnotes)
    nca = tables(data(reported))["14.4.1"]
    assert not any("ersistence" in r.label for r in nca.rows)
    html = reported.files.html.read_text("utf-8")
    assert "Persistence: time to loss of detectable CAR transgene" in html
    assert (reported.files.html.parent / "persistence.png").exists()


def test_persistence_without_a_summary_says_why(reported):
    if not (reported.datasets["adsl"]["SAFFL"] == "Y").any():
        return
    table = tables(data(reported, persistence={}))["14.4.2"]
    assert not table.rows
    assert "No infused patient had a quantifiable" in table.empty_reason


def test_mrd_status_per_patient_where_no_mrd_outcome_is_registered(reported):
    if any(e["derivation"] in ("mrd_negative_rate", "molecular_remission_rate")
           for e in reported.endpoints):
        return
    adsl = reported.datasets["adsl"].copy()
    eff = adsl["EFFFL"] == "Y"
    if not eff.any():
        return
    adsl["MRDSTAT"] = pd.Series(np.where(eff & (eff.cumsum() == 1), "NEGATIVE", None),
                                index=adsl.index, dtype=object)
    table = tables(data(reported, adsl=adsl))["14.2.1"]
    rows = rows_of(table)
    assert rows["MRD-negative remission (per patient), n (%)"][-1] == n_pct(1, int(eff.sum()))
    assert any("ADSL MRDSTAT" in n for n in table.footnotes)


def test_iec_hs_and_acute_gvhd_rows_count_adtox(reported):
    """Table 14.3.7 counts ADTOX IECHS (criteria met, day of onset) and AGVHD (MAGIC grade):
    hand-set rows for the first two infused patients, counts re-read from the dataset."""
    infused = reported.datasets["adsl"].query("SAFFL == 'Y'")
    if len(infused) < 2:
        return
    adtox = reported.datasets["adtox"]
    a, b = infused["USUBJID"].iloc[:2]
    base = {"STUDYID": infused["STUDYID"].iloc[0], "TRT01A": infused["TRT01A"].iloc[0]}
    extra = pd.DataFrame([
        {**base, "USUBJID": a, "PARAMCD": "AGVHD", "PARAM": "Acute GVHD", "AVAL": 3.0},
        {**base, "USUBJID": b, "PARAMCD": "AGVHD", "PARAM": "Acute GVHD", "AVAL": 0.0}])
    iechs = adtox[adtox["PARAMCD"] == "IECHS"].copy()
    if iechs.empty:
        iechs = pd.DataFrame([{**base, "USUBJID": u, "PARAMCD": "IECHS", "PARAM": "IEC-HS",
                               "AVAL": 0.0, "ONSETDY": np.nan} for u in (a, b)])
    iechs.loc[iechs["USUBJID"] == a, ["AVAL", "ONSETDY"]] = [1.0, 12.0]
    changed = pd.concat([adtox[~adtox["PARAMCD"].isin(["IECHS", "AGVHD"])], iechs, extra],
                        ignore_index=True)
    table = tables(data(reported, adtox=changed))["14.3.7"]
    labels = [r.label for r in table.rows]
    n = len(infused)
    start = labels.index("IEC-HS criteria met (ASTCT 2023)")
    met = table.rows[start + 2]
    assert met.label == "Criteria met"
    assert met.cells[-1] == n_pct(int((iechs["AVAL"] == 1).sum()), n)
    gvhd = table.rows[labels.index("Acute GVHD (MAGIC), before any HSCT"):]
    assert [r.label for r in gvhd[:5]] == ["Acute GVHD (MAGIC), before any HSCT", "Assessed",
                                           "Any grade", "Grade III-IV", "Fatal"]
    assert gvhd[1].cells[-1] == "2" and gvhd[2].cells[-1] == n_pct(1, n)
    assert gvhd[3].cells[-1] == n_pct(1, n) and gvhd[4].cells[-1] == "0"
    assert any("ASTCT criteria" in f for f in table.footnotes)
