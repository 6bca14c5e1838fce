"""SDTM frames of one DLT boundary per subject (study cd7-zz-phase1: 28-day window, X1 grade 3
CRS improving to grade <= 2 within 72 h, X4 grade 4 cytopenia counting only beyond day 28,
censoring at allogeneic HSCT, new anticancer therapy and withdrawal).

Every subject is infused on 2024-01-01 at 10:00 (day 0) with dose level DL1 and followed to
day 60 unless the row says otherwise. ``EXPECTED`` is the criteria table the tests check:
subject -> (DLTFL, DLTEVLFL, DLTRULE, DLTEXC, CENSEVT, words of the decision or of the
evaluability reason).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

STUDY = "cd7-zz-phase1"
DAY0 = dt.date(2024, 1, 1)

EXPECTED: dict[str, tuple[str, str, str, str, str, str]] = {
    # ASTCT 2019 daily CRS grades (XC) with clock times: grade 3 from day 2 14:00
    "CRS-71H": ("N", "Y", "", "X1", "", "after 71 h"),      # grade 2 on day 5 at 13:00
    "CRS-73H": ("Y", "Y", "D1", "", "", "after 73 h > 72 h"),  # grade 2 on day 5 at 15:00
    "CRS-DAYS": ("N", "Y", "", "X1", "", "after 72 h"),     # dates only: day 2 -> day 5
    # CTCAE v5.0 grades of the ANC (LB) carried by a neutropenia AE recorded from day 2
    "ANC-D300": ("N", "Y", "", "", "", "outside window (met on day 300)"),
    "ANC-D28": ("Y", "Y", "D4", "", "", "met on day 28"),
    "ANC-D29": ("N", "Y", "", "", "", "outside window (met on day 29)"),
    "ANC-END28": ("N", "Y", "", "X4", "", "ended day 28"),
    "ANC-END29": ("Y", "Y", "D4", "", "", "persisted to day 29 > day 28"),
    # censoring (PR, DS)
    "HSCT-D20-CRS-D20": ("Y", "Y", "D1", "", "hsct", "met on day 20"),
    "HSCT-D20-CRS-D21": ("N", "N", "", "", "hsct", "censored on day 20 (hsct)"),
    "HSCT-D20-ANC": ("Y", "Y", "D4", "", "hsct", "cannot be judged"),
    "HSCT-D40": ("N", "Y", "", "", "hsct", "followed through the 28-day window"),
    "THERAPY-D15": ("N", "N", "", "", "new_anticancer_therapy",
                    "censored on day 15 (new_anticancer_therapy)"),
    "WITHDRAWN-D10": ("N", "N", "", "", "withdrawal", "censored on day 10 (withdrawal)"),
    "LOST-D20": ("N", "N", "", "", "", "last known alive day 20"),
}


def at(n: float, clock: str | None = None) -> str:
    """ISO date (optionally date-time) of study day ``n``."""
    text = (DAY0 + dt.timedelta(days=n)).isoformat()
    return f"{text}T{clock}" if clock else text


class _Rows:
    def __init__(self) -> None:
        self.rows: dict[str, list[dict]] = {}

    def add(self, name: str, subject: str, **values) -> None:
        self.rows.setdefault(name, []).append({"STUDYID": STUDY, "USUBJID": subject, **values})

    def patient(self, s: str, last: int = 60, decod: str = "COMPLETED") -> None:
        self.add("DM", s, SUBJID=s, SITEID="01", AGE=40, AGEU="YEARS", SEX="F",
                 DISEASE="T-ALL", ARMCD="DL1", ARM="DL1", RFICDTC=at(-20),
                 RFSTDTC=at(0, "10:00"), RFPENDTC=at(last))
        self.add("EX", s, EXTRT="CD7 CAR-T", EXFRACN=1, EXDOSE=1e6, EXDOSU="cells/kg",
                 EXSTDTC=at(0, "10:00"))
        self.add("DS", s, DSDECOD=decod, DSTERM=decod.lower(), DSSTDTC=at(last))

    def ae(self, s: str, term: str, grade: int, start: int, end: int | None) -> None:
        scale = "ASTCT 2019" if term == "Cytokine release syndrome" else "CTCAE v5.0"
        self.add("AE", s, AETERM=term, AEDECOD=term, AETOXGR=grade, AETOXSCL=scale,
                 AESTDTC=at(start), AEENDTC=None if end is None else at(end), AESER="N",
                 AEREL="RELATED")

    def xc(self, s: str, n: int, clock: str | None, crs: int) -> None:
        self.add("XC", s, XCDTC=at(n, clock), XCCRSGR=crs, XCICAGR=0)

    def anc(self, s: str, counts: dict[int, float]) -> None:
        for n, value in counts.items():
            self.add("LB", s, LBCAT="HEMATOLOGY", LBTESTCD="NEUT", LBTEST="Neutrophils",
                     LBSPEC="BLOOD", LBORRES=str(value), LBORRESU="10^9/L", LBSTRESN=value,
                     LBSTRESU="10^9/L", LBORNRLO=2.0, LBORNRHI=7.5, LBDTC=at(n))

    def frames(self) -> dict[str, pd.DataFrame]:
        out = {}
        for name, rows in self.rows.items():
            frame = pd.DataFrame(rows)
            if name != "DM":
                frame[f"{name}SEQ"] = frame.groupby("USUBJID").cumcount() + 1
            out[name] = frame
        return out


def make_dlt_domains() -> dict[str, pd.DataFrame]:
    """The SDTM frames of ``EXPECTED`` (ANC LLN 2.0 x10^9/L: < 0.5 grade 4, 0.5-1.0 grade 3,
    1.0-1.5 grade 2, 1.5-2.0 grade 1)."""
    r = _Rows()
    crs = "Cytokine release syndrome"
    anc = "Neutrophil count decreased"
    for s in EXPECTED:
        if s == "WITHDRAWN-D10":
            r.patient(s, 10, "WITHDRAWAL BY SUBJECT")
        elif s == "LOST-D20":
            r.patient(s, 20, "LOST TO FOLLOW-UP")
        else:
            r.patient(s, 330 if s == "ANC-D300" else 60)
    # CRS grade 3 from day 2 14:00; grade 2 after 71 h vs 73 h (clock times), or by dates only
    for s, fall in (("CRS-71H", "13:00"), ("CRS-73H", "15:00")):
        r.ae(s, crs, 3, 2, 6)
        r.xc(s, 2, "08:00", 1)
        r.xc(s, 2, "14:00", 3)
        r.xc(s, 3, "14:00", 3)
        r.xc(s, 4, "14:00", 3)
        r.xc(s, 5, fall, 2)
        r.xc(s, 6, "09:00", 0)
    r.ae("CRS-DAYS", crs, 3, 2, 6)
    for n, g in ((2, 3), (3, 3), (4, 3), (5, 2), (6, 0)):
        r.xc("CRS-DAYS", n, None, g)
    # neutropenia AEs from day 2; the day grade 4 is first reached and when it ends, from ANC
    r.ae("ANC-D300", anc, 4, 2, 320)
    r.anc("ANC-D300", {2: 1.6, 14: 1.2, 28: 1.6, 300: 0.3, 320: 1.6})
    r.ae("ANC-D28", anc, 4, 2, 45)
    r.anc("ANC-D28", {2: 1.6, 28: 0.3, 45: 1.6})
    r.ae("ANC-D29", anc, 4, 2, 45)
    r.anc("ANC-D29", {2: 1.6, 29: 0.3, 45: 1.6})
    r.ae("ANC-END28", anc, 4, 2, 45)
    r.anc("ANC-END28", {2: 0.3, 28: 0.8, 45: 1.6})
    r.ae("ANC-END29", anc, 4, 2, 45)
    r.anc("ANC-END29", {2: 0.3, 29: 0.8, 45: 1.6})
    # allogeneic HSCT on day 20: CRS meeting D1 on day 20 counts, on day 21 it does not; a
    # grade 4 neutropenia from day 10 whose end (day 25) lies after the HSCT cannot be excused
    for s in ("HSCT-D20-CRS-D20", "HSCT-D20-CRS-D21", "HSCT-D20-ANC"):
        r.add("PR", s, PRTRT="ALLOGENEIC HSCT", PRSTDTC=at(20))
    r.ae("HSCT-D20-CRS-D20", crs, 4, 20, 22)
    r.ae("HSCT-D20-CRS-D21", crs, 4, 21, 23)
    r.ae("HSCT-D20-ANC", anc, 4, 10, 25)
    r.anc("HSCT-D20-ANC", {10: 0.3, 18: 0.3, 25: 0.8})
    r.add("PR", "HSCT-D40", PRTRT="ALLOGENEIC HSCT", PRSTDTC=at(40))
    r.add("PR", "HSCT-D40", PRTRT="LYMPHODEPLETION", PRSTDTC=at(-5))
    r.add("PR", "THERAPY-D15", PRTRT="ANTICANCER THERAPY: VENETOCLAX", PRSTDTC=at(15))
    return r.frames()
