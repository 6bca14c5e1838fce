"""ADEX: exposure, one row per subject and planned split fraction of the CAR-T dose.

Sources: SDTM EX (one row per planned infusion fraction: EXFRACN, EXDOSE CAR+ cells/kg,
EXDOSTOT, EXVOL, EXBAGN, EXSTDTC, EXADJ ``WITHHELD: <reason>`` on a fraction not given, with
EXDOSE 0; docs/data-model.md) and the protocol's split schedule, dose levels, hold rules and
dose tolerance (``protocol.intervention``). ICH E3 section 12.1 (extent of exposure) asks for
the dose given against the dose planned; for a split CAR-T dose that is per fraction.

Rules:

- *Rows*: every EX record of the study, and, for an infused subject (ADSL SAFFL Y), each
  fraction of the protocol's schedule that has no EX record (FRSTAT ``NOT RECORDED``). A
  fraction is matched to the schedule by EXFRACN (else by the order of EXSTDTC).
- *Planned*: FRACPLN (share of the dose) and PLANDY (study day) from
  ``intervention.split``; PLDOSE = the dose level's CAR+ cells/kg x FRACPLN, the dose level
  being ADSL TRT01A (else TRT01P for a subject never infused). A protocol weight cap is not
  applied: EX records cells per kg of the dosing weight.
- *Given* (FRSTAT ``GIVEN``): EXDOSE > 0 and no ``WITHHELD`` adjustment. ADOSE = EXDOSE;
  DOSERAT = ADOSE / PLDOSE; OUTTOLFL Y when it differs from 1 by more than the protocol's
  ``dose_tolerance``.
- *Withheld* (FRSTAT ``WITHHELD``): EXADJ ``WITHHELD: ...`` or EXDOSE 0. HOLDRSN is the reason
  after ``WITHHELD:``; HOLDRL the protocol hold rule it names (``H1: CRS grade >= 2 ...``, as
  ``celltrial.clinical.split_hold.next_fraction`` words it). A fraction withheld because an
  earlier one was (split doses are not resumed, ``split_hold``) carries the rule of that
  earlier fraction. ADOSE 0.
- *Not recorded*: HOLDRSN says why where ADSL does: died on day D before the planned day, or
  the planned day is after the last day known alive; else ``no exposure record``.
- ASTDT/ASTDY: EXSTDTC as a date and its study day (day 0 = first infusion, ADSL TRTSDT).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from celltrial.derive.timeline import Domains, days_between, domain, lookup, to_date, to_number

__all__ = ["ADEX_COLUMNS", "FRACTION_STATUS", "build_adex", "hold_rule_of"]

ADEX_COLUMNS = ("STUDYID", "USUBJID", "TRT01A", "TRT01AN", "EXSEQ", "EXTRT", "EXFRACN",
                "FRACPLN", "PLANDY", "ASTDT", "ASTDY", "PLDOSE", "ADOSE", "DOSERAT",
                "OUTTOLFL", "EXDOSTOT", "EXVOL", "EXBAGN", "FRSTAT", "HOLDRL", "HOLDRSN")

FRACTION_STATUS = ("GIVEN", "WITHHELD", "NOT RECORDED")
"""FRSTAT values (module docstring)."""

WITHHELD = re.compile(r"^\s*WITHHELD\s*:?\s*", re.IGNORECASE)


def hold_rule_of(reason: object, rule_ids: list[str]) -> str | None:
    """The hold rule id a withheld fraction's reason starts with, None when it names none.

    >>> hold_rule_of("H1: CRS grade >= 2 after the previous fraction", ["H1", "H2"])
    'H1'
    >>> hold_rule_of("fraction 1 was withheld: later fractions are not given", ["H1"]) is None
    True
    """
    if not isinstance(reason, str) or not reason.strip():
        return None
    first = re.split(r"[\s:;,]", reason.strip(), maxsplit=1)[0]
    return first if first in rule_ids else None


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in ADEX_COLUMNS})


def build_adex(domains: Domains, adsl: pd.DataFrame, protocol: Any) -> pd.DataFrame:
    """ADEX from EX, ADSL and the protocol (module docstring); columns ``ADEX_COLUMNS``."""
    iv = protocol.intervention
    split = sorted(iv.split, key=lambda f: f.day)
    levels = {d.id: (i + 1, d.cells_per_kg) for i, d in enumerate(iv.dose_levels)}
    rule_ids = [h.id for h in iv.hold_rules]
    ex = domain(domains, "EX", ("EXSEQ", "EXTRT", "EXFRACN", "EXDOSE", "EXDOSTOT", "EXVOL",
                                "EXBAGN", "EXSTDTC", "EXADJ"))
    subjects = adsl.set_index("USUBJID")
    ex = ex[ex["USUBJID"].isin(subjects.index)].copy()
    if ex.empty and not (adsl["SAFFL"] == "Y").any():
        return _empty()
    ex["ASTDT"] = to_date(ex["EXSTDTC"])
    order = ex.sort_values(["USUBJID", "ASTDT"], kind="stable").groupby("USUBJID").cumcount() + 1
    ex["EXFRACN"] = to_number(ex["EXFRACN"]).fillna(order.reindex(ex.index).astype(float))
    dose = to_number(ex["EXDOSE"])
    adjust = ex["EXADJ"].astype(object).where(ex["EXADJ"].notna(), "").astype(str)
    withheld = adjust.str.match(WITHHELD) | (dose <= 0)
    ex["FRSTAT"] = np.where(withheld, "WITHHELD", "GIVEN")
    reason = adjust.str.replace(WITHHELD, "", regex=True).str.strip()
    ex["HOLDRSN"] = np.where(withheld, reason.where(reason != "", "reason not recorded"), None)
    ex["ADOSE"] = np.where(withheld, 0.0, dose)
    rows = [ex]

    trtsdt = subjects["TRTSDT"]
    infused = subjects[subjects["SAFFL"] == "Y"]
    recorded = set(zip(ex["USUBJID"], ex["EXFRACN"].astype(float), strict=True))
    death = days_between(infused["DTHDT"], infused["TRTSDT"])
    alive = days_between(infused["LSTALVDT"], infused["TRTSDT"])
    missing = []
    for u in infused.index:
        for number, fraction in enumerate(split, start=1):
            if (u, float(number)) in recorded:
                continue
            if not np.isnan(death[u]) and death[u] < fraction.day:
                why = f"died on day {death[u]:g}, before the planned day {fraction.day}"
            elif not np.isnan(alive[u]) and alive[u] < fraction.day:
                why = (f"planned day {fraction.day} after the last day known alive "
                       f"({alive[u]:g}; data cut-off)")
            else:
                why = "no exposure record"
            missing.append({"USUBJID": u, "EXFRACN": float(number), "FRSTAT": "NOT RECORDED",
                            "HOLDRSN": why, "ASTDT": pd.NaT})
    if missing:
        rows.append(pd.DataFrame(missing))
    out = pd.concat(rows, ignore_index=True)
    out["STUDYID"] = out["USUBJID"].map(subjects["STUDYID"])
    level = subjects["TRT01A"].where(subjects["TRT01A"].notna(), subjects["TRT01P"])
    out["TRT01A"] = out["USUBJID"].map(level).astype(object)
    out["TRT01AN"] = out["TRT01A"].map({k: v[0] for k, v in levels.items()}).astype(float)
    index = out["EXFRACN"].astype(int) - 1
    known = (index >= 0) & (index < len(split))
    out["FRACPLN"] = [split[i].fraction if ok else np.nan for i, ok in zip(index, known)]
    out["PLANDY"] = [float(split[i].day) if ok else np.nan for i, ok in zip(index, known)]
    per_kg = out["TRT01A"].map({k: v[1] for k, v in levels.items()}).astype(float)
    out["PLDOSE"] = per_kg * out["FRACPLN"].astype(float)
    out["ASTDY"] = days_between(pd.to_datetime(out["ASTDT"]).astype("datetime64[us]"),
                                lookup(out["USUBJID"], trtsdt).astype("datetime64[us]"))
    out["ASTDT"] = pd.to_datetime(out["ASTDT"]).astype("datetime64[us]")
    given = out["FRSTAT"] == "GIVEN"
    out["ADOSE"] = to_number(out["ADOSE"])
    out["DOSERAT"] = (out["ADOSE"] / out["PLDOSE"]).where(given)
    outside = (out["DOSERAT"] - 1).abs() > iv.dose_tolerance
    out["OUTTOLFL"] = pd.Series(np.where(outside, "Y", "N"), index=out.index,
                                dtype=object).where(given & out["DOSERAT"].notna(), None)
    out = _inherit_hold_rule(out, rule_ids)
    for column in ("EXSEQ", "EXDOSTOT", "EXVOL", "EXBAGN"):
        out[column] = to_number(out[column])
    for column in ("EXTRT", "HOLDRSN", "HOLDRL", "FRSTAT"):
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    out = out.sort_values(["USUBJID", "EXFRACN"], ignore_index=True)
    return out[list(ADEX_COLUMNS)]


def _inherit_hold_rule(out: pd.DataFrame, rule_ids: list[str]) -> pd.DataFrame:
    """HOLDRL of each withheld fraction: the rule its reason names, else the rule of the
    subject's earlier withheld fraction (a split stopped by a rule stays stopped)."""
    out = out.sort_values(["USUBJID", "EXFRACN"]).copy()
    named = out["HOLDRSN"].map(lambda r: hold_rule_of(r, rule_ids)).where(
        out["FRSTAT"] == "WITHHELD")
    carried = named.groupby(out["USUBJID"]).ffill()
    out["HOLDRL"] = carried.where(out["FRSTAT"] == "WITHHELD")
    return out
