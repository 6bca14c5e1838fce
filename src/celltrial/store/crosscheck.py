"""Cross-checks of one subject's records that a monitor would query: warnings, not refusals.

A record can be right on its own and still disagree with another one; these are shown on the
subject page (issue 10, "cross-checks shown as warnings"), never block a write:

- **CRS/ICANS log vs daily grades**: a daily ASTCT 2019 grade in XC (``XCCRSGR``,
  ``XCICAGR``) above the worst grade of the same syndrome in the AE log (the AE log must hold
  the syndrome at its worst grade; ASTCT 2019, Lee et al. BBMT 2019: the syndrome's grade is
  its worst grade over the episode).
- **Grade >= 3 laboratory abnormality without an AE**: an LB result with ``LBTOXGR`` >= 3 and
  no AE of the test's CTCAE v5.0 term(s) (:data:`celltrial.derive.adlb.CTCAE_TERMS`) whose
  period covers the sample date (CTCAE v5.0: a grade >= 3 laboratory abnormality is reported
  as an adverse event).

Voided records (entered in error) take no part. Dates compare at the precision both give.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SYNDROMES = (("XCCRSGR", "Cytokine release syndrome", "CRS"),
             ("XCICAGR", "Immune effector cell-associated neurotoxicity syndrome", "ICANS"))
"""(daily grade variable of XC, AE term, short name)."""

Records = Mapping[str, Sequence[Mapping[str, Any]]]


def _live(records: Records, name: str) -> list[Mapping[str, Any]]:
    return [r for r in records.get(name, ()) if not r.get("voided")]


def _covers(ae: Mapping[str, Any], day: str) -> bool:
    start, end = ae.get("AESTDTC"), ae.get("AEENDTC")
    if not start:
        return False
    n = min(len(start), len(day))
    if day[:n] < start[:n]:
        return False
    if end:
        n = min(len(end), len(day))
        return day[:n] <= end[:n]
    return True


def cross_check_warnings(records: Records) -> list[str]:
    """Warnings for one subject's records (domain name -> record dicts with SDTM variables and
    ``voided``), in the order of the module docstring."""
    from celltrial.derive.adlb import CTCAE_TERMS

    warnings: list[str] = []
    aes = _live(records, "AE")
    for variable, term, short in SYNDROMES:
        logged = [int(a["AETOXGR"]) for a in aes
                  if a.get("AEDECOD") == term and a.get("AETOXGR") is not None]
        worst_logged = max(logged, default=0)
        daily = [(int(x[variable]), x.get("XCDTC") or "") for x in _live(records, "XC")
                 if x.get(variable) is not None]
        above = [(g, d) for g, d in daily if g > worst_logged]
        if above:
            grade, day = max(above, key=lambda gd: (gd[0], gd[1]))
            warnings.append(f"Daily {short} grade {grade} on {day} is above the worst {short} "
                            "grade in the AE log ("
                            + (f"grade {worst_logged}" if logged else f"no {short} AE") + ")")
    for lab in _live(records, "LB"):
        grade = lab.get("LBTOXGR")
        if grade is None or int(grade) < 3:
            continue
        terms = CTCAE_TERMS.get(lab.get("LBTESTCD") or "", ())
        day = lab.get("LBDTC") or ""
        if not terms or any(a.get("AEDECOD") in terms and _covers(a, day) for a in aes):
            continue
        warnings.append(f"Grade {int(grade)} {lab.get('LBTESTCD')} ({lab.get('LBSTRESN')} "
                        f"{lab.get('LBSTRESU') or ''}) on {day} without an AE of "
                        + " or ".join(repr(t) for t in terms) + " covering that day")
    return warnings
