"""Persistence of CAR-T cells as a time to event: time to loss of detectable CAR-T (ADTTE rows).

Why: summarising persistence as the median of each patient's last quantifiable sample (ADPP
TLST) is biased: a patient who dies on day 40 or goes to transplant on day 60 while CAR-T
cells are still detectable contributes a "persistence" of 40 or 60 days, and sampling that
stops early shortens every value (issue 13). Here persistence is the time from the first
infusion to the loss of detectable CAR-T, estimated by Kaplan-Meier with the patients whose
loss was not observed censored, and the reason for each censoring recorded.

Rules, per infused subject and analyte (PCTESTCD ``CARTQPCR``, ``CARTABS``, ``CARTPCT``),
on post-infusion blood samples (ADPC TIME > 0; BLQ = ADPC BLQFL Y):

- *Samples read*: those before the allogeneic HSCT day (ADSL HSCTDT; conditioning and the
  graft end CAR-T persistence for reasons other than its biology) and up to death.
- *Population*: subjects with at least one quantifiable sample read. A subject never
  quantifiable after the infusion (no expansion detected) has no row; the endpoint counts
  them apart (``never_quantifiable``).
- *Event* (CNSR 0, EVNTTYPE 1, ``LOSS OF DETECTABLE CAR-T``): the last quantifiable sample is
  followed by at least ``confirm`` samples read (default 1), all BLQ (none quantifiable after
  it, by definition of "last"). The event day is the first of those BLQ samples: the day the
  loss is first seen (the loss happened between the last quantifiable sample and that day;
  this is the usual right end of the interval, as for a relapse found at a visit).
- *Censored* (CNSR 1) at the last quantifiable sample otherwise, with the reason:
  EVNTTYPE 2 ``DEATH BEFORE LOSS SEEN`` (died afterwards without a BLQ sample read),
  EVNTTYPE 3 ``ALLOGENEIC HSCT BEFORE LOSS SEEN`` (transplanted afterwards), EVNTTYPE 0
  ``DETECTABLE AT LAST SAMPLE`` (still quantifiable when sampling stopped, or fewer than
  ``confirm`` BLQ samples after it).
  Death and HSCT are thereby handled as censoring for the Kaplan-Meier estimate (it estimates
  the time to loss were nobody to die or be transplanted while still carrying CAR-T cells);
  EVNTTYPE keeps them apart so that the same rows give the cumulative incidence of loss with
  death and HSCT as competing events (Aalen-Johansen) when that is the question.
- An intermittent BLQ sample followed by a quantifiable one is not a loss.

PARAMCD ``LOSS<short code>`` (``LOSSQPCR``, ``LOSSABS``, ``LOSSPCT``; ADPC ANALYTES), AVAL in
days, plus LASTQDY (day of the last quantifiable sample) and ANALYTE.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from celltrial.derive.adpc import ANALYTES
from celltrial.derive.timeline import DAY, days_between
from celltrial.errors import invalid

__all__ = ["EVENT_TYPES", "PERSISTENCE_COLUMNS", "build_persistence", "loss_of_persistence",
           "never_quantifiable"]

EVENT_TYPES: dict[int, str] = {
    0: "DETECTABLE AT LAST SAMPLE",
    1: "LOSS OF DETECTABLE CAR-T",
    2: "DEATH BEFORE LOSS SEEN",
    3: "ALLOGENEIC HSCT BEFORE LOSS SEEN",
}
"""EVNTTYPE -> EVNTDESC of a persistence row (module docstring)."""

PERSISTENCE_COLUMNS = ("STUDYID", "USUBJID", "PARAMCD", "PARAM", "STARTDT", "ADT", "AVAL",
                       "CNSR", "EVNTTYPE", "EVNTDESC", "HSCTRULE", "TRT01A", "TRT01AN",
                       "ANALYTE", "LASTQDY")


def loss_of_persistence(samples: list[tuple[float, bool]], *, death_day: float = math.nan,
                        hsct_day: float = math.nan, confirm: int = 1
                        ) -> tuple[float, int, int, float] | None:
    """(AVAL, CNSR, EVNTTYPE, last quantifiable day) for one subject's samples, each
    ``(day, quantifiable)``; None when no sample read is quantifiable.

    >>> loss_of_persistence([(7, True), (28, True), (90, False), (180, False)])
    (90.0, 0, 1, 28.0)
    >>> loss_of_persistence([(7, True), (28, True)], death_day=40)
    (28.0, 1, 2, 28.0)
    """
    if not isinstance(confirm, int) or isinstance(confirm, bool) or confirm < 1:
        raise invalid("confirm", confirm, "a whole number of BLQ samples >= 1")
    read = sorted((float(d), bool(q)) for d, q in samples
                  if d > 0 and (math.isnan(hsct_day) or d < hsct_day)
                  and (math.isnan(death_day) or d <= death_day))
    quantifiable = [d for d, q in read if q]
    if not quantifiable:
        return None
    last_q = quantifiable[-1]
    after = [d for d, q in read if d > last_q]
    if len(after) >= confirm:
        return after[0], 0, 1, last_q
    if not math.isnan(death_day):
        return last_q, 1, 2, last_q
    if not math.isnan(hsct_day):
        return last_q, 1, 3, last_q
    return last_q, 1, 0, last_q


def _blood(adpc: pd.DataFrame) -> pd.DataFrame:
    """Blood samples (PCSPEC BLOOD or empty), as ADPP reads them."""
    if "PCSPEC" not in adpc.columns:
        return adpc
    return adpc[adpc["PCSPEC"].astype(object).fillna("BLOOD").astype(str).str.upper() == "BLOOD"]


def build_persistence(adpc: pd.DataFrame, adsl: pd.DataFrame, *, confirm: int = 1
                      ) -> pd.DataFrame:
    """ADTTE-shaped rows of time to loss of detectable CAR-T (module docstring)."""
    if not isinstance(confirm, int) or isinstance(confirm, bool) or confirm < 1:
        raise invalid("confirm_blq_samples", confirm, "a whole number of BLQ samples >= 1")
    infused = adsl[adsl["SAFFL"] == "Y"].set_index("USUBJID")
    death = days_between(infused["DTHDT"], infused["TRTSDT"])
    hsct = days_between(infused["HSCTDT"], infused["TRTSDT"])
    rows: list[dict[str, Any]] = []
    samples = _blood(adpc)
    samples = samples[samples["USUBJID"].isin(infused.index) & samples["TIME"].notna()
                      & samples["PARAMCD"].isin(list(ANALYTES))]
    for (u, analyte), g in samples.groupby(["USUBJID", "PARAMCD"], sort=True):
        quantifiable = (g["BLQFL"] != "Y") & g["AVAL"].notna() & (g["AVAL"] > 0)
        out = loss_of_persistence(list(zip(g["TIME"].astype(float), quantifiable)),
                                  death_day=float(death[u]), hsct_day=float(hsct[u]),
                                  confirm=confirm)
        if out is None:
            continue
        aval, cnsr, evnttype, last_q = out
        startdt = infused.at[u, "TRTSDT"]
        rows.append({
            "STUDYID": infused.at[u, "STUDYID"], "USUBJID": u,
            "PARAMCD": f"LOSS{ANALYTES[analyte]}",
            "PARAM": f"Time to loss of detectable CAR-T, {analyte} (days)",
            "STARTDT": startdt, "ADT": startdt + math.floor(aval) * DAY, "AVAL": aval,
            "CNSR": cnsr, "EVNTTYPE": evnttype, "EVNTDESC": EVENT_TYPES[evnttype],
            "HSCTRULE": "SAMPLES BEFORE HSCT", "TRT01A": infused.at[u, "TRT01A"],
            "TRT01AN": infused.at[u, "TRT01AN"], "ANALYTE": analyte, "LASTQDY": last_q})
    frame = pd.DataFrame(rows, columns=list(PERSISTENCE_COLUMNS))
    return frame.astype({"AVAL": float, "CNSR": int, "EVNTTYPE": int, "LASTQDY": float,
                         "TRT01AN": float})


def never_quantifiable(adpc: pd.DataFrame, adsl: pd.DataFrame, analyte: str,
                       persistence: pd.DataFrame) -> int:
    """Infused subjects with post-infusion blood samples of ``analyte`` but no row in
    ``persistence`` (never quantifiable among the samples read)."""
    blood = _blood(adpc)
    sampled = blood[(blood["PARAMCD"] == analyte) & (blood["TIME"] > 0)
                    & blood["USUBJID"].isin(adsl.loc[adsl["SAFFL"] == "Y", "USUBJID"])]
    rows = persistence[persistence["ANALYTE"] == analyte]
    return int(len(np.setdiff1d(sampled["USUBJID"].unique(), rows["USUBJID"].unique())))
