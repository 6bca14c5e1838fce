"""SDTM trial design datasets TE, TA and TI from the protocol (SDTMIG 3.4 section 7).

- TE (trial elements): screening ``SCRN``; one CAR-T infusion element per dose level
  (``INFDL1``, ...), from study day 0 (first infusion) to the end of the DLT window
  (``dlt.window_days``); follow-up ``FU`` from the end of the DLT window to the last follow-up
  visit (``schedule.followup_days``). TEDUR is the planned duration (ISO 8601).
- TA (trial arms): one arm per dose level (ARMCD = the dose level id, ARM = its label, as DM),
  elements SCRN -> INF<dose level> -> FU in epochs SCREENING, TREATMENT, FOLLOW-UP (CDISC CT
  EPOCH); the screening element branches to the dose level assigned by the escalation rule
  (TABRANCH).
- TI (trial inclusion/exclusion criteria): one row per eligibility criterion of the protocol,
  IETESTCD = its id, IETEST = its registered wording (<= 200 characters, SDTMIG 3.4 TI),
  IECAT INCLUSION/EXCLUSION (CT IECAT), TIVERS = the protocol version.

- TS (trial summary, SDTMIG 3.4 section 7.6): one row per parameter value (TSSEQ numbers the
  values of one parameter), TSPARMCD/TSPARM and coded TSVAL from CDISC CT (TSVALCD = the NCI
  code, TSVCDREF ``CDISC CT``, TSVCDVER the CT release); durations and dates as ISO 8601
  (TSVCDREF ``ISO 8601``); a parameter the protocol does not state (phase ``not stated``)
  has TSVAL null and TSVALNF ``UNK`` (ISO 21090 null flavour, SDTMIG 3.4 TS assumption 9).
  From the protocol: TITLE, REGID, SDTIGVER, STYPE ``INTERVENTIONAL``, TPHASE, TTYPE (from
  the primary endpoints' derivations, plus ``DOSE FINDING`` with more than one dose level),
  INTMODEL ``SINGLE GROUP`` (one arm at a time, dose levels in sequence), INTTYPE
  ``GENETIC`` (CAR-T cells are ex vivo gene-modified cells: CT definition of the term),
  TRT, DOSFRM ``SUSPENSION``, ROUTE ``INTRAVENOUS``, NARMS, PLANSUB, AGEMIN/AGEMAX (from
  the eligibility rule on ``age_years``), SEXPOP ``BOTH`` (no criterion on sex), HLTSUBJI
  ``N``, RANDOM ``N``, TBLIND ``OPEN LABEL``, TCNTRL ``NONE``, LENGTH (last follow-up day),
  INDIC (one row per registered condition), OUTMSPRI/OUTMSSEC (endpoint names). From DM
  when given: ACTSUB (subjects with an arm) and SSTDTC (earliest informed consent of those
  subjects; screen failures excluded, as the CT definition of SSTDTC says).
- TV (trial visits, SDTMIG 3.4 section 7.3.1): a screening visit, then one visit per planned
  assessment day of the schedule (kinetics, cytokines, CD7, marrow, follow-up; the union),
  the same for every arm (ARMCD null). VISITDY is the SDTM study day (SDTMIG 3.4 section
  4.4.4: day 1 is RFSTDTC, there is no day 0), so protocol day d >= 0 (day 0 = first
  infusion) is VISITDY d + 1 and VISIT names the protocol day (``DAY 28``).

The store does not keep these datasets: they are rebuilt from the protocol on every export and
ignored on import.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from celltrial.store.sdtm import ct
from celltrial.store.sdtm.spec import SDTMIG_VERSION

TRIAL_DESIGN = ("TE", "TA", "TI", "TS", "TV")
IETEST_MAX = 200
TSVAL_MAX = 200
"""SDTMIG 3.4 TS: TSVAL holds at most 200 characters (longer text goes to TSVAL1-TSVALn)."""

SAFETY_DERIVATIONS = frozenset({"ae_incidence", "crs_icans_incidence", "dlt_rate"})
"""Endpoint derivations (celltrial.protocols.derivations) that make a trial a SAFETY trial."""
EFFICACY_DERIVATIONS = frozenset({"remission_rate", "orr", "mrd_negative_rate",
                                  "molecular_remission_rate", "em_response_rate",
                                  "best_response", "os", "pfs", "efs", "dor", "cir"})
"""Endpoint derivations that make a trial an EFFICACY trial (TTYPE)."""
PK_PREFIX = "ck_"
"""Cellular-kinetic endpoint derivations (``ck_...``): TTYPE PHARMACOKINETIC."""

TS_RESPONSES = {"STYPE": "STYPE", "TPHASE": "TPHASE", "TTYPE": "TTYPE",
                "INTMODEL": "INTMODEL", "INTTYPE": "INTTYPE", "DOSFRM": "FRM", "ROUTE": "ROUTE",
                "SEXPOP": "SEXPOP", "HLTSUBJI": "NY", "RANDOM": "NY", "TBLIND": "TBLIND",
                "TCNTRL": "TCNTRL"}
"""TS parameters whose value is a CDISC CT response: TSPARMCD -> codelist of TSVAL (CT
2025-03-28 definitions of the TSPARMCD terms)."""

_PHASES = {"1": "PHASE I TRIAL", "1/2": "PHASE I/II TRIAL", "2": "PHASE II TRIAL"}
_AGE = re.compile(r"(?:(\d+)\s*<=?\s*)?age_years(?:\s*<=?\s*(\d+))?")


def _te(protocol: Any) -> pd.DataFrame:
    window = int(protocol.dlt.window_days)
    last = int(max(protocol.schedule.followup_days))
    rows = [{"ETCD": "SCRN", "ELEMENT": "Screening",
             "TESTRL": "Informed consent",
             "TEENRL": "Eligibility confirmed (dose level assigned) or screen failure",
             "TEDUR": None}]
    for level in protocol.dose_levels:
        rows.append({"ETCD": f"INF{level.id}"[:8],
                     "ELEMENT": f"{protocol.intervention.product} {level.label or level.id}",
                     "TESTRL": "First CAR-T infusion (study day 0)",
                     "TEENRL": f"End of the {window}-day DLT window",
                     "TEDUR": f"P{window}D"})
    rows.append({"ETCD": "FU", "ELEMENT": "Follow-up",
                 "TESTRL": f"End of the {window}-day DLT window",
                 "TEENRL": f"Study day {last}, death or withdrawal",
                 "TEDUR": f"P{last - window}D"})
    return pd.DataFrame(rows)


def _ta(protocol: Any) -> pd.DataFrame:
    rows = []
    for level in protocol.dose_levels:
        arm = level.label or level.id
        rows += [
            {"ARMCD": level.id, "ARM": arm, "TAETORD": 1.0, "ETCD": "SCRN",
             "ELEMENT": "Screening",
             "TABRANCH": f"Assigned to {level.id} by the escalation rule", "TATRANS": None,
             "EPOCH": "SCREENING"},
            {"ARMCD": level.id, "ARM": arm, "TAETORD": 2.0, "ETCD": f"INF{level.id}"[:8],
             "ELEMENT": f"{protocol.intervention.product} {arm}", "TABRANCH": None,
             "TATRANS": None, "EPOCH": "TREATMENT"},
            {"ARMCD": level.id, "ARM": arm, "TAETORD": 3.0, "ETCD": "FU",
             "ELEMENT": "Follow-up", "TABRANCH": None, "TATRANS": None,
             "EPOCH": "FOLLOW-UP"},
        ]
    return pd.DataFrame(rows)


def _ti(protocol: Any) -> pd.DataFrame:
    rows = []
    for category, criteria in (("INCLUSION", protocol.eligibility.inclusion),
                               ("EXCLUSION", protocol.eligibility.exclusion)):
        for criterion in criteria:
            text = " ".join(str(criterion.text).split())
            rows.append({"IETESTCD": criterion.id, "IETEST": text[:IETEST_MAX],
                         "IECAT": category,
                         "TIVERS": str(protocol.version) if protocol.version else None})
    return pd.DataFrame(rows)


def _ages(protocol: Any) -> tuple[int | None, int | None]:
    """(minimum, maximum) age in years that the eligibility rules on ``age_years`` allow."""
    low = high = None
    for criterion in protocol.eligibility.inclusion:
        for match in _AGE.finditer(str(criterion.rule)):
            if match.group(1):
                low = int(match.group(1))
            if match.group(2):
                high = int(match.group(2))
    return low, high


def _coded(parmcd: str, value: str) -> dict[str, Any]:
    """TSVAL of parameter ``parmcd`` with its CDISC CT code (TSVALCD), dictionary, version."""
    codelist = TS_RESPONSES[parmcd]
    code = next(t.code for t in ct.terms() if t.codelist == codelist and t.value == value)
    return {"TSVAL": value, "TSVALCD": code, "TSVCDREF": "CDISC CT",
            "TSVCDVER": ct.CT_RELEASE}


def _iso(value: str) -> dict[str, Any]:
    return {"TSVAL": value, "TSVCDREF": "ISO 8601"}


def _trial_types(protocol: Any) -> list[str]:
    primary = [e.derivation for e in protocol.endpoints if e.kind == "primary"]
    types = []
    if any(d in SAFETY_DERIVATIONS for d in primary):
        types.append("SAFETY")
    if any(d in EFFICACY_DERIVATIONS for d in primary):
        types.append("EFFICACY")
    if any(str(e.derivation).startswith(PK_PREFIX) for e in protocol.endpoints):
        types.append("PHARMACOKINETIC")
    if len(protocol.dose_levels) > 1:
        types.append("DOSE FINDING")
    return types


def _ts(protocol: Any, dm: pd.DataFrame | None = None) -> pd.DataFrame:
    rows: list[tuple[str, dict[str, Any]]] = [("TITLE", {"TSVAL": protocol.title})]
    if protocol.registration:
        rows.append(("REGID", {"TSVAL": protocol.registration}))
    rows += [("SDTIGVER", {"TSVAL": SDTMIG_VERSION}),
             ("STYPE", _coded("STYPE", "INTERVENTIONAL"))]
    phase = _PHASES.get(str(protocol.phase))
    rows.append(("TPHASE", _coded("TPHASE", phase) if phase else {"TSVALNF": "UNK"}))
    rows += [("TTYPE", _coded("TTYPE", t)) for t in _trial_types(protocol)]
    rows += [("INTMODEL", _coded("INTMODEL", "SINGLE GROUP")),
             ("INTTYPE", _coded("INTTYPE", "GENETIC")),
             ("TRT", {"TSVAL": protocol.intervention.product}),
             ("DOSFRM", _coded("DOSFRM", "SUSPENSION")),
             ("ROUTE", _coded("ROUTE", "INTRAVENOUS")),
             ("NARMS", {"TSVAL": str(len(protocol.dose_levels))}),
             ("PLANSUB", {"TSVAL": str(int(protocol.target_enrollment))})]
    low, high = _ages(protocol)
    rows.append(("AGEMIN", _iso(f"P{low}Y") if low is not None else {"TSVALNF": "UNK"}))
    rows.append(("AGEMAX", _iso(f"P{high}Y") if high is not None else {"TSVALNF": "PINF"}))
    rows += [("SEXPOP", _coded("SEXPOP", "BOTH")),
             ("HLTSUBJI", _coded("HLTSUBJI", "N")),
             ("RANDOM", _coded("RANDOM", "N")),
             ("TBLIND", _coded("TBLIND", "OPEN LABEL")),
             ("TCNTRL", _coded("TCNTRL", "NONE")),
             ("LENGTH", _iso(f"P{int(max(protocol.schedule.followup_days))}D"))]
    rows += [("INDIC", {"TSVAL": c}) for c in protocol.conditions]
    rows += [("OUTMSPRI" if e.kind == "primary" else "OUTMSSEC", {"TSVAL": e.name})
             for e in protocol.endpoints if e.kind in ("primary", "secondary")]
    if dm is not None:
        arms = dm["ARMCD"] if "ARMCD" in dm else pd.Series([], dtype=object)
        enrolled = dm[arms.map(lambda v: isinstance(v, str) and bool(v.strip()))]
        rows.append(("ACTSUB", {"TSVAL": str(len(enrolled))}))
        consent = sorted(str(v)[:10] for v in enrolled.get("RFICDTC", [])
                         if isinstance(v, str) and v.strip())
        rows.append(("SSTDTC", _iso(consent[0]) if consent else {"TSVALNF": "NI"}))
    out, seq, seen = [], {}, set()
    for parmcd, value in rows:
        if (parmcd, value.get("TSVAL")) in seen:  # e.g. two endpoints registered by one name
            continue
        seen.add((parmcd, value.get("TSVAL")))
        seq[parmcd] = seq.get(parmcd, 0) + 1
        text = value.get("TSVAL")
        if isinstance(text, str):
            value = {**value, "TSVAL": " ".join(text.split())[:TSVAL_MAX]}
        out.append({"TSSEQ": float(seq[parmcd]), "TSPARMCD": parmcd,
                    "TSPARM": ct.test_name("TSPARMCD", parmcd), **value})
    return pd.DataFrame(out)


def _visit_rule(day: int) -> str:
    if day < 0:
        return f"Protocol day {day}: {-day} days before the first CAR-T infusion"
    if day == 0:
        return "Protocol day 0: day of the first CAR-T infusion"
    return f"Protocol day {day}: {day} days after the first CAR-T infusion"


def _tv(protocol: Any) -> pd.DataFrame:
    schedule = protocol.schedule
    days = sorted({int(d) for name in ("kinetics_days", "cytokine_days", "cd7_days",
                                       "marrow_days", "ada_days", "followup_days")
                   for d in (getattr(schedule, name, None) or [])})
    rows = [{"VISITNUM": 1.0, "VISIT": "SCREENING", "VISITDY": None,
             "TVSTRL": "Informed consent", "TVENRL": "Eligibility confirmed or screen failure"}]
    for number, day in enumerate(days, start=2):
        rows.append({"VISITNUM": float(number), "VISIT": f"DAY {day}",
                     "VISITDY": float(day + 1 if day >= 0 else day),
                     "TVSTRL": _visit_rule(day),
                     "TVENRL": None})
    return pd.DataFrame(rows)


def trial_design(protocol: Any, dm: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """TE, TA, TI, TS and TV of ``protocol`` (a :class:`celltrial.protocols.Protocol`), with
    STUDYID and DOMAIN, as :func:`celltrial.store.sdtm.convert.to_sdtm` gives the subject
    datasets. ``dm``, the study's SDTM DM, adds the TS parameters read from the data (ACTSUB,
    SSTDTC)."""
    from celltrial.store.sdtm.convert import dataset_frame

    out = {}
    for name, build in (("TE", _te), ("TA", _ta), ("TI", _ti), ("TS", lambda p: _ts(p, dm)),
                        ("TV", _tv)):
        frame = build(protocol).assign(STUDYID=protocol.id, DOMAIN=name)
        out[name] = dataset_frame(name, frame)
    return out


def shipped_protocol(study_id: str, registered_hash: str | None) -> Any | None:
    """The shipped protocol a study was registered from (same id and content hash), or None."""
    from celltrial.protocols import list_ids, load
    from celltrial.store.studies import protocol_hash

    if registered_hash is None or study_id not in list_ids():
        return None
    protocol = load(study_id)
    return protocol if protocol_hash(protocol) == registered_hash else None
