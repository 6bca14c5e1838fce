"""The dose-escalation committee's decisions in the report's escalation section (issue 15
part 5: "the report's escalation history reads these records").

``celltrial report`` copies the study's ``committee_decision`` records with their signatures
(:func:`celltrial.store.committee.committee_decisions`) into ``escalation.json`` under
``"committee"`` (:func:`decisions_json`); :func:`committee_blocks` prints them as a table next
to the design's cohort-by-cohort history, so that the report shows both what the design
recommended and what the committee decided, signed by whom (ICH E3 12.2 / 21 CFR 11.50:
the decision with the printed names of its signers).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

TABLE_NUMBER = "12.4"


def decisions_json(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """:func:`celltrial.store.committee.committee_decisions` as JSON-ready rows (times ISO
    8601 UTC, missing numbers None). Pure."""
    rows = []
    for record in frame.astype(object).to_dict("records"):
        row = {k: (None if v is pd.NA or (isinstance(v, float) and pd.isna(v)) else v)
               for k, v in record.items()}
        at = row.get("recorded_at")
        row["recorded_at"] = None if at is None or pd.isna(at) else pd.Timestamp(at).isoformat()
        for name in ("id", "cohort", "current_dose", "recommended_dose", "dose",
                     "broken_signatures"):
            if row.get(name) is not None:
                row[name] = int(row[name])
        for name in ("follows_recommendation", "signed", "intact"):
            row[name] = bool(row[name])
        rows.append(row)
    return rows


def status(row: dict[str, Any]) -> str:
    """``signed``, ``awaiting signatures`` or ``changed after signing`` of a decision row.
    Pure."""
    if not row["intact"]:
        return "changed after signing (not valid)"
    return "signed (quorum)" if row["signed"] else "awaiting signatures"


def committee_blocks(rd: Any) -> list[Any]:
    """Table 12.4 of the committee's decisions (none when the study has none recorded)."""
    from celltrial.report.csr import CsrTable, Row
    from celltrial.report.sections import P, T, clean

    decisions = (rd.escalation or {}).get("committee") or []
    if not decisions:
        return [P("Dose-escalation committee: no decision was recorded in the study database "
                  "(the cohort-by-cohort history above is the design's own).")]

    def choice(action: str, dose_level: str | None) -> str:
        return action + (f" to {rd.dose_label(dose_level)}" if dose_level else "")

    levels = [d.id for d in rd.protocol.intervention.dose_levels]
    rows = []
    for d in decisions:
        rec = d["recommended_action"] + (
            f" to {rd.dose_label(levels[d['recommended_dose'] - 1])}"
            if d.get("recommended_dose") and d["recommended_dose"] <= len(levels) else "")
        rows.append(Row(str(d["id"]), (
            str(d["recorded_at"] or "")[:16].replace("T", " "),
            "" if d.get("cohort") is None else str(d["cohort"]), rec,
            choice(d["action"], d.get("dose_level")),
            clean(d.get("reason") or ("as recommended" if d["follows_recommendation"]
                                      else "")),
            d.get("signers") or "", status(d))))
    table = CsrTable(TABLE_NUMBER, "Dose-escalation committee decisions",
                     "All decisions recorded in the study database", "Decision",
                     ("Recorded (UTC)", "Cohort", "Design recommended", "Committee decided",
                      "Reason", "Signed by", "Status"), tuple(rows),
                     footnotes=("Signed by: the valid electronic signatures (printed name and "
                                "user name, meaning 'approved') of each decision; a decision "
                                "takes effect when two investigators have signed it.",),
                     wide=True, text_cells=True)
    return [T(table)]
