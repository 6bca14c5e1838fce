"""Study-report tables and listings built from the analysis datasets (ADaM-shaped DataFrames).

Every table is a plain DataFrame so that HTML, PDF and tests read the same thing. Tables
declared as data: ``TABLES`` (id, title, function) in report order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

Datasets = Mapping[str, pd.DataFrame]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def endpoint_table(endpoints: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per outcome measure of the protocol: estimate, CI, n, or the reason it is missing."""
    rows = []
    for entry in endpoints:
        ci = entry.get("ci") or [None, None]
        ok = entry.get("status", "ok") == "ok"
        rows.append({
            "Outcome measure": entry.get("name", ""),
            "Time frame": entry.get("time_frame", ""),
            "Derivation": entry.get("derivation", ""),
            "Estimate": _fmt(entry.get("estimate")) if ok else "",
            "95% CI": f"{_fmt(ci[0])} - {_fmt(ci[1])}" if ok and ci[0] is not None else "",
            "n": _fmt(entry.get("n")),
            "Note": entry.get("summary", "") if ok else f"not computable: {entry.get('reason', '')}",
        })
    return pd.DataFrame(rows)


def disposition(ds: Datasets) -> pd.DataFrame:
    """Patients per analysis set and dose level (ADSL flags ENRLFL, SAFFL, DLTEVLFL, EFFFL, DTHFL)."""
    adsl = ds.get("adsl")
    if adsl is None or adsl.empty:
        return pd.DataFrame()
    flags = [f for f in ("ENRLFL", "SAFFL", "DLTEVLFL", "DLTFL", "EFFFL", "DTHFL") if f in adsl]
    level = adsl["TRT01A"].fillna("not dosed") if "TRT01A" in adsl else pd.Series("all", adsl.index)
    table = pd.DataFrame({f: (adsl[f] == "Y").groupby(level).sum() for f in flags})
    table.loc["Total"] = table.sum()
    return table.reset_index(names="Dose level").astype({f: int for f in flags})


def ae_by_term(ds: Datasets) -> pd.DataFrame:
    """Patients with each adverse-event term, by worst grade (any grade, grade >= 3)."""
    adae = ds.get("adae")
    if adae is None or adae.empty:
        return pd.DataFrame()
    grade = "ATOXGRN" if "ATOXGRN" in adae.columns else "AETOXGR"
    worst = adae.groupby(["AEDECOD", "USUBJID"])[grade].max().reset_index()
    table = worst.groupby("AEDECOD")[grade].agg(
        any_grade="size", grade_3_plus=lambda g: int((g >= 3).sum()),
        grade_5=lambda g: int((g >= 5).sum()))
    return (table.sort_values(["grade_3_plus", "any_grade"], ascending=False)
            .reset_index().rename(columns={"AEDECOD": "Term", "any_grade": "Any grade",
                                           "grade_3_plus": "Grade >= 3", "grade_5": "Grade 5"}))


def nca_summary(ds: Datasets) -> pd.DataFrame:
    """NCA parameters (ADPP) per analyte and dose level: n, geometric mean, median, range."""
    adpp = ds.get("adpp")
    if adpp is None or adpp.empty or "AVAL" not in adpp:
        return pd.DataFrame()
    keys = [c for c in ("PARAMCD", "TRT01A") if c in adpp.columns]
    rows = []
    for key, group in adpp.groupby(keys):
        values = group["AVAL"].dropna().to_numpy(float)
        positive = values[values > 0]
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, key, strict=True)), "n": len(values),
                     "geo. mean": _fmt(float(np.exp(np.log(positive).mean())) if len(positive) else None),
                     "median": _fmt(float(np.median(values)) if len(values) else None),
                     "min": _fmt(float(values.min()) if len(values) else None),
                     "max": _fmt(float(values.max()) if len(values) else None)})
    return pd.DataFrame(rows)


def listing_severe_aes(ds: Datasets) -> pd.DataFrame:
    """Listing: adverse events of grade >= 3 or serious, by patient and onset day."""
    adae = ds.get("adae")
    if adae is None or adae.empty:
        return pd.DataFrame()
    grade = "ATOXGRN" if "ATOXGRN" in adae.columns else "AETOXGR"
    serious = adae["AESER"].eq("Y") if "AESER" in adae else False
    rows = adae[(adae[grade] >= 3) | serious]
    cols = [c for c in ("USUBJID", "TRT01A", "AEDECOD", grade, "ASTDY", "AENDY", "AESER", "AEREL")
            if c in rows.columns]
    return rows[cols].sort_values([c for c in ("USUBJID", "ASTDY") if c in cols])


def listing_deaths(ds: Datasets) -> pd.DataFrame:
    """Listing: deaths (ADSL DTHFL = Y) with dose level and date."""
    adsl = ds.get("adsl")
    if adsl is None or adsl.empty or "DTHFL" not in adsl:
        return pd.DataFrame()
    cols = [c for c in ("USUBJID", "TRT01A", "DISEASE", "TRTSDT", "DTHDT") if c in adsl.columns]
    return adsl.loc[adsl["DTHFL"] == "Y", cols]


@dataclass(frozen=True)
class TableSpec:
    """A report table: id, title and the function building it from the datasets."""

    id: str
    title: str
    build: Callable[[Datasets], pd.DataFrame]


TABLES: tuple[TableSpec, ...] = (
    TableSpec("disposition", "Analysis sets by dose level", disposition),
    TableSpec("ae_by_term", "Adverse events by term and worst grade (patients)", ae_by_term),
    TableSpec("nca", "CAR-T cellular kinetics, non-compartmental parameters", nca_summary),
    TableSpec("listing_severe_aes", "Listing: adverse events of grade >= 3 or serious",
              listing_severe_aes),
    TableSpec("listing_deaths", "Listing: deaths", listing_deaths),
)
