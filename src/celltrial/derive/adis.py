"""ADIS: anti-CAR antibody (ADA) results with baseline and treatment-emergent positivity.

Rules (FDA immunogenicity guidance terms): baseline = the last result on or before day 0;
a subject is treatment-emergent positive (TEPOSFL = Y on every row of the subject) when a
post-infusion sample is POSITIVE and the baseline is NEGATIVE or missing ("treatment-induced"),
or the baseline is POSITIVE and a post-infusion titre rose at least 4-fold
("treatment-boosted", only when titres ISSTRESN are given).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from celltrial.derive.timeline import Domains, attach_subject, days_between, domain, flag
from celltrial.derive.timeline import to_date, to_number

BOOST_FOLD = 4.0


def build_adis(domains: Domains, adsl: pd.DataFrame) -> pd.DataFrame:
    """ADIS from the IS domain and ADSL."""
    is_ = domain(domains, "IS", ("ISSEQ", "ISTESTCD", "ISSTRESC", "ISORRES", "ISSTRESN", "ISDTC"))
    is_ = attach_subject(is_, adsl)
    adt = to_date(is_["ISDTC"])
    result = is_["ISSTRESC"].where(is_["ISSTRESC"].notna(), is_["ISORRES"])
    out = is_.assign(PARAMCD=is_["ISTESTCD"], AVALC=result.astype(str).str.upper().where(
        result.notna()).astype(object), AVAL=to_number(is_["ISSTRESN"]), ADT=adt,
        ADY=days_between(adt, pd.to_datetime(is_["TRTSDT"]).astype("datetime64[us]")))
    out = out.sort_values(["USUBJID", "PARAMCD", "ADY"], ignore_index=True)
    pre = out[(out["ADY"] <= 0) & out["AVALC"].notna()]
    base = pre.groupby(["USUBJID", "PARAMCD"])[["AVALC", "AVAL"]].last()
    keys = pd.MultiIndex.from_frame(out[["USUBJID", "PARAMCD"]])
    basec = pd.Series(base["AVALC"].reindex(keys).to_numpy(), index=out.index, dtype=object)
    base_titre = pd.Series(base["AVAL"].reindex(keys).to_numpy(dtype=float), index=out.index)
    post = out["ADY"] > 0
    induced = post & (out["AVALC"] == "POSITIVE") & (basec != "POSITIVE")
    boosted = post & (basec == "POSITIVE") & (out["AVAL"] >= BOOST_FOLD * base_titre)
    emergent = (induced | boosted.fillna(False)).groupby([out["USUBJID"], out["PARAMCD"]]) \
        .transform("any")
    base_flag = np.zeros(len(out), dtype=bool)
    if not pre.empty:
        base_flag = out.index.isin(pre.groupby(["USUBJID", "PARAMCD"]).tail(1).index)
    return out.assign(ABLFL=flag(pd.Series(base_flag, index=out.index)), BASEC=basec,
                      BASE=base_titre, TEPOSFL=flag(emergent))
