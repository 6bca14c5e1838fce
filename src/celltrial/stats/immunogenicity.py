"""Immunogenicity: anti-CAR antibody (ADA) positive rate per time point and treatment-emergent
positivity.

Rules (after the FDA 2019 immunogenicity guidance's vocabulary; thresholds are celltrial's):
- Baseline: the last result on or before day 0.
- Treatment-induced: a positive result after day 0 when the baseline is negative or missing.
- Treatment-boosted: baseline positive and a titre after day 0 >= ``boost_fold`` (default 4)
  x the baseline titre (needs titres in AVAL).
- Treatment-emergent = induced or boosted. Evaluable: at least one result after day 0.
Rates carry exact Clopper-Pearson 95% CIs (:func:`celltrial.stats.binomial.clopper_pearson`).

Input: a table with columns USUBJID, ADY (study day), AVALC (``POSITIVE``/``NEGATIVE``) and
optionally AVAL (titre).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from celltrial.errors import invalid
from celltrial.stats.binomial import clopper_pearson
from celltrial.stats.result import Missing

BOOST_FOLD = 4.0


@dataclass(frozen=True)
class AdaSummary:
    """ADA results: per time point (day, n_tested, n_positive, rate, lower, upper), per subject
    (USUBJID, baseline, induced, boosted, emergent), and the treatment-emergent rate."""

    by_day: pd.DataFrame
    subjects: pd.DataFrame
    n_evaluable: int
    n_emergent: int
    rate: float | Missing
    ci: tuple[float, float] | Missing


def ada_summary(adis: pd.DataFrame, boost_fold: float = BOOST_FOLD,
                level: float = 0.95) -> AdaSummary:
    """Summarise anti-CAR antibody results (see the module rules)."""
    for column in ("USUBJID", "ADY", "AVALC"):
        if column not in adis.columns:
            raise invalid("adis", list(adis.columns), f"a table with column {column}")
    data = adis[adis["AVALC"].notna() & adis["ADY"].notna()].copy()
    data["AVALC"] = data["AVALC"].astype(str).str.upper()
    bad = ~data["AVALC"].isin(["POSITIVE", "NEGATIVE"])
    if bad.any():
        raise invalid("AVALC", data.loc[bad, "AVALC"].iloc[0], "POSITIVE or NEGATIVE")
    titre = data["AVAL"].astype(float) if "AVAL" in data.columns else pd.Series(np.nan, data.index)
    data = data.assign(TITRE=titre).sort_values(["USUBJID", "ADY"])
    rows = []
    for day, g in data[data["ADY"] > 0].groupby("ADY", sort=True):
        n, x = len(g), int((g["AVALC"] == "POSITIVE").sum())
        lo, hi = clopper_pearson(x, n, level)
        rows.append({"day": float(day), "n_tested": n, "n_positive": x, "rate": x / n,
                     "lower": lo, "upper": hi})
    by_day = pd.DataFrame(rows, columns=["day", "n_tested", "n_positive", "rate", "lower",
                                         "upper"])
    subjects = []
    for subject, g in data.groupby("USUBJID", sort=True):
        pre, post = g[g["ADY"] <= 0], g[g["ADY"] > 0]
        if post.empty:
            continue
        base = pre["AVALC"].iloc[-1] if len(pre) else None
        base_titre = float(pre["TITRE"].iloc[-1]) if len(pre) else np.nan
        positive = post["AVALC"] == "POSITIVE"
        induced = bool(base != "POSITIVE" and positive.any())
        boosted = bool(base == "POSITIVE" and np.isfinite(base_titre)
                       and (post["TITRE"] >= boost_fold * base_titre).any())
        subjects.append({"USUBJID": subject, "baseline": base, "induced": induced,
                         "boosted": boosted, "emergent": induced or boosted})
    subj = pd.DataFrame(subjects, columns=["USUBJID", "baseline", "induced", "boosted",
                                           "emergent"])
    n = len(subj)
    x = int(subj["emergent"].sum()) if n else 0
    if n == 0:
        reason = Missing("no subject with an anti-CAR antibody result after day 0")
        return AdaSummary(by_day, subj, 0, 0, reason, reason)
    return AdaSummary(by_day, subj, n, x, x / n, tuple(clopper_pearson(x, n, level)))
