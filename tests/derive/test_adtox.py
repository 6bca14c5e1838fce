"""ADTOX (ICAHT per patient with its censoring, T/NK aplasia durations) and the ADSL flags of
issue 13 (ITTFL, tocilizumab and corticosteroid use from CM/PR), on the hand-made study of
conftest.py with the records each test adds."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from celltrial.derive.adrs import build_adrs
from celltrial.derive.adsl import build_adsl
from celltrial.derive.adtox import build_adtox, icaht_censoring, medication_flags
from celltrial.derive.analysis import derive_datasets

from .conftest import STUDY, day, make_domains


def _lb(rows: list[tuple[str, int, str, float, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"STUDYID": STUDY, "USUBJID": s, "LBTESTCD": t, "LBTEST": t,
                          "LBCAT": "HEMATOLOGY", "LBSPEC": "BLOOD", "LBSTRESN": v,
                          "LBORRES": str(v), "LBSTRESU": u, "LBORRESU": u, "LBDTC": day(s, n)}
                         for s, n, t, v, u in rows])


G = "10^9/L"
EXTRA_LB = [
    # S1 (no censoring): ANC 0.4 on day 7, carried to day 30 -> 24 days -> early grade 3;
    # day 45 0.9 and day 60 0.8 -> late grade 2 (<= 1.0 twice)
    ("S1", 45, "NEUT", 0.9, G), ("S1", 60, "NEUT", 0.8, G),
    # S2 (relapse day 60): ANC <= 0.1 on days 2-8 (7 days) -> early grade 4; late 1.2, 1.4 then
    # 0.05 twice after the relapse -> late grade 1, not 4
    ("S2", 0, "NEUT", 1.0, G), ("S2", 2, "NEUT", 0.05, G), ("S2", 9, "NEUT", 0.6, G),
    ("S2", 40, "NEUT", 1.2, G), ("S2", 50, "NEUT", 1.4, G), ("S2", 70, "NEUT", 0.05, G),
    ("S2", 80, "NEUT", 0.05, G),
    # S3 (allogeneic HSCT day 45): day 0 1.2, day 3 0.3, day 10 0.8 -> days 3-9 = 7 -> early
    # grade 2; late 0.9 on days 35 and 40, 0.05 after the HSCT -> late grade 2
    ("S3", 0, "NEUT", 1.2, G), ("S3", 3, "NEUT", 0.3, G), ("S3", 10, "NEUT", 0.8, G),
    ("S3", 35, "NEUT", 0.9, G), ("S3", 40, "NEUT", 0.9, G), ("S3", 50, "NEUT", 0.05, G),
    ("S3", 55, "NEUT", 0.05, G),
    # S4 (died day 70): ANC measured in cells/uL: 400/uL on day 1, 2000/uL from day 4 -> 3 days
    ("S4", 1, "NEUT", 400.0, "cells/uL"), ("S4", 4, "NEUT", 2000.0, "cells/uL"),
    # aplasia: S1 CD4 < 200 from day 14, recovered (2 values >= 200) on day 90
    ("S1", 0, "CD4ABS", 450.0, "cells/uL"), ("S1", 14, "CD4ABS", 20.0, "cells/uL"),
    ("S1", 60, "CD4ABS", 150.0, "cells/uL"), ("S1", 90, "CD4ABS", 210.0, "cells/uL"),
    ("S1", 120, "CD4ABS", 260.0, "cells/uL"),
    # S1 CD8 given in 10^9/L: 0.05 = 50/uL < 100 on day 14, ongoing at day 28
    ("S1", 0, "CD8ABS", 0.4, G), ("S1", 14, "CD8ABS", 0.05, G), ("S1", 28, "CD8ABS", 0.08, G),
    # S3 CD3 < 200 from day 14; counts on and after the HSCT (day 45) are not read
    ("S3", 0, "CD3ABS", 800.0, "cells/uL"), ("S3", 14, "CD3ABS", 50.0, "cells/uL"),
    ("S3", 30, "CD3ABS", 100.0, "cells/uL"), ("S3", 50, "CD3ABS", 600.0, "cells/uL"),
    ("S3", 60, "CD3ABS", 700.0, "cells/uL"),
    # S2 NK never below 50/uL
    ("S2", 0, "NKABS", 200.0, "cells/uL"), ("S2", 14, "NKABS", 120.0, "cells/uL"),
    ("S2", 28, "NKABS", 150.0, "cells/uL"),
]


@pytest.fixture(scope="module")
def study():
    from celltrial.protocols import load

    domains = make_domains()
    domains["LB"] = pd.concat([domains["LB"], _lb(EXTRA_LB)], ignore_index=True)
    protocol = load(STUDY)
    adsl = build_adsl(domains, protocol)
    adrs = build_adrs(domains, adsl)
    return domains, protocol, adsl, adrs, build_adtox(domains, adsl, adrs)


def _param(adtox: pd.DataFrame, paramcd: str) -> pd.DataFrame:
    return adtox[adtox["PARAMCD"] == paramcd].set_index("USUBJID")


# subject -> (early grade, days <= 0.5, days <= 0.1, censoring day, censoring event)
EARLY = {"S1": (3, 24, 0, math.nan, ""), "S2": (4, 7, 7, 60.0, "relapse_or_progression"),
         "S3": (2, 7, 0, 45.0, "hsct"), "S4": (1, 3, 0, 70.0, "death")}


@pytest.mark.parametrize("subject", sorted(EARLY))
def test_early_icaht_per_patient(study, subject):
    grade, d05, d01, censday, censevt = EARLY[subject]
    row = _param(study[4], "EICAHT").loc[subject]
    assert (row["AVAL"], row["DAYS05"], row["DAYS01"]) == (grade, d05, d01)
    assert (math.isnan(censday) and math.isnan(row["CENSDY"])) or row["CENSDY"] == censday
    assert row["CENSEVT"] == censevt


# late ICAHT: counting stops at the censoring day (relapse for S2, HSCT for S3)
LATE = {"S1": 2, "S2": 1, "S3": 2}


@pytest.mark.parametrize("subject", sorted(LATE))
def test_late_icaht_stops_at_censoring(study, subject):
    assert _param(study[4], "LICAHT").loc[subject, "AVAL"] == LATE[subject]


def test_no_anc_no_icaht_row(study):
    assert "S5" not in _param(study[4], "EICAHT").index
    assert "S4" not in _param(study[4], "LICAHT").index  # no ANC after day 30


def test_icaht_censoring_takes_the_first_event(study):
    domains, _, adsl, adrs, _ = study
    cens = icaht_censoring(domains, adsl, adrs).set_index("USUBJID")
    # S3 relapses on day 120 after its HSCT on day 45; S7 dies on day 10
    assert cens.loc["S3", "CENSEVT"] == "hsct" and cens.loc["S3", "CENSDY"] == 45
    assert cens.loc["S7", "CENSEVT"] == "death" and cens.loc["S7", "CENSDY"] == 10
    assert "S1" not in cens.index


# marker row -> (APLFL, AVAL, CNSR, onset, recovery, nadir, threshold)
APLASIA = {
    ("APLCD4", "S1"): ("Y", 76.0, 0, 14.0, 90.0, 20.0, 200.0),
    ("APLCD8", "S1"): ("Y", 14.0, 1, 14.0, math.nan, 50.0, 100.0),
    ("APLCD3", "S3"): ("Y", 16.0, 1, 14.0, math.nan, 50.0, 200.0),
    ("APLNK", "S2"): ("N", math.nan, None, math.nan, math.nan, 120.0, 50.0),
}


def _same(a: object, b: object) -> bool:
    if isinstance(b, float) and math.isnan(b):
        return a is None or (isinstance(a, float) and math.isnan(a))
    return a == b


@pytest.mark.parametrize("key", sorted(APLASIA))
def test_aplasia_durations(study, key):
    paramcd, subject = key
    row = _param(study[4], paramcd).loc[subject]
    got = (row["APLFL"], row["AVAL"], row["CNSR"], row["ONSETDY"], row["RECOVDY"], row["NADIR"],
           row["THRESH"])
    expected = APLASIA[key]
    assert all(_same(g, e) or (e is None and (g is None or g != g)) for g, e in
               zip(got, expected)), (got, expected)
    assert row["THRSRC"]


def test_aplasia_ongoing_at_hsct_is_censored_there(study):
    row = _param(study[4], "APLCD3").loc["S3"]
    assert row["CENSEVT"] == "hsct" and row["CENSDY"] == 45


def _with(domains: dict, name: str, rows: list[dict]) -> dict:
    frame = pd.DataFrame([{"STUDYID": STUDY, **r} for r in rows])
    return {**domains, name: pd.concat([domains.get(name, pd.DataFrame()), frame],
                                       ignore_index=True)}


def test_tocilizumab_and_corticosteroid_flags():
    from celltrial.protocols import load

    domains = make_domains()
    domains = _with(domains, "CM", [
        {"USUBJID": "S1", "CMTRT": "Actemra", "CMDECOD": "TOCILIZUMAB",
         "CMCAT": "CRS/ICANS MANAGEMENT", "CMSTDTC": day("S1", 3)},
        {"USUBJID": "S1", "CMTRT": "dexa", "CMDECOD": "DEXAMETHASONE",
         "CMCAT": "CRS/ICANS MANAGEMENT", "CMSTDTC": day("S1", 5)},
        # premedication before the infusion: not toxicity management
        {"USUBJID": "S3", "CMTRT": "hydrocortisone", "CMDECOD": "HYDROCORTISONE",
         "CMCAT": "SUPPORTIVE CARE", "CMSTDTC": day("S3", -1)},
        # no standardized name: the reported name is read (case-insensitive)
        {"USUBJID": "S5", "CMTRT": "methylprednisolone", "CMDECOD": None,
         "CMCAT": "SUPPORTIVE CARE", "CMSTDTC": day("S5", 8)},
        # screen failure: never infused, never flagged
        {"USUBJID": "S6", "CMTRT": "tocilizumab", "CMDECOD": "TOCILIZUMAB",
         "CMCAT": "CRS/ICANS MANAGEMENT", "CMSTDTC": "2024-01-15"},
    ])
    # the virtual patients and some sites record CRS treatment as a procedure
    domains = _with(domains, "PR", [
        {"USUBJID": "S4", "PRTRT": "TOCILIZUMAB", "PRSTDTC": day("S4", 2)},
        {"USUBJID": "S4", "PRTRT": "CORTICOSTEROIDS", "PRSTDTC": day("S4", 3)},
    ])
    adsl = build_adsl(domains, load(STUDY)).set_index("USUBJID")
    expected = {"S1": ("Y", 3, "Y", 5), "S3": ("N", None, "N", None),
                "S4": ("Y", 2, "Y", 3), "S5": ("N", None, "Y", 8), "S6": ("N", None, "N", None)}
    for subject, (toci, toci_day, cort, cort_day) in expected.items():
        row = adsl.loc[subject]
        assert (row["TOCIFL"], row["CORTFL"]) == (toci, cort), subject
        for got, want in ((row["TOCISTDY"], toci_day), (row["CORTSTDY"], cort_day)):
            assert (want is None and math.isnan(got)) or got == want, subject


def test_medication_flags_without_cm_or_pr():
    from celltrial.protocols import load

    domains = {k: v for k, v in make_domains().items() if k not in ("CM", "PR")}
    adsl = build_adsl(domains, load(STUDY))
    flags = medication_flags(domains, adsl)
    assert set(flags["TOCIFL"]) == {"N"} and set(flags["CORTFL"]) == {"N"}


def test_itt_keeps_enrolled_patients_never_infused():
    """S8 is enrolled and assigned DL2 but never infused (product failure): in the ITT set,
    not in the safety set; S6 (screen failure) is in neither."""
    from celltrial.protocols import load

    domains = make_domains()
    s8 = domains["DM"].iloc[[0]].assign(USUBJID="S8", SUBJID="S8", ARMCD="DL2",
                                        RFSTDTC=None, RFPENDTC="2024-03-01")
    domains["DM"] = pd.concat([domains["DM"], s8], ignore_index=True)
    s9 = domains["DM"].iloc[[0]].assign(USUBJID="S9", SUBJID="S9", ARMCD="NOTASSGN",
                                        RFSTDTC=None, RFPENDTC="2024-03-01")
    domains["DM"] = pd.concat([domains["DM"], s9], ignore_index=True)
    adsl = build_adsl(domains, load(STUDY)).set_index("USUBJID")
    assert adsl.loc["S8", ["ENRLFL", "ITTFL", "SAFFL"]].tolist() == ["Y", "Y", "N"]
    assert adsl.loc["S6", ["ENRLFL", "ITTFL", "SAFFL"]].tolist() == ["N", "N", "N"]
    assert adsl.loc["S9", ["ENRLFL", "ITTFL"]].tolist() == ["Y", "N"]  # no dose level
    assert adsl.loc["S1", ["ITTFL", "SAFFL"]].tolist() == ["Y", "Y"]


def test_adsl_carries_icaht_grades_from_adtox():
    domains = make_domains()
    domains["LB"] = pd.concat([domains["LB"], _lb(EXTRA_LB)], ignore_index=True)
    from celltrial.protocols import load

    datasets = derive_datasets(domains, load(STUDY))
    adsl = datasets["adsl"].set_index("USUBJID")
    assert adsl.loc["S2", "EICAHTGR"] == 4 and adsl.loc["S2", "LICAHTGR"] == 1
    assert math.isnan(adsl.loc["S5", "EICAHTGR"])
    assert "adtox" in datasets


def test_cd7_safety_summary_in_endpoints_json_and_summary(tmp_path):
    import json

    from celltrial.derive import analyze, write_analysis
    from celltrial.protocols import load

    domains = make_domains()
    domains["LB"] = pd.concat([domains["LB"], _lb(EXTRA_LB)], ignore_index=True)
    write_analysis(analyze(domains, load(STUDY)), tmp_path)
    summary = json.loads((tmp_path / "endpoints.json").read_text())["cd7_safety"]
    assert summary["infused"] == 6
    assert summary["early_icaht"]["by_grade"] == {"0": 0, "1": 1, "2": 1, "3": 1, "4": 1}
    assert summary["early_icaht"]["grade_3_or_more"] == 2
    assert summary["late_icaht"]["by_grade"] == {"0": 0, "1": 1, "2": 2, "3": 0, "4": 0}
    assert summary["aplasia"]["APLCD4"]["median_days"] == 76.0
    assert summary["aplasia"]["APLCD3"]["median_days"] is None   # ongoing: not reached
    assert summary["aplasia"]["APLNK"]["aplastic"] == 0
    assert summary["gvhd"] == {"product_origin": "autologous", "gvhd_aes": 0, "reason":
                               "not assessed: autologous product (GVHD AEs recorded: 0, e.g. "
                               "after an allogeneic HSCT)"}
    text = (tmp_path / "summary.md").read_text()
    assert "Early ICAHT (EHA/EBMT 2023): 4 assessed of 6 infused" in text
    assert "Acute GVHD: not assessed: autologous product" in text
    assert (tmp_path / "adtox.parquet").exists() and (tmp_path / "adtox.csv").exists()


def test_itt_response_rate_counts_non_infused_as_non_responders():
    """ORR of cd7-zz-phase1 on the hand-made study: responders among the efficacy-evaluable
    set, and the same responders over the ITT set, where S8 (enrolled, assigned, never
    infused) is a non-responder."""
    from celltrial.derive.endpoints import compute_endpoint
    from celltrial.protocols import load

    domains = make_domains()
    s8 = domains["DM"].iloc[[0]].assign(USUBJID="S8", SUBJID="S8", ARMCD="DL2",
                                        RFSTDTC=None, RFPENDTC="2024-03-01")
    domains["DM"] = pd.concat([domains["DM"], s8], ignore_index=True)
    protocol = load(STUDY)
    datasets = derive_datasets(domains, protocol)
    endpoint = next(e for e in protocol.endpoints if e.derivation in ("orr", "remission_rate"))
    result = compute_endpoint(datasets, endpoint, protocol)
    assert result.status == "ok", result.reason
    itt = result.estimates["itt"]
    assert itt["n"] == 7 and itt["not_infused"] == 1      # S1-S5, S7 infused; S8 not
    assert itt["x"] == result.estimates["x"]               # the same responders
    assert itt["rate"] == pytest.approx(itt["x"] / 7)
    assert result.n == 6


def test_infection_density_by_window():
    """S1 lung infection day 10 and S2 sepsis day 40 (CTCAE SOC Infections and infestations);
    pneumonitis (S2, respiratory SOC) is not an infection. Days at risk 0-28: S1 29, S2 29,
    S3 29, S4 29, S5 29, S7 11 (died day 10) = 156; 29-90: S1 62, S2 62, S3 62, S4 42 (died
    day 70), S5 62, S7 0 = 290."""
    from celltrial.derive.adae import build_adae
    from celltrial.derive.adtox import infection_density_by_window
    from celltrial.protocols import load

    domains = _with(make_domains(), "AE", [
        {"USUBJID": "S1", "AETERM": "pneumonia", "AEDECOD": "Lung infection", "AETOXGR": 3,
         "AETOXSCL": "CTCAE v5.0", "AESTDTC": day("S1", 10), "AEENDTC": day("S1", 20)},
        {"USUBJID": "S2", "AETERM": "sepsis", "AEDECOD": "Sepsis", "AETOXGR": 4,
         "AETOXSCL": "CTCAE v5.0", "AESTDTC": day("S2", 40), "AEENDTC": day("S2", 45)},
        {"USUBJID": "S6", "AETERM": "cold", "AEDECOD": "Upper respiratory infection",
         "AETOXGR": 2, "AETOXSCL": "CTCAE v5.0", "AESTDTC": "2024-01-15"},
    ])
    adsl = build_adsl(domains, load(STUDY))
    windows = infection_density_by_window(build_adae(domains, adsl), adsl)
    assert [w["window"] for w in windows] == [[0, 28], [29, 90]]
    assert [w["infections"] for w in windows] == [1, 1]
    assert [w["patient_days"] for w in windows] == [156.0, 290.0]
    assert windows[0]["per_100_patient_days"] == pytest.approx(100 / 156)
    assert windows[1]["per_100_patient_days"] == pytest.approx(100 / 290)


# relapse day of the hand-made study: S2 day 60, S3 day 120, S5 (PD) day 60
# (subject, CD7BLAST samples (day, %)) -> (RLCD7PCT, CD7NRLFL)
CD7_RELAPSE = [
    ("S2", [(-10, 95.0), (62, 5.0)], 5.0, "Y"),          # CD7-negative escape
    ("S2", [(55, 30.0), (70, 80.0)], 30.0, "Y"),         # at the bound (<= 30): negative
    ("S2", [(58, 31.0), (62, 2.0)], 31.0, "N"),          # both 2 days away: the earlier
    ("S2", [(52, 1.0), (75, 1.0)], None, ""),            # outside -7..+14: no result
    ("S3", [(134, 90.0)], 90.0, "N"),                    # +14 is inside the window
    ("S1", [(40, 1.0)], None, ""),                        # no relapse: no flag
]


@pytest.mark.parametrize(("subject", "samples", "pct", "negative"), CD7_RELAPSE)
def test_cd7_negative_relapse(subject, samples, pct, negative):
    from celltrial.derive.adtox import cd7_at_relapse
    from celltrial.protocols import load

    domains = make_domains()
    domains["LB"] = pd.concat([domains["LB"], _lb(
        [(subject, d, "CD7BLAST", v, "%") for d, v in samples])], ignore_index=True)
    adsl = build_adsl(domains, load(STUDY))
    table = cd7_at_relapse(domains, adsl, build_adrs(domains, adsl)).set_index("USUBJID")
    got = table.loc[subject]
    assert (pct is None and math.isnan(got["RLCD7PCT"])) or got["RLCD7PCT"] == pct
    assert got["CD7NRLFL"] == negative


def test_cd7_negative_bound_is_the_protocols_inclusion_bound():
    """CD7_NEGATIVE_AT_OR_BELOW_PCT is the CD7-positivity inclusion bound of every shipped
    protocol (a relapse at or below it would not qualify for CD7-directed therapy again)."""
    from celltrial.derive.adtox import CD7_NEGATIVE_AT_OR_BELOW_PCT
    from celltrial.protocols import list_ids, load

    rules = [c.rule for study in list_ids() for c in load(study).eligibility.inclusion
             if "cd7_blast_pct" in c.rule]
    assert len(rules) == 5
    assert set(rules) == {f"cd7_blast_pct > {CD7_NEGATIVE_AT_OR_BELOW_PCT:g}"}


def test_gvhd_incidence_with_relapse_death_and_hsct_competing():
    """Donor-derived reading of the hand-made study: GVHD (MAGIC) S1 grade 2 on day 20, S4
    grade 1 on day 65 (before its death on day 70), S2 grade 3 on day 70 (after its relapse on
    day 60, which came first). First events: S7 death d10, S1 GVHD d20, S3 HSCT d45, S2 relapse
    d60, S5 PD d60, S4 GVHD d65. Aalen-Johansen: CIF(65) = 5/6 x 1/5 + (5/6 x 4/5 x 3/4 x 1/3)
    x 1/1 = 1/6 + 1/6 = 1/3. Grade II-IV: S4's grade 1 does not count, its death on day 70
    competes: CIF = 1/6."""
    from celltrial.derive.adae import build_adae
    from celltrial.derive.adtox import gvhd_incidence
    from celltrial.protocols import load

    domains = _with(make_domains(), "AE", [
        {"USUBJID": "S1", "AETERM": "skin GVHD", "AEDECOD": "Graft versus host disease",
         "AETOXGR": 2, "AETOXSCL": "MAGIC 2016", "AESTDTC": day("S1", 20)},
        {"USUBJID": "S4", "AETERM": "gut GVHD", "AEDECOD": "Graft versus host disease",
         "AETOXGR": 1, "AETOXSCL": "MAGIC 2016", "AESTDTC": day("S4", 65)},
        {"USUBJID": "S2", "AETERM": "liver GVHD", "AEDECOD": "Graft versus host disease",
         "AETOXGR": 3, "AETOXSCL": "MAGIC 2016", "AESTDTC": day("S2", 70)},
    ])
    protocol = load(STUDY)
    adsl = build_adsl(domains, protocol)
    adrs = build_adrs(domains, adsl)
    adae = build_adae(domains, adsl)
    anyg = gvhd_incidence(adae, adsl, adrs)
    assert anyg["events"] == {"GVHD": 2, "RELAPSE/PROGRESSION": 2, "DEATH": 1,
                              "ALLOGENEIC HSCT": 1}
    assert anyg["landmark_day"] == 65.0          # longest time to first event, below day 100
    # times: S7 10 (death), S1 20 (GVHD), S3 45 (HSCT), S2 60 (relapse), S5 60 (PD), S4 65
    # (GVHD). CIF(65) = 5/6 * 1/5 + (5/6 * 4/5 * 3/4 * 1/3) * 1 = 1/6 + 1/6 = 1/3
    assert anyg["estimate"] == pytest.approx(1 / 3)
    severe = gvhd_incidence(adae, adsl, adrs, min_grade=2)
    assert severe["events"]["GVHD"] == 1 and severe["events"]["DEATH"] == 2
    assert severe["estimate"] == pytest.approx(1 / 6)


# ------------------------------------------------------------------ IEC-HS (IECHS)

def _lab(s: str, n: int, test: str, value: float, unit: str, lo: float | None = None,
         hi: float | None = None, grade: int | None = None) -> dict:
    return {"USUBJID": s, "LBTESTCD": test, "LBTEST": test, "LBCAT": "CHEMISTRY",
            "LBSPEC": "BLOOD", "LBSTRESN": value, "LBORRES": str(value), "LBSTRESU": unit,
            "LBORRESU": unit, "LBSTNRLO": lo, "LBSTNRHI": hi, "LBTOXGR": grade,
            "LBDTC": day(s, n)}


def _xc(s: str, grades: list[tuple[int, int]]) -> list[dict]:
    return [{"USUBJID": s, "XCDTC": day(s, n), "XCCRSGR": g} for n, g in grades]


IECHS_LB = [
    # S1: CRS grade 1 days 2-4; ferritin 500 at infusion, 1500 on day 3 (CRS still at its
    # worst: timing not met), 2000 on day 7 after resolution with fibrinogen 1.2 g/L (< 150
    # mg/dL) -> met on day 7
    _lab("S1", 0, "FERRITIN", 500.0, "ug/L", 20, 300),
    _lab("S1", 3, "FERRITIN", 1500.0, "ug/L", 20, 300),
    _lab("S1", 3, "FIBRINO", 1.0, "g/L", 2.0, 4.0),
    _lab("S1", 7, "FERRITIN", 2000.0, "ug/L", 20, 300),
    _lab("S1", 7, "FIBRINO", 1.2, "g/L", 2.0, 4.0),
    # S2: no CRS (XC all grade 0); ferritin 1000 ng/mL (> 2 x 300) on day 14 with a second dip
    # of neutrophils: grade 4 (day 3), recovered to grade 2 (days 7, 10), grade 4 again (day
    # 14) -> met on day 14; a ferritin on day 70, after the relapse on day 60 (CENSDY), is not
    # read
    _lab("S2", 3, "NEUT", 0.3, "10^9/L", 2.0, 7.5, grade=4),
    _lab("S2", 7, "NEUT", 1.3, "10^9/L", 2.0, 7.5, grade=2),
    _lab("S2", 10, "NEUT", 1.2, "10^9/L", 2.0, 7.5, grade=2),
    _lab("S2", 14, "NEUT", 0.3, "10^9/L", 2.0, 7.5, grade=4),
    _lab("S2", 14, "FERRITIN", 1000.0, "ng/mL", 20, 300),
    _lab("S2", 70, "FERRITIN", 900.0, "ng/mL", 20, 300),
    # S4: CRS grade 3 days 2-3 and grade 2 days 9-10; ferritin 2000 on day 7 (CRS resolving,
    # grade 0 on day 4) but AST 100 U/L = 2.5 x ULN, fibrinogen 2.5 g/L and neutropenia
    # grade 2 as before: no organ criterion -> 0
    _lab("S4", 7, "FERRITIN", 2000.0, "ug/L", 20, 300),
    _lab("S4", 7, "AST", 100.0, "U/L", 10, 40),
    _lab("S4", 7, "FIBRINO", 2.5, "g/L", 2.0, 4.0),
    _lab("S4", 1, "NEUT", 1.1, "10^9/L", 2.0, 7.5, grade=2),
    _lab("S4", 7, "NEUT", 1.0, "10^9/L", 2.0, 7.5, grade=2),
    # S7: ferritin and fibrinogen met on day 5 but no XC (timing unknown) -> 0
    _lab("S7", 5, "FERRITIN", 3000.0, "ug/L", 20, 300),
    _lab("S7", 5, "FIBRINO", 100.0, "mg/dL", 200, 400),
]
IECHS_XC = (_xc("S1", [(0, 0), (2, 1), (3, 1), (4, 1), (5, 0), (6, 0), (7, 0)])
            + _xc("S2", [(n, 0) for n in range(0, 15)])
            + _xc("S4", [(1, 0), (2, 3), (3, 3), (4, 0), (9, 2), (10, 2), (11, 0)]))

# subject -> (AVAL, ONSETDY, DAYSASS)
IECHS = {"S1": (1.0, 7.0, 3), "S2": (1.0, 14.0, 1), "S4": (0.0, math.nan, 1),
         "S7": (0.0, math.nan, 1)}


@pytest.fixture(scope="module")
def iechs():
    from celltrial.protocols import load

    domains = _with(make_domains(), "LB", IECHS_LB)
    domains = _with(domains, "XC", IECHS_XC)
    adsl = build_adsl(domains, load(STUDY))
    adrs = build_adrs(domains, adsl)
    return _param(build_adtox(domains, adsl, adrs), "IECHS")


@pytest.mark.parametrize("subject", sorted(IECHS))
def test_iec_hs_per_patient_from_captured_data(iechs, subject):
    aval, onset, days = IECHS[subject]
    row = iechs.loc[subject]
    assert row["AVAL"] == aval and row["DAYSASS"] == days
    assert _same(row["ONSETDY"], onset)
    assert "Hines" in row["THRSRC"]


def test_no_ferritin_no_iec_hs_row(iechs):
    assert "S3" not in iechs.index and "S5" not in iechs.index


# ------------------------------------------------------------------ acute GVHD (AGVHD)

GVHD_AE = [
    {"USUBJID": "S1", "AETERM": "skin GVHD", "AEDECOD": "Graft versus host disease",
     "AETOXGR": 2, "AETOXSCL": "MAGIC 2016", "AESTDTC": day("S1", 30)},
    # S3: after its HSCT on day 45 -> the graft's, not read
    {"USUBJID": "S3", "AETERM": "gut GVHD", "AEDECOD": "Graft versus host disease",
     "AETOXGR": 3, "AETOXSCL": "MAGIC 2016", "AESTDTC": day("S3", 60)},
    {"USUBJID": "S4", "AETERM": "skin GVHD", "AEDECOD": "Graft versus host disease",
     "AETOXGR": 1, "AETOXSCL": "MAGIC 2016", "AESTDTC": day("S4", 20)},
    {"USUBJID": "S4", "AETERM": "liver GVHD", "AEDECOD": "Graft versus host disease",
     "AETOXGR": 3, "AETOXSCL": "MAGIC 2016", "AESTDTC": day("S4", 40)},
]


@pytest.mark.parametrize(("origin", "expected"), [
    (None, {"S1": (2.0, 30.0), "S4": (3.0, 20.0)}),
    ("donor_new", {"S1": (2.0, 30.0), "S2": (0.0, math.nan), "S3": (0.0, math.nan),
                   "S4": (3.0, 20.0), "S5": (0.0, math.nan), "S7": (0.0, math.nan)}),
    ("unknown", {"S1": (2.0, 30.0), "S2": (0.0, math.nan), "S3": (0.0, math.nan),
                 "S4": (3.0, 20.0), "S5": (0.0, math.nan), "S7": (0.0, math.nan)}),
    ("autologous", {}),
])
def test_gvhd_worst_magic_grade_by_product_origin(origin, expected):
    from celltrial.protocols import load

    domains = _with(make_domains(), "AE", GVHD_AE)
    adsl = build_adsl(domains, load(STUDY))
    rows = _param(build_adtox(domains, adsl, build_adrs(domains, adsl), product_origin=origin),
                  "AGVHD")
    assert sorted(rows.index) == sorted(expected)
    for subject, (grade, onset) in expected.items():
        assert rows.loc[subject, "AVAL"] == grade
        assert _same(rows.loc[subject, "ONSETDY"], onset)
    if "S3" in expected:
        assert rows.loc["S3", "CENSEVT"] == "hsct" and rows.loc["S3", "CENSDY"] == 45


# ------------------------------------------------------------------ a simulated study

def test_simulated_study_has_t_and_nk_aplasia_with_durations():
    """Virtual patients carry the lymphocyte subsets (kinetics.virtual.lymphocyte_subsets), so
    ADTOX of a simulated study has aplasia rows of every marker, with durations."""
    from celltrial.conduct import simulate_study
    from celltrial.protocols import load

    protocol = load("cd7-zz-phase1")
    domains = simulate_study(protocol, 9, 1, data_cut="2026-12-01")
    adtox = derive_datasets(domains, protocol)["adtox"]
    for paramcd in ("APLCD3", "APLCD4", "APLCD8", "APLNK"):
        rows = adtox[adtox["PARAMCD"] == paramcd]
        aplastic = rows[rows["APLFL"] == "Y"]
        assert len(aplastic) >= 3, paramcd
        assert (aplastic["AVAL"] > 0).all() and aplastic["CNSR"].isin([0, 1]).all()
    nk = adtox[(adtox["PARAMCD"] == "APLNK")]
    assert (nk["APLFL"] == "Y").mean() >= 0.8
    assert (adtox["PARAMCD"] == "IECHS").any()
