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

TS (trial summary) and TV (trial visits) are not produced yet (docs/data-model.md).
The store does not keep these datasets: they are rebuilt from the protocol on every export and
ignored on import.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

TRIAL_DESIGN = ("TE", "TA", "TI")
IETEST_MAX = 200


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


def trial_design(protocol: Any) -> dict[str, pd.DataFrame]:
    """TE, TA and TI of ``protocol`` (a :class:`celltrial.protocols.Protocol`), with STUDYID and
    DOMAIN, as :func:`celltrial.store.sdtm.convert.to_sdtm` gives the subject datasets."""
    from celltrial.store.sdtm.convert import dataset_frame

    out = {}
    for name, build in (("TE", _te), ("TA", _ta), ("TI", _ti)):
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
