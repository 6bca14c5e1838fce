"""ADRS: response per assessment, best overall response, response at a landmark day, relapse.

Response categories (RSSTRESC) and their order, best first (ELN 2022 AML [R1], adult ALL
BBMT 2010 [R6], Lugano 2014 [R8]; CLINICAL_REFERENCE.md section 3): CR > CRh > CRi > MLFS > PR >
SD > NR > PD > RELAPSE > NE. Rules:
- Best overall response (PARAMCD ``BOR``): the best OVRLRESP on or after day 1 up to the time
  frame; a relapse after a remission does not lower the best response.
- Remission (CR, CRh, CRi) and response (the protocol's ORR categories, default CR, CRh, CRi,
  MLFS, PR) start at the first assessment in those categories.
- Relapse/progression: the first assessment with ``RELAPSE`` or ``PD`` (overall, marrow or
  extramedullary) after the first infusion.
- Response at day D (``RSPD<D>``): the latest overall assessment with ADY <= D + window
  (window ``RESPONSE_WINDOW_DAYS`` = 14, an assumption: visits around month 3/6 fall in a
  +-2-week window); a relapse, progression or death at or before that assessment's day makes
  it ``RELAPSE``/``PD``/``DEATH``; no assessment by then is ``NE``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from celltrial.derive.timeline import Domains, attach_subject, days_between, domain, to_date

RESPONSE_ORDER: tuple[str, ...] = ("CR", "CRh", "CRi", "MLFS", "PR", "SD", "NR", "PD",
                                   "RELAPSE", "NE")
"""Response categories, best first."""
RANK = {category.upper(): i for i, category in enumerate(RESPONSE_ORDER)}
CANONICAL = {category.upper(): category for category in RESPONSE_ORDER}
REMISSION = ("CR", "CRh", "CRi")
ORR_DEFAULT = ("CR", "CRh", "CRi", "MLFS", "PR")
FAILURE = ("RELAPSE", "PD")
RESPONSE_WINDOW_DAYS = 14


def canonical(value: object) -> str | None:
    """The response category in canonical case (``cri`` -> ``CRi``), None when unknown."""
    return CANONICAL.get(str(value).strip().upper()) if isinstance(value, str) else None


def build_adrs(domains: Domains, adsl: pd.DataFrame) -> pd.DataFrame:
    """ADRS: one row per RS assessment (PARAMCD = RSTESTCD, AVALC canonical category, ADY) plus
    one ``BOR`` row per infused subject with an assessment (best over all follow-up)."""
    rs = domain(domains, "RS", ("RSSEQ", "RSTESTCD", "RSCAT", "RSSTRESC", "RSORRES", "RSDTC",
                                "RSEVAL"))
    rs = attach_subject(rs, adsl)
    value = rs["RSSTRESC"].where(rs["RSSTRESC"].notna(), rs["RSORRES"])
    adt = to_date(rs["RSDTC"])
    trtsdt = pd.to_datetime(rs["TRTSDT"]).astype("datetime64[us]")
    out = pd.DataFrame({
        "STUDYID": rs.get("STUDYID"), "USUBJID": rs["USUBJID"], "PARAMCD": rs["RSTESTCD"],
        "PARCAT1": rs["RSCAT"], "AVALC": value.map(canonical).astype(object),
        "AVAL": value.map(lambda v: RANK.get(str(v).upper(), np.nan)).astype(float),
        "ADT": adt, "ADY": days_between(adt, trtsdt), "RSEVAL": rs["RSEVAL"],
        "TRT01A": rs["TRT01A"], "TRT01AN": rs["TRT01AN"],
    })
    out = out[out["AVALC"].notna()]
    bor = best_response(out, np.inf)
    bor_rows = pd.DataFrame({
        "USUBJID": bor.index, "PARAMCD": "BOR", "AVALC": bor.values.astype(object),
        "AVAL": [float(RANK[v.upper()]) for v in bor.values],
    }).merge(adsl[["USUBJID", "STUDYID", "TRT01A", "TRT01AN"]], on="USUBJID", how="left")
    return pd.concat([out, bor_rows], ignore_index=True).sort_values(
        ["USUBJID", "PARAMCD", "ADY"], na_position="last", ignore_index=True)


def _post_infusion(adrs: pd.DataFrame, paramcd: str = "OVRLRESP") -> pd.DataFrame:
    return adrs[(adrs["PARAMCD"] == paramcd) & (adrs["ADY"] > 0)]


def best_response(adrs: pd.DataFrame, up_to_day: float) -> pd.Series:
    """Best overall response per subject among OVRLRESP assessments on days 1..``up_to_day``."""
    rows = _post_infusion(adrs)
    rows = rows[rows["ADY"] <= up_to_day]
    if rows.empty:
        return pd.Series(dtype=object)
    best = rows.sort_values(["AVAL", "ADY"]).groupby("USUBJID")["AVALC"].first()
    return best.astype(object)


def first_day_in(adrs: pd.DataFrame, categories: tuple[str, ...],
                 paramcds: tuple[str, ...] = ("OVRLRESP",), up_to_day: float = np.inf) -> pd.Series:
    """Per subject, the first post-infusion day with a response in ``categories``."""
    rows = adrs[adrs["PARAMCD"].isin(paramcds) & (adrs["ADY"] > 0) & (adrs["ADY"] <= up_to_day)]
    rows = rows[rows["AVALC"].isin(categories)]
    return rows.groupby("USUBJID")["ADY"].min().astype(float)


def relapse_day(adrs: pd.DataFrame) -> pd.Series:
    """Per subject, the first post-infusion day with RELAPSE or PD in any assessment."""
    return first_day_in(adrs, FAILURE, ("OVRLRESP", "MARROW", "EMRESP"))


def failure_category(adrs: pd.DataFrame) -> pd.Series:
    """Per subject, the category (RELAPSE or PD) of the first post-infusion failure."""
    rows = adrs[adrs["PARAMCD"].isin(("OVRLRESP", "MARROW", "EMRESP")) & (adrs["ADY"] > 0)
                & adrs["AVALC"].isin(FAILURE)].sort_values("ADY")
    return rows.groupby("USUBJID")["AVALC"].first()


def last_assessment_day(adrs: pd.DataFrame) -> pd.Series:
    """Per subject, the last post-infusion overall response assessment day (any category)."""
    return _post_infusion(adrs).groupby("USUBJID")["ADY"].max().astype(float)


def response_at_day(adrs: pd.DataFrame, adsl: pd.DataFrame, day: float,
                    window: float = RESPONSE_WINDOW_DAYS) -> pd.Series:
    """Per infused subject, the response status at study day ``day`` (see module rules)."""
    rows = _post_infusion(adrs)
    rows = rows[rows["ADY"] <= day + window].sort_values("ADY")
    latest = rows.groupby("USUBJID")[["AVALC", "ADY"]].last()
    fail = relapse_day(adrs)
    subjects = adsl.loc[adsl["SAFFL"] == "Y", "USUBJID"]
    status = subjects.map(latest["AVALC"]).astype(object).fillna("NE")
    at = subjects.map(latest["ADY"])
    failed = (subjects.map(fail) <= at.fillna(day + window)).fillna(False)
    kind = subjects.map(failure_category(adrs)).astype(object).fillna("RELAPSE")
    status = status.where(~failed | status.isin(FAILURE), kind)
    by_subject = adsl.set_index("USUBJID")
    death_day = subjects.map(days_between(by_subject["DTHDT"], by_subject["TRTSDT"]))
    died = (death_day <= day + window) & (at.isna() | (death_day >= at))
    status = status.where(~(died.fillna(False) & ~status.isin(FAILURE)), "DEATH")
    return pd.Series(status.to_numpy(), index=subjects.to_numpy(), dtype=object)
