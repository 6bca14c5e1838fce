"""Safety summaries: AE incidence by term and maximum grade, by dose level; CRS and ICANS by
grade with onset and duration.

Conventions (ICH E3 / CDISC ADaM ADAE practice): a patient counts once per term, at the worst
grade of that term; percentages are of the patients in the population (safety set) of that dose
level; the ``All`` row pools dose levels. CRS and ICANS are graded by ASTCT 2019 (Lee et al.,
BBMT 2019;25:625); each record is one episode; onset = study day of the first episode's start
(day 0 = first infusion), duration = ADURN of each episode (days, end - start + 1; ongoing
episodes have no duration and are left out of duration statistics).

Inputs (plain DataFrames):
- ``population``: USUBJID, TRT01A (dose level label), optionally TRT01AN (order).
- ``adae``: USUBJID, AEDECOD (term), ATOXGRN (grade 1-5), ASTDY (onset day), ADURN (duration
  days); rows should already be the treatment-emergent AEs wanted (e.g. TRTEMFL == "Y").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from celltrial.errors import invalid

ALL_LEVELS = "All"
GRADES = (1, 2, 3, 4, 5)
SYNDROMES: tuple[tuple[str, str], ...] = (
    ("CRS", "Cytokine release syndrome"),
    ("ICANS", "Immune effector cell-associated neurotoxicity syndrome"),
)
"""(short name, AEDECOD term) of the ASTCT-graded syndromes."""


def _need(frame: pd.DataFrame, what: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise invalid(what, list(frame.columns), "a table with columns " + ", ".join(columns))


def _levels(population: pd.DataFrame) -> list[tuple[str, set[str]]]:
    _need(population, "population", ("USUBJID", "TRT01A"))
    pop = population.assign(TRT01A=population["TRT01A"].fillna("not dosed").astype(str))
    if "TRT01AN" in pop.columns:
        pop = pop.sort_values("TRT01AN", kind="stable", na_position="last")
    levels = [(str(level), set(pop.loc[pop["TRT01A"] == level, "USUBJID"].astype(str)))
              for level in pop["TRT01A"].drop_duplicates()]
    return [*levels, (ALL_LEVELS, set(pop["USUBJID"].astype(str)))]


def _worst(adae: pd.DataFrame) -> pd.DataFrame:
    """One row per subject and term at the worst grade."""
    ae = adae.assign(USUBJID=adae["USUBJID"].astype(str),
                     ATOXGRN=pd.to_numeric(adae["ATOXGRN"], errors="coerce"))
    return ae.groupby(["USUBJID", "AEDECOD"], as_index=False)["ATOXGRN"].max()


def ae_incidence(adae: pd.DataFrame, population: pd.DataFrame) -> pd.DataFrame:
    """Patients with each AE term, by dose level and overall, by worst grade.

    Columns: level, term, N, n_any, pct_any, n_grade_1..n_grade_5 (patients whose worst grade of
    the term is that grade), n_grade_3plus, pct_grade_3plus. Sorted by level, then n_any
    (descending), then term.
    """
    _need(adae, "adae", ("USUBJID", "AEDECOD", "ATOXGRN"))
    worst = _worst(adae)
    rows = []
    for level, members in _levels(population):
        n = len(members)
        sub = worst[worst["USUBJID"].isin(members)]
        for term, g in sub.groupby("AEDECOD", sort=True):
            row: dict[str, object] = {"level": level, "term": term, "N": n, "n_any": len(g)}
            for grade in GRADES:
                row[f"n_grade_{grade}"] = int((g["ATOXGRN"] == grade).sum())
            row["n_grade_3plus"] = int((g["ATOXGRN"] >= 3).sum())
            row["pct_any"] = 100 * len(g) / n if n else np.nan
            row["pct_grade_3plus"] = 100 * row["n_grade_3plus"] / n if n else np.nan  # type: ignore[operator]
            rows.append(row)
    columns = ["level", "term", "N", "n_any", "pct_any", *[f"n_grade_{g}" for g in GRADES],
               "n_grade_3plus", "pct_grade_3plus"]
    out = pd.DataFrame(rows, columns=columns)
    order = {level: i for i, (level, _) in enumerate(_levels(population))}
    return out.sort_values(["level", "n_any", "term"], ascending=[True, False, True],
                           key=lambda s: s.map(order) if s.name == "level" else s,
                           ignore_index=True)


def crs_icans_summary(adae: pd.DataFrame, population: pd.DataFrame) -> pd.DataFrame:
    """CRS and ICANS by dose level: patients by worst ASTCT grade, onset and duration.

    Columns: level, syndrome, N, n_any, pct_any, n_grade_1..n_grade_5, n_grade_3plus,
    episodes, onset_median/min/max (day of each patient's first episode), duration_median/
    min/max (days, per episode with an end date).
    """
    _need(adae, "adae", ("USUBJID", "AEDECOD", "ATOXGRN", "ASTDY", "ADURN"))
    term = adae["AEDECOD"].astype(str).str.strip().str.lower()
    rows = []
    for level, members in _levels(population):
        n = len(members)
        for short, full in SYNDROMES:
            ep = adae[(term == full.lower()) | (term == short.lower())]
            ep = ep[ep["USUBJID"].astype(str).isin(members)]
            per = ep.assign(USUBJID=ep["USUBJID"].astype(str)).groupby("USUBJID")
            worst = pd.to_numeric(per["ATOXGRN"].max(), errors="coerce") if len(ep) else \
                pd.Series(dtype=float)
            onset = per["ASTDY"].min().astype(float) if len(ep) else pd.Series(dtype=float)
            dur = pd.to_numeric(ep["ADURN"], errors="coerce").dropna().astype(float)
            row: dict[str, object] = {"level": level, "syndrome": short, "N": n,
                                      "n_any": int(len(worst)),
                                      "pct_any": 100 * len(worst) / n if n else np.nan}
            for grade in GRADES:
                row[f"n_grade_{grade}"] = int((worst == grade).sum())
            row["n_grade_3plus"] = int((worst >= 3).sum())
            row["episodes"] = int(len(ep))
            for name, values in (("onset", onset.dropna()), ("duration", dur)):
                row[f"{name}_median"] = float(values.median()) if len(values) else np.nan
                row[f"{name}_min"] = float(values.min()) if len(values) else np.nan
                row[f"{name}_max"] = float(values.max()) if len(values) else np.nan
            rows.append(row)
    return pd.DataFrame(rows)
