"""The data cut: the study's records as they stood at the end of one day.

``apply_data_cut(domains, cut)`` keeps what was known on ``cut`` and nothing later:
- a subject who consented after the cut does not exist yet (every record removed);
- a record is removed when its own date (the domain's collection or start date,
  :data:`RECORD_DATE`) is after the cut;
- an adverse event that started on or before the cut and ended after it is ongoing at the cut
  (AEENDTC empty, AEOUT ``NOT RECOVERED/NOT RESOLVED``); a fatal event whose death is after the
  cut is reported at grade 4 (life-threatening, CTCAE v5.0) with the death not yet known;
- DM: the first infusion (RFSTDTC), the end of participation (RFPENDTC) and death
  (DTHDTC, DTHFL) after the cut are removed: the subject is not yet treated, ongoing, alive;
- a disposition after the cut (DS) is removed: the subject is ongoing (ADSL EOSSTT).
The cut is a projection: cutting at D, then at an earlier D', equals cutting at D' (the
escalation history replays decisions on cuts of the stored data, docs/conduct.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd

__all__ = ["RECORD_DATE", "RECORD_DATE_COLUMNS", "apply_data_cut", "parse_cut"]

RECORD_DATE: dict[str, str] = {
    "SC": "SCDTC", "EX": "EXSTDTC", "AE": "AESTDTC", "LB": "LBDTC", "VS": "VSDTC",
    "XC": "XCDTC", "RS": "RSDTC", "TU": "TUDTC", "TR": "TRDTC", "PC": "PCDTC", "IS": "ISDTC",
    "PR": "PRSTDTC", "DS": "DSSTDTC",
}
"""Per domain, the date that places a record in time (collection, start or event date)."""

RECORD_DATE_COLUMNS: dict[str, tuple[str, ...]] = {
    **{name: (column,) for name, column in RECORD_DATE.items()},
    "AE": ("AESTDTC", "AEENDTC"), "DM": ("RFICDTC", "RFSTDTC", "RFPENDTC", "DTHDTC"),
}
"""Every date of every domain that a data cut bounds."""

ONGOING = "NOT RECOVERED/NOT RESOLVED"


def parse_cut(value: str | dt.date | None) -> dt.date:
    """A data-cut date from ISO text or a date; None = today."""
    from celltrial.errors import invalid

    if value is None:
        return dt.date.today()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise invalid("data cut", value, "an ISO 8601 date YYYY-MM-DD") from None


def _after(values: pd.Series, cut: str) -> pd.Series:
    """True where an ISO date (or date-time) falls on a later day than ``cut`` (YYYY-MM-DD)."""
    day = values.astype("string").str.slice(0, 10)
    return (day.fillna("") > cut).astype(bool)


def _blank(values: pd.Series, where: pd.Series) -> pd.Series:
    """``values`` with None (missing, as the store returns it) where ``where`` holds."""
    return values.astype(object).where(~where, None)


def apply_data_cut(domains: Mapping[str, pd.DataFrame], cut: str | dt.date
                   ) -> dict[str, pd.DataFrame]:
    """The domains as known at the end of day ``cut`` (module docstring)."""
    day = parse_cut(cut).isoformat()
    out = {name: frame for name, frame in domains.items()}
    dm = out.get("DM")
    later: set[str] = set()
    if dm is not None and not dm.empty:
        later = set(dm.loc[_after(dm["RFICDTC"], day), "USUBJID"]) if "RFICDTC" in dm else set()
        dm = dm[~dm["USUBJID"].isin(later)].copy()
        for col in ("RFSTDTC", "RFPENDTC", "DTHDTC"):
            if col in dm:
                dm[col] = _blank(dm[col], _after(dm[col], day))
        if "DTHFL" in dm and "DTHDTC" in dm:
            dm["DTHFL"] = dm["DTHFL"].where(dm["DTHDTC"].notna(), "")
        out["DM"] = dm.reset_index(drop=True)
    for name, column in RECORD_DATE.items():
        frame = out.get(name)
        if frame is None or frame.empty or column not in frame:
            continue
        keep = ~_after(frame[column], day) & ~frame["USUBJID"].isin(later)
        frame = frame[keep].copy()
        if name == "AE" and "AEENDTC" in frame:
            ongoing = _after(frame["AEENDTC"], day)
            if "AEOUT" in frame:
                fatal = ongoing & (frame["AEOUT"].astype(str).str.upper() == "FATAL")
                if "AETOXGR" in frame:
                    grade = pd.to_numeric(frame["AETOXGR"], errors="coerce")
                    frame.loc[fatal & (grade >= 5), "AETOXGR"] = 4
                frame.loc[ongoing, "AEOUT"] = ONGOING
            frame["AEENDTC"] = _blank(frame["AEENDTC"], ongoing)
        out[name] = frame.reset_index(drop=True)
    return out
