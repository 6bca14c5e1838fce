"""DLT adjudication per infused subject, from the SDTM domains and the protocol.

:func:`adjudicate` is the one place where a patient's DLT status and DLT-evaluability are
decided; ADSL (DLTFL, DLTEVLFL), ``celltrial escalate``, ``celltrial dlt`` and the virtual
trials read it. The clinical rules are ``celltrial.clinical.evaluate_dlt`` (the protocol's
``dlt`` data; CTCAE v5.0; ASTCT 2019 for CRS and ICANS); this module gathers their inputs:

- Toxicities: the treatment-emergent AEs (ADAE). A cytopenia AE carries the CTCAE v5.0 grade
  course of its blood count (LB NEUT, PLAT, HGB, LYM, WBC through ADLB); a CRS or ICANS AE
  carries its daily ASTCT 2019 grades (XC XCCRSGR / XCICAGR, computed at capture), in
  fractional days where XCDTC has a clock time (``celltrial.derive.adae.xc_grade_courses``).
- Censoring (``CENSORING_SOURCES``, only the events the protocol lists in
  ``dlt.censored_by``): the first such event after the first infusion date; its study day is
  ``censor_day`` of ``evaluate_dlt``.
- DLT-evaluable: infused and (had a DLT, or followed through the whole window: last known
  alive on or after day ``window_days``, or died after it), and not censored inside the window
  (a censoring day < ``window_days``) without a DLT. A patient who leaves, dies or is censored
  inside the window without a DLT is not evaluable (docs/derive.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from celltrial.derive.timeline import Domains, days_between, domain, lookup, to_date

__all__ = ["ADJUDICATION_COLUMNS", "CENSORING_SOURCES", "CensoringSource", "adjudicate",
           "censoring", "event_table"]


def _upper(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), "").astype(str).str.strip().str.upper()


@dataclass(frozen=True)
class CensoringSource:
    """Where a censoring event of the protocol vocabulary is found: the domain, its date
    variable, the variables read, and which records are the event."""

    event: str
    domain: str
    date: str
    variables: tuple[str, ...]
    rule: str
    select: Callable[[pd.DataFrame], pd.Series]


WITHDRAWAL_TERMS = frozenset({"WITHDRAWAL BY SUBJECT", "WITHDRAWN"})
ANTICANCER = "ANTICANCER THERAPY"

CENSORING_SOURCES: tuple[CensoringSource, ...] = (
    CensoringSource("hsct", "PR", "PRSTDTC", ("PRTRT",), "PR PRTRT = ALLOGENEIC HSCT",
                    lambda f: _upper(f["PRTRT"]) == "ALLOGENEIC HSCT"),
    CensoringSource("new_anticancer_therapy", "PR", "PRSTDTC", ("PRTRT", "PRCAT"),
                    "PR PRCAT = ANTICANCER THERAPY, or PRTRT containing ANTICANCER THERAPY "
                    "(e.g. `ANTICANCER THERAPY: VENETOCLAX`)",
                    lambda f: (_upper(f["PRCAT"]) == ANTICANCER)
                    | _upper(f["PRTRT"]).str.contains(ANTICANCER, regex=False)),
    CensoringSource("withdrawal", "DS", "DSSTDTC", ("DSDECOD",),
                    "DS DSDECOD = WITHDRAWAL BY SUBJECT or WITHDRAWN",
                    lambda f: _upper(f["DSDECOD"]).isin(WITHDRAWAL_TERMS)),
)
"""Censoring events as data (protocol vocabulary of ``dlt.censored_by``). Only events dated
after the first infusion date (study day >= 1) censor: a procedure before or on day 0
(lymphodepletion, bridging therapy) belongs to the treatment, not to follow-up."""

ADJUDICATION_COLUMNS = ("USUBJID", "TRT01A", "TRT01AN", "DLTEVLFL", "DLTEVLRS", "DLTFL",
                        "DLTRULE", "DLTEXC", "DLTRSN", "CENSDY", "CENSEVT", "EVENTS", "RESULT")
"""One row per infused subject: dose level (TRT01A, TRT01AN), DLT-evaluable (Y/N) and why
(DLTEVLRS), DLT (Y/N), the rules of its DLTs (DLTRULE) and the exceptions that excused a rule
match (DLTEXC), the decision in words (DLTRSN), the censoring day and event (CENSDY,
CENSEVT; NaN / "" when none), the events considered as text (EVENTS) and the
``celltrial.clinical.DLTResult`` itself (RESULT)."""


def _listed_events(protocol: Any) -> list[str]:
    censored_by = getattr(getattr(protocol, "dlt", None), "censored_by", None)
    return list(getattr(censored_by, "events", None) or [])


def censoring(domains: Domains, protocol: Any, adsl: pd.DataFrame, *,
              events: list[str] | None = None) -> pd.DataFrame:
    """Per subject with a censoring event: USUBJID, CENSDY (study day of the first event the
    protocol lists, after the first infusion date) and CENSEVT (its name; the first listed
    when two fall on the same day). ``events`` replaces the protocol's list (ADTOX's ICAHT
    censoring reads HSCT and new anticancer therapy whatever the DLT rules say)."""
    start = pd.Series(pd.to_datetime(adsl["TRTSDT"]).astype("datetime64[us]").to_numpy(),
                      index=adsl["USUBJID"].to_numpy())
    found = []
    for order, event in enumerate(_listed_events(protocol) if events is None else events):
        for source in (s for s in CENSORING_SOURCES if s.event == event):
            frame = domain(domains, source.domain, (source.date, *source.variables))
            if frame.empty:
                continue
            rows = frame[source.select(frame).to_numpy()]
            when = to_date(rows[source.date])
            day = days_between(when, lookup(rows["USUBJID"], start).astype("datetime64[us]"))
            found.append(pd.DataFrame({"USUBJID": rows["USUBJID"], "CENSDY": day,
                                       "CENSEVT": event, "ORDER": order}))
    if not found:
        return pd.DataFrame({"USUBJID": pd.Series([], dtype=object),
                             "CENSDY": pd.Series([], dtype=float),
                             "CENSEVT": pd.Series([], dtype=object)})
    events = pd.concat(found, ignore_index=True)
    events = events[events["CENSDY"] >= 1].sort_values(["USUBJID", "CENSDY", "ORDER"])
    first = events.drop_duplicates("USUBJID")[["USUBJID", "CENSDY", "CENSEVT"]]
    return first.reset_index(drop=True)


def _cytopenia_adlb(domains: Domains, adsl: pd.DataFrame, adae: pd.DataFrame
                    ) -> pd.DataFrame | None:
    """ADLB of the blood counts whose CTCAE term is the term of one of the subject's AEs (the
    only counts a grade course is read from; grading every count would be wasted time)."""
    from celltrial.derive.adlb import CTCAE_TERMS, HEMATOLOGIC_TESTS, build_adlb

    lb = domain(domains, "LB", ("LBTESTCD",))
    if lb.empty or adae.empty:
        return None
    test_of = {term.lower(): test for test in HEMATOLOGIC_TESTS for term in CTCAE_TERMS[test]}
    wanted = pd.DataFrame({"USUBJID": adae["USUBJID"],
                           "LBTESTCD": adae["AEDECOD"].astype(str).str.lower().map(test_of)})
    wanted = wanted.dropna().drop_duplicates()
    if wanted.empty:
        return None
    counts = lb.merge(wanted, on=["USUBJID", "LBTESTCD"], how="inner")
    return build_adlb({**domains, "LB": counts}, adsl)


def _event_text(event: Any) -> str:
    from celltrial.clinical.dlt import study_day_text

    met = "" if event.met_day is None else f" met day {study_day_text(event.met_day)}"
    verdict = {"dlt": f"DLT ({event.rule_id})",
               "excused": f"excused by {event.excused_by} ({event.rule_id})",
               "outside_window": f"outside window ({event.rule_id})",
               "censored": f"after censoring ({event.rule_id})"}[event.status]
    return f"{event.toxicity.term} grade {event.grade}{met}: {verdict}"


def _decision(result: Any) -> str:
    if result.dlts:
        return "DLT: " + "; ".join(e.reason for e in result.dlts)
    excused = [e for e in result.events if e.status == "excused"]
    if excused:
        return "no DLT: " + "; ".join(e.reason for e in excused)
    if result.not_counted:
        return "no DLT: no toxicity met a DLT rule in the window (" + "; ".join(
            e.reason for e in result.not_counted) + ")"
    return "no DLT: no toxicity met a DLT rule"


def adjudicate(domains: Domains, protocol: Any, adsl: pd.DataFrame, *,
               adae: pd.DataFrame | None = None, adlb: pd.DataFrame | None = None
               ) -> pd.DataFrame:
    """The DLT adjudication of every infused subject (``ADJUDICATION_COLUMNS``).

    ``adsl`` needs USUBJID, SAFFL, TRTSDT, TRT01A, TRT01AN, LSTALVDT and DTHDT (ADSL before
    its DLT flags is enough); ``adae``/``adlb`` are built when not given (``adlb`` only from
    the blood counts). Rules: the module docstring and docs/derive.md. On a study in the store::

        protocol = load("cd7-zz-phase1")
        domains = read_domains(open_store(url), protocol.id)
        table = adjudicate(domains, protocol, build_adsl(domains, protocol))
    """
    from celltrial.clinical import evaluate_dlt
    from celltrial.derive.adae import build_adae, toxicities, xc_grade_courses

    infused = adsl[adsl["SAFFL"] == "Y"].reset_index(drop=True)
    if adae is None:
        adae = build_adae(domains, adsl)
    if adlb is None:
        adlb = _cytopenia_adlb(domains, adsl, adae)
    tox = toxicities(adae, adlb, xc_grade_courses(domains, adsl))
    cens = censoring(domains, protocol, infused).set_index("USUBJID")
    censor_day = infused["USUBJID"].map(cens["CENSDY"]).astype(float)
    censor_event = infused["USUBJID"].map(cens["CENSEVT"]).astype(object)
    results = [evaluate_dlt(protocol, tox.get(subject, []), first_infusion_day=0,
                            censor_day=None if np.isnan(day) else float(day),
                            censor_event=None if np.isnan(day) else str(event))
               for subject, day, event in zip(infused["USUBJID"], censor_day, censor_event)]

    window = float(protocol.dlt.window_days)
    trtsdt = pd.to_datetime(infused["TRTSDT"]).astype("datetime64[us]")
    alive = days_between(pd.to_datetime(infused["LSTALVDT"]).astype("datetime64[us]"),
                         trtsdt).to_numpy(float)
    death = days_between(pd.to_datetime(infused["DTHDT"]).astype("datetime64[us]"),
                         trtsdt).to_numpy(float)
    cday = censor_day.to_numpy(float)
    dlt = np.array([r.is_dlt for r in results], dtype=bool)
    with np.errstate(invalid="ignore"):
        inside = cday < window
        followed = (alive >= window) | (death >= window)
    evaluable = dlt | (followed & ~inside)
    w = f"{window:g}-day window"
    reasons = []
    for i, event in enumerate(censor_event):
        if dlt[i]:
            reasons.append("had a DLT")
        elif inside[i]:
            reasons.append(f"censored on day {cday[i]:g} ({event}) inside the {w} without a "
                           "DLT")
        elif death[i] >= window:
            reasons.append(f"followed through the {w} (died on day {death[i]:g})")
        elif followed[i]:
            reasons.append(f"followed through the {w} (last known alive day {alive[i]:g})")
        elif not np.isnan(death[i]):
            reasons.append(f"died on day {death[i]:g} inside the {w} without a DLT")
        elif not np.isnan(alive[i]):
            reasons.append(f"last known alive day {alive[i]:g}, inside the {w}, without a DLT")
        else:
            reasons.append("no date known alive after the infusion")
    yes_no = np.array(["N", "Y"], dtype=object)
    return pd.DataFrame({
        "USUBJID": infused["USUBJID"].to_numpy(),
        "TRT01A": infused["TRT01A"].to_numpy(),
        "TRT01AN": infused["TRT01AN"].astype(float).to_numpy(),
        "DLTEVLFL": yes_no[evaluable.astype(int)],
        "DLTEVLRS": pd.Series(reasons, dtype=object).to_numpy(),
        "DLTFL": yes_no[dlt.astype(int)],
        "DLTRULE": [",".join(dict.fromkeys(e.rule_id for e in r.dlts)) for r in results],
        "DLTEXC": [",".join(dict.fromkeys(e.excused_by for e in r.events
                                          if e.excused_by is not None)) for r in results],
        "DLTRSN": [_decision(r) for r in results],
        "CENSDY": cday,
        "CENSEVT": censor_event.fillna("").to_numpy(),
        "EVENTS": [" | ".join(_event_text(e) for e in r.considered) for r in results],
        "RESULT": pd.Series(results, dtype=object).to_numpy(),
    }, columns=list(ADJUDICATION_COLUMNS))


def event_table(adjudication: pd.DataFrame) -> pd.DataFrame:
    """One row per event considered (from :func:`adjudicate`'s RESULT): USUBJID, TERM,
    CATEGORY, GRADE (judged), REPGRADE (reported), ONSETDY, METDY (the day it met the rule),
    RULE, EXCUSED, STATUS (dlt, excused, outside_window, censored) and REASON."""
    rows = [{"USUBJID": subject, "TERM": e.toxicity.term, "CATEGORY": e.toxicity.category,
             "GRADE": e.grade, "REPGRADE": e.toxicity.grade, "ONSETDY": e.toxicity.onset_day,
             "METDY": e.met_day, "RULE": e.rule_id, "EXCUSED": e.excused_by,
             "STATUS": e.status, "REASON": e.reason}
            for subject, result in zip(adjudication["USUBJID"], adjudication["RESULT"])
            for e in result.considered]
    columns = ["USUBJID", "TERM", "CATEGORY", "GRADE", "REPGRADE", "ONSETDY", "METDY", "RULE",
               "EXCUSED", "STATUS", "REASON"]
    return pd.DataFrame(rows, columns=columns)
