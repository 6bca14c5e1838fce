"""ADPC (CAR-T concentrations over time) and ADPP (NCA parameters per subject and analyte).

ADPC rules: TIME = days from the first infusion (float; exact to the minute when both the sample
and the first infusion carry a clock time, else whole days); BLQFL = Y when the result is
missing, reported as ``<LLOQ`` or below PCLLOQ, and then AVAL is NaN (the NCA applies the BLQ
rule: before the first quantifiable sample = 0, after it = missing; ``celltrial.stats.nca``).
Only blood samples (PCSPEC BLOOD or empty) enter ADPP; marrow samples stay in ADPC.

ADPP: ``celltrial.stats.nca`` (PKNCA definitions, CLINICAL_REFERENCE.md 5.3; linear-up/log-down
by default) per subject and analyte over all post-infusion blood samples; time 0 = first
infusion, also for split infusions. One row per parameter: PARAMCD ``<PPTESTCD>_<analyte>``
(e.g. ``CMAX_QPCR``) so that qPCR and flow never mix, AVAL the value or NaN with REASON.
TLAST is the time of the last quantifiable sample, a sampling quantity and not a measure of
persistence: death, transplant and the end of sampling cut it short while CAR-T cells are still
detectable. Persistence is the time to loss of detectable CAR-T, estimated by Kaplan-Meier with
those patients censored (ADTTE ``LOSS*`` rows, ``celltrial.derive.persistence``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from celltrial.derive.timeline import DAY, Domains, attach_subject, domain, flag, has_clock_time
from celltrial.derive.timeline import to_datetime, to_number

ANALYTES: dict[str, str] = {"CARTQPCR": "QPCR", "CARTPCT": "PCT", "CARTABS": "ABS"}
"""PCTESTCD -> short analyte code used in ADPP PARAMCD."""

ADPC_COVARIATES = ("TRT01A", "TRT01AN", "TRTDOSE", "DISEASE", "AGE", "SEX", "BWEIGHT", "BBLAST",
                   "BCD7BLST", "TRTSDTM", "SAFFL")


@dataclass(frozen=True)
class NCAParameter:
    """An ADPP parameter: attribute of ``celltrial.stats.nca``'s result, PPTESTCD, unit rule."""

    attribute: str
    pptestcd: str
    label: str
    time_unit: bool
    area_unit: bool


NCA_PARAMETERS: tuple[NCAParameter, ...] = (
    NCAParameter("cmax", "CMAX", "Maximum level (Cmax)", False, False),
    NCAParameter("tmax", "TMAX", "Time of maximum level (Tmax)", True, False),
    NCAParameter("clast", "CLST", "Last quantifiable level (Clast)", False, False),
    NCAParameter("tlast", "TLST", "Time of last quantifiable level (Tlast)", True, False),
    NCAParameter("auc_0_28", "AUC28", "AUC from day 0 to day 28", False, True),
    NCAParameter("auc_last", "AUCLST", "AUC from day 0 to Tlast", False, True),
)


def build_adpc(domains: Domains, adsl: pd.DataFrame) -> pd.DataFrame:
    """ADPC from the PC domain and ADSL (first infusion date-time and covariates)."""
    pc = domain(domains, "PC", ("PCSEQ", "PCTESTCD", "PCSTRESN", "PCSTRESU", "PCORRES", "PCLLOQ",
                                "PCSPEC", "PCDTC"))
    pc = attach_subject(pc, adsl, ADPC_COVARIATES)
    sample = to_datetime(pc["PCDTC"])
    first = pd.to_datetime(pc["TRTSDTM"]).astype("datetime64[us]")
    exact = has_clock_time(pc["PCDTC"]) & has_clock_time(first)
    by_date = (sample.dt.normalize() - first.dt.normalize()) / DAY
    time = ((sample - first) / DAY).where(exact, by_date).astype(float)
    value, lloq = to_number(pc["PCSTRESN"]), to_number(pc["PCLLOQ"])
    below = (value.isna() | (value < lloq).fillna(False)
             | pc["PCORRES"].astype(str).str.startswith("<"))
    out = pc.assign(
        PARAMCD=pc["PCTESTCD"], PARAM=pc["PCTESTCD"].map(
            {"CARTQPCR": "CAR transgene (copies/ug gDNA)", "CARTPCT": "CAR+ T cells (% of CD3+)",
             "CARTABS": "CAR+ T cells (cells/uL)"}).astype(object),
        TIME=time, ADY=np.floor(by_date).astype(float), ADT=sample.dt.normalize(),
        AVAL=value.where(~below), BLQFL=flag(below), LLOQ=lloq, AVALU=pc["PCSTRESU"],
        dose_level=pc["TRT01AN"], dose_cells_per_kg=pc["TRTDOSE"],
        baseline_cd7_blast_pct=pc["BCD7BLST"], disease=pc["DISEASE"],
    ).drop(columns=["TRTSDTM"])
    return out.sort_values(["USUBJID", "PARAMCD", "TIME"], ignore_index=True)


def _value(result: Any, attribute: str) -> tuple[float, str]:
    """A number, or NaN and the reason carried by the missing value."""
    item = getattr(result, attribute)
    if isinstance(item, int | float | np.floating | np.integer):
        return float(item), ""
    value = getattr(item, "value", None)
    if value is not None and getattr(item, "status", "ok") == "ok" and np.isfinite(value):
        return float(value), ""
    return float("nan"), str(getattr(item, "reason", item))


def build_adpp(adpc: pd.DataFrame, method: str = "linear-up/log-down") -> pd.DataFrame:
    """ADPP: NCA parameters per infused subject and analyte from the blood samples of ADPC."""
    from celltrial.stats import nca

    blood = adpc[(adpc["PCSPEC"].astype(object).fillna("BLOOD").astype(str).str.upper() == "BLOOD")
                 & (adpc["SAFFL"] == "Y") & (adpc["TIME"] >= 0)]
    rows = []
    for (subject, analyte), group in blood.groupby(["USUBJID", "PARAMCD"], sort=True):
        group = group.sort_values("TIME")
        lloq = group["LLOQ"].dropna()
        result = nca(group["TIME"].to_numpy(float), group["AVAL"].to_numpy(float),
                     lloq=float(lloq.iloc[0]) if len(lloq) else 0.0, method=method)
        first = group.iloc[0]
        unit = first["AVALU"] if isinstance(first["AVALU"], str) else ""
        for p in NCA_PARAMETERS:
            value, reason = _value(result, p.attribute)
            rows.append({
                "STUDYID": first.get("STUDYID"), "USUBJID": subject,
                "PARAMCD": f"{p.pptestcd}_{ANALYTES.get(analyte, analyte)}",
                "PPTESTCD": p.pptestcd, "PARAM": f"{p.label}, {first['PARAM']}",
                "ANALYTE": analyte, "AVAL": value,
                "AVALU": "day" if p.time_unit else (f"{unit}*day" if p.area_unit else unit),
                "REASON": reason, "METHOD": method, "NSAMP": int(len(group)),
                "TRT01A": first["TRT01A"], "TRT01AN": first["TRT01AN"],
                "TRTDOSE": first["TRTDOSE"], "DISEASE": first["DISEASE"],
            })
    columns = ["STUDYID", "USUBJID", "PARAMCD", "PPTESTCD", "PARAM", "ANALYTE", "AVAL", "AVALU",
               "REASON", "METHOD", "NSAMP", "TRT01A", "TRT01AN", "TRTDOSE", "DISEASE"]
    return pd.DataFrame(rows, columns=columns)
