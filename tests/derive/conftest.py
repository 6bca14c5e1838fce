"""Hand-made SDTM frames for seven subjects whose analysis values are worked out by hand.

Day numbers below are days from each subject's first infusion (day 0).

- S1 (DL1): CR d28, d90, d180; alive, last contact d365; CRS G1 d2-d4; qPCR BLQ profile;
  ADA negative d0, positive d28. BOR CR; OS censored 365; PFS censored 180; DOR 28->180 = 152
  censored; CIR 152 censored; EFS censored 180.
- S2 (DL1): CRi d28, RELAPSE d60, died d100; pneumonitis G3 d5-d15 (a DLT). BOR CRi; OS 100
  event; PFS 60 event; DOR 32 event; CIR 32 relapse (1); EFS 60 event.
- S3 (DL2): CR d28, allo-HSCT d45, RELAPSE d120, alive d200; EM lesion at baseline, EM CR d28.
  HSCT ignored / censored: PFS 120 event / 45 censored; DOR 92 event / 17 censored; CIR 92 (1) /
  17 (0); EFS 120 event / 45 censored; OS 200 censored either way.
- S4 (DL2): CR d28, died in remission d70; CRS G3 d2-d3 (excused: resolved within 72 h). OS 70
  event; PFS 70 event; DOR 42 event; CIR 42 death in remission (2); EFS 70 event.
- S5 (DL2): NR d28, PD d60, alive d150. BOR NR; PFS 60 event; no DOR/CIR record; EFS 0 event
  (treatment failure).
- S6 (DL1): screen failure, never infused. ENRLFL N, SAFFL N, in no ADTTE.
- S7 (DL1): died d10 (disease), no response assessment. EFFFL Y (died before assessment);
  DLTEVLFL N; OS 10 event; PFS 10 event; EFS 0 event.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

STUDY = "cd7-zz-phase1"
START = {"S1": dt.date(2024, 1, 10), "S2": dt.date(2024, 2, 1), "S3": dt.date(2024, 3, 1),
         "S4": dt.date(2024, 3, 15), "S5": dt.date(2024, 4, 1), "S7": dt.date(2024, 5, 2)}


def day(subject: str, n: int, clock: str | None = None) -> str:
    """ISO date of study day ``n`` of ``subject`` (optionally with a clock time)."""
    text = (START[subject] + dt.timedelta(days=n)).isoformat()
    return f"{text}T{clock}" if clock else text


def _frame(rows: list[dict], seq: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame.insert(0, "STUDYID", STUDY)
    frame[seq] = frame.groupby("USUBJID").cumcount() + 1
    return frame


def make_domains() -> dict[str, pd.DataFrame]:
    dm = pd.DataFrame([
        {"USUBJID": "S1", "AGE": 34, "SEX": "M", "DISEASE": "T-ALL", "ARMCD": "DL1",
         "RFSTDTC": day("S1", 0), "RFPENDTC": day("S1", 365), "DTHDTC": None, "DTHFL": None},
        {"USUBJID": "S2", "AGE": 51, "SEX": "F", "DISEASE": "AML", "ARMCD": "DL1",
         "RFSTDTC": day("S2", 0), "RFPENDTC": day("S2", 100), "DTHDTC": day("S2", 100),
         "DTHFL": "Y"},
        {"USUBJID": "S3", "AGE": 28, "SEX": "M", "DISEASE": "T-LBL", "ARMCD": "DL2",
         "RFSTDTC": day("S3", 0), "RFPENDTC": day("S3", 200), "DTHDTC": None, "DTHFL": None},
        {"USUBJID": "S4", "AGE": 45, "SEX": "F", "DISEASE": "T-ALL", "ARMCD": "DL2",
         "RFSTDTC": day("S4", 0), "RFPENDTC": day("S4", 70), "DTHDTC": day("S4", 70),
         "DTHFL": "Y"},
        {"USUBJID": "S5", "AGE": 60, "SEX": "M", "DISEASE": "AML", "ARMCD": "DL2",
         "RFSTDTC": day("S5", 0), "RFPENDTC": day("S5", 150), "DTHDTC": None, "DTHFL": None},
        {"USUBJID": "S6", "AGE": 39, "SEX": "F", "DISEASE": "T-ALL", "ARMCD": "DL1",
         "RFSTDTC": None, "RFPENDTC": "2024-01-20", "DTHDTC": None, "DTHFL": None},
        {"USUBJID": "S7", "AGE": 66, "SEX": "M", "DISEASE": "ETP-ALL", "ARMCD": "DL1",
         "RFSTDTC": day("S7", 0), "RFPENDTC": day("S7", 10), "DTHDTC": day("S7", 10),
         "DTHFL": "Y"},
    ])
    dm.insert(0, "STUDYID", STUDY)
    dm["SUBJID"] = dm["USUBJID"]
    dm["SITEID"] = "01"
    dm["AGEU"] = "YEARS"
    dm["RFICDTC"] = "2024-01-01"
    infused = [s for s in START]
    ex = _frame([{"USUBJID": s, "EXTRT": "CD7 CAR-T", "EXFRACN": 1,
                  "EXDOSE": 1e6 if s in ("S1", "S2", "S7") else 2e6, "EXDOSU": "cells/kg",
                  "EXSTDTC": day(s, 0, "10:00")} for s in infused], "EXSEQ")
    ds = _frame([
        {"USUBJID": "S6", "DSDECOD": "SCREEN FAILURE", "DSTERM": "ineligible",
         "DSSTDTC": "2024-01-20"},
        {"USUBJID": "S1", "DSDECOD": "COMPLETED", "DSTERM": "completed", "DSSTDTC": day("S1", 365)},
        {"USUBJID": "S2", "DSDECOD": "DEATH", "DSTERM": "disease", "DSSTDTC": day("S2", 100)},
        {"USUBJID": "S4", "DSDECOD": "DEATH", "DSTERM": "infection", "DSSTDTC": day("S4", 70)},
        {"USUBJID": "S7", "DSDECOD": "DEATH", "DSTERM": "disease", "DSSTDTC": day("S7", 10)},
    ], "DSSEQ")
    rs_rows = []
    for s, n, value in [("S1", 28, "CR"), ("S1", 90, "CR"), ("S1", 180, "CR"),
                        ("S2", 28, "CRi"), ("S2", 60, "RELAPSE"),
                        ("S3", 28, "CR"), ("S3", 120, "RELAPSE"),
                        ("S4", 28, "CR"), ("S5", 28, "NR"), ("S5", 60, "PD")]:
        rs_rows.append({"USUBJID": s, "RSTESTCD": "OVRLRESP", "RSCAT": "ELN 2022",
                        "RSORRES": value, "RSSTRESC": value, "RSDTC": day(s, n),
                        "RSEVAL": "INVESTIGATOR"})
    rs_rows.append({"USUBJID": "S3", "RSTESTCD": "EMRESP", "RSCAT": "LUGANO 2014",
                    "RSORRES": "CR", "RSSTRESC": "CR", "RSDTC": day("S3", 28),
                    "RSEVAL": "INVESTIGATOR"})
    rs = _frame(rs_rows, "RSSEQ")
    tu = _frame([{"USUBJID": "S3", "TULNKID": "T01", "TUTESTCD": "TUMIDENT",
                  "TUORRES": "TARGET", "TULOC": "MEDIASTINUM", "TUDTC": day("S3", -5)}], "TUSEQ")
    pr = _frame([{"USUBJID": "S3", "PRTRT": "ALLOGENEIC HSCT", "PRSTDTC": day("S3", 45)},
                 {"USUBJID": "S1", "PRTRT": "LYMPHODEPLETION", "PRSTDTC": day("S1", -5)}], "PRSEQ")
    ae = _frame([
        {"USUBJID": "S1", "AETERM": "CRS", "AEDECOD": "Cytokine release syndrome", "AETOXGR": 1,
         "AETOXSCL": "ASTCT 2019", "AESTDTC": day("S1", 2), "AEENDTC": day("S1", 4),
         "AESER": "N", "AEREL": "RELATED"},
        {"USUBJID": "S1", "AETERM": "neutropenia", "AEDECOD": "Neutrophil count decreased",
         "AETOXGR": 3, "AETOXSCL": "CTCAE v5.0", "AESTDTC": day("S1", -3),
         "AEENDTC": day("S1", 20), "AESER": "N", "AEREL": "NOT RELATED"},
        {"USUBJID": "S2", "AETERM": "pneumonitis", "AEDECOD": "Pneumonitis", "AETOXGR": 3,
         "AETOXSCL": "CTCAE v5.0", "AESTDTC": day("S2", 5), "AEENDTC": day("S2", 15),
         "AESER": "Y", "AEREL": "RELATED"},
        {"USUBJID": "S4", "AETERM": "CRS", "AEDECOD": "Cytokine release syndrome", "AETOXGR": 3,
         "AETOXSCL": "ASTCT 2019", "AESTDTC": day("S4", 2), "AEENDTC": day("S4", 3),
         "AESER": "Y", "AEREL": "RELATED"},
        {"USUBJID": "S4", "AETERM": "ICANS", "AEDECOD":
         "Immune effector cell-associated neurotoxicity syndrome", "AETOXGR": 1,
         "AETOXSCL": "ASTCT 2019", "AESTDTC": day("S4", 5), "AEENDTC": day("S4", 6),
         "AESER": "N", "AEREL": "RELATED"},
        {"USUBJID": "S4", "AETERM": "CRS", "AEDECOD": "Cytokine release syndrome", "AETOXGR": 2,
         "AETOXSCL": "ASTCT 2019", "AESTDTC": day("S4", 9), "AEENDTC": day("S4", 10),
         "AESER": "N", "AEREL": "RELATED"},
    ], "AESEQ")
    # S1 qPCR: BLQ at d0 and after d28 (LLOQ 100); S2 flow % with a BLQ at d60
    pc_rows = []
    for n, value, clock in [(0, None, "09:00"), (7, 1000.0, "10:00"), (14, 5000.0, None),
                            (28, 500.0, None), (90, None, None), (180, None, None)]:
        pc_rows.append({"USUBJID": "S1", "PCTESTCD": "CARTQPCR", "PCSTRESN": value,
                        "PCSTRESU": "copies/ug gDNA",
                        "PCORRES": "<LLOQ" if value is None else str(value), "PCLLOQ": 100.0,
                        "PCSPEC": "BLOOD", "PCDTC": day("S1", n, clock)})
    for n, value in [(7, 2.0), (14, 8.0), (28, 1.0), (60, None)]:
        pc_rows.append({"USUBJID": "S2", "PCTESTCD": "CARTPCT", "PCSTRESN": value,
                        "PCSTRESU": "%", "PCORRES": "<LLOQ" if value is None else str(value),
                        "PCLLOQ": 0.1, "PCSPEC": "BLOOD", "PCDTC": day("S2", n)})
    pc = _frame(pc_rows, "PCSEQ")
    lb_rows = []

    def lab(s, n, test, value, unit, cat="HEMATOLOGY", spec="BLOOD", lo=None, hi=None,
            method=None):
        lb_rows.append({"USUBJID": s, "LBCAT": cat, "LBTESTCD": test, "LBTEST": test,
                        "LBSPEC": spec, "LBORRES": str(value), "LBORRESU": unit,
                        "LBSTRESN": value, "LBSTRESU": unit, "LBORNRLO": lo, "LBORNRHI": hi,
                        "LBDTC": day(s, n), "LBMETHOD": method})

    lab("S1", -7, "BLAST", 40.0, "%", "MARROW", "BONE MARROW")
    lab("S1", -2, "BLAST", 12.0, "%", "MARROW", "BLOOD")
    lab("S1", -2, "NEUT", 1.5, "10^9/L", lo=2.0, hi=7.5)
    lab("S1", 7, "NEUT", 0.4, "10^9/L", lo=2.0, hi=7.5)
    lab("S1", 28, "MRD", 0.00001, "fraction", "MARROW", "BONE MARROW", method="FLOW")
    lab("S2", 28, "MRD", 0.002, "fraction", "MARROW", "BONE MARROW", method="FLOW")
    for s, base, nadir in [("S1", 800.0, 2.0), ("S2", 600.0, 50.0)]:
        lab(s, 0, "CD7ABS", base, "cells/uL", "IMMUNOPHENOTYPE")
        lab(s, 14, "CD7ABS", nadir, "cells/uL", "IMMUNOPHENOTYPE")
        lab(s, 28, "CD7ABS", nadir * 2, "cells/uL", "IMMUNOPHENOTYPE")
    for n, value in [(0, 5.0), (3, 250.0), (7, 40.0)]:
        lab("S1", n, "IL6", value, "pg/mL", "CYTOKINE")
    for n, value in [(0, 10.0), (3, 30.0), (5, 100.0)]:
        lab("S4", n, "IL6", value, "pg/mL", "CYTOKINE")
    lb = _frame(lb_rows, "LBSEQ")
    sc = _frame([{"USUBJID": s, "SCTESTCD": "cd7_blast_pct", "SCORRES": str(v),
                  "SCORRESU": "%", "SCDTC": day(s, -10)}
                 for s, v in [("S1", 95), ("S2", 60), ("S3", 88), ("S4", 99), ("S5", 45),
                              ("S7", 70)]], "SCSEQ")
    is_ = _frame([
        {"USUBJID": "S1", "ISTESTCD": "ADACAR", "ISORRES": "NEGATIVE", "ISSTRESC": "NEGATIVE",
         "ISDTC": day("S1", 0)},
        {"USUBJID": "S1", "ISTESTCD": "ADACAR", "ISORRES": "POSITIVE", "ISSTRESC": "POSITIVE",
         "ISDTC": day("S1", 28)},
        {"USUBJID": "S2", "ISTESTCD": "ADACAR", "ISORRES": "NEGATIVE", "ISSTRESC": "NEGATIVE",
         "ISDTC": day("S2", 0)},
        {"USUBJID": "S2", "ISTESTCD": "ADACAR", "ISORRES": "NEGATIVE", "ISSTRESC": "NEGATIVE",
         "ISDTC": day("S2", 28)},
    ], "ISSEQ")
    return {"DM": dm, "EX": ex, "DS": ds, "RS": rs, "TU": tu, "PR": pr, "AE": ae, "PC": pc,
            "LB": lb, "SC": sc, "IS": is_}


@pytest.fixture()
def domains() -> dict[str, pd.DataFrame]:
    return make_domains()


@pytest.fixture()
def protocol():
    from celltrial.protocols import load

    return load(STUDY)

