"""Response per assessment (the protocol's criteria), overall response, and per patient:
best overall response, first response day and relapse day.

``assess_response(criteria, assessment, ...)`` dispatches on the protocol's criteria names
(``aml_eln2022``, ``all_bbmt2010``, ``extramedullary_lugano2014``). ``overall_response``
combines the marrow category with the extramedullary (EMD) category of the same assessment:
EMD CR (or no EMD) leaves the marrow category; EMD PR caps it at PR; EMD SD caps it at the
non-response category; EMD PD makes it PD (RELAPSE when the marrow already says relapse).
No published rule combines ELN/ALL marrow criteria with Lugano EMD categories; this cap rule
is this project's assumption (see docs/clinical.md).

Per patient, categories rank CR > CRh > CRi > MLFS > PR > NR/SD > PD/RELAPSE; the best
overall response counts assessments up to the first PD or relapse (a response after
progression does not count).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from celltrial.clinical.response import aml_eln2022, all_bbmt2010
from celltrial.clinical.response.extramedullary import assess_extramedullary
from celltrial.clinical.response.table import CriteriaTable, ResponseResult, evaluate_table
from celltrial.errors import invalid

__all__ = ["CRITERIA", "RANK", "RESPONDERS", "assess_response", "best_overall_response",
           "first_response_day", "overall_response", "relapse_day"]

CRITERIA = ("aml_eln2022", "all_bbmt2010", "extramedullary_lugano2014")

RANK: dict[str, int] = {"CR": 7, "CRh": 6, "CRi": 5, "MLFS": 4, "PR": 3, "NR": 2, "SD": 2,
                        "PD": 0, "RELAPSE": 0}
"""Order of categories (higher is better); NE and NO_EMD are not ranked."""

RESPONDERS = ("CR", "CRh", "CRi", "MLFS", "PR")
"""Categories counted as response by default (NCT04762485's ORR = CR + CRi + MLFS + PR, plus
CRh where ELN 2022 is used)."""

_FIELDS: dict[str, str] = {
    "bm_blasts_pct": "percent", "pb_blasts_pct": "percent", "anc": "count",
    "platelets": "count", "circulating_blasts": "bool", "emd": "bool", "auer_rods": "bool",
    "marrow_adequate": "bool", "mrd_negative": "bool", "mrd_flow": "fraction",
    "mrd_molecular_negative": "bool", "day": "number",
}
"""Marrow assessment vocabulary: field -> kind (counts in x10^9/L, MRD as a fraction)."""


def _validate(where: str, data: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise invalid(where, data, f"a mapping of {sorted(_FIELDS)}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        kind = _FIELDS.get(key)
        if kind is None:
            raise invalid(f"{where} key", key, f"one of {sorted(_FIELDS)}")
        out[key] = value
        if value is None:
            continue
        if kind == "bool":
            if not _is_bool(value):
                raise invalid(key, value, "true or false")
            out[key] = bool(value)
            continue
        if _is_bool(value) or not isinstance(value, numbers.Real) or math.isnan(value):
            raise invalid(key, value, "a number")
        out[key] = float(value)
        limits = {"percent": (0, 100), "count": (0, 2000), "fraction": (0, 1),
                  "number": (-1e6, 1e6)}[kind]
        if not limits[0] <= value <= limits[1]:
            raise invalid(key, value, f"in [{limits[0]}, {limits[1]}]"
                          + (" (x10^9/L)" if kind == "count" else ""))
    return out


def _is_bool(value: object) -> bool:
    """True for Python and NumPy booleans."""
    kind = type(value)
    return isinstance(value, bool) or (kind.__module__ == "numpy"
                                       and kind.__name__ in ("bool", "bool_"))


def _change(now: Any, base: Any) -> tuple[float | None, float | None]:
    """(reduction %, increase %) of a blast value from baseline."""
    if now is None or base is None:
        return None, None
    if base == 0:
        return (0.0, math.inf if now > 0 else 0.0)
    return 100.0 * (base - now) / base, 100.0 * (now - base) / base


def _marrow(table: CriteriaTable, remission: frozenset[str], assessment: Mapping[str, Any],
            baseline: Mapping[str, Any] | None, prior_remission: bool) -> ResponseResult:
    data = _validate("assessment", assessment)
    base = _validate("baseline", baseline) if baseline is not None else {}
    red, inc = _change(data.get("bm_blasts_pct"), base.get("bm_blasts_pct"))
    _, pb_inc = _change(data.get("pb_blasts_pct"), base.get("pb_blasts_pct"))
    new_emd = (None if data.get("emd") is None or base.get("emd") is None
               else bool(data["emd"] and not base["emd"]))
    data.update(bm_blast_reduction_pct=red, bm_blast_increase_pct=inc,
                pb_blast_increase_pct=pb_inc, new_emd=new_emd)
    category, reasons = evaluate_table(table, data, in_remission=prior_remission,
                                       has_baseline=base.get("bm_blasts_pct") is not None)
    in_rem = category in remission
    mrd = data.get("mrd_negative")
    if data.get("mrd_flow") is not None:
        mrd = data["mrd_flow"] < all_bbmt2010.MRD_NEGATIVE_BELOW
    return ResponseResult(category, tuple(reasons), table.source,
                          mrd_negative=mrd if in_rem else None,
                          molecular_remission=data.get("mrd_molecular_negative") if in_rem
                          else None)


def assess_response(criteria: str, assessment: Mapping[str, Any], *,
                    baseline: Mapping[str, Any] | None = None,
                    nadir: Mapping[str, Any] | None = None, prior_remission: bool = False,
                    reading: str | None = None, crh: bool = True) -> ResponseResult:
    """Response category of one assessment under one criteria set.

    ``criteria``: ``aml_eln2022`` (``reading``: ``eln2022`` default, ``eln2022_cri_either``
    or ``nct04762485`` = that registration's own wording; ``crh=False`` drops CRh),
    ``all_bbmt2010``, or ``extramedullary_lugano2014`` (``assessment``/``baseline``/``nadir``
    carry ``lesions``). ``prior_remission``: the patient was in remission before (relapse is
    assessed instead of PD).

    >>> assess_response("aml_eln2022", {"bm_blasts_pct": 2, "circulating_blasts": False,
    ...                 "emd": False, "anc": 1.0, "platelets": 100}).category
    'CR'
    >>> assess_response("aml_eln2022", {"bm_blasts_pct": 2, "circulating_blasts": False,
    ...                 "emd": False, "auer_rods": False, "anc": 1.0, "platelets": 120},
    ...                 reading="nct04762485").category
    'MLFS'
    """
    if criteria == "aml_eln2022":
        readings = aml_eln2022.READINGS
        key = reading or "eln2022"
        if key not in readings:
            raise invalid("reading", reading, f"one of {sorted(readings)} for aml_eln2022")
        table = readings[key]
        if not crh:
            table = CriteriaTable(table.name, table.source,
                                  tuple(c for c in table.categories if c.code != "CRh"),
                                  table.fallback, table.required)
        return _marrow(table, aml_eln2022.REMISSION, assessment, baseline, prior_remission)
    if reading is not None:
        raise invalid("reading", reading, f"None for {criteria} (one reading only)")
    if criteria == "all_bbmt2010":
        return _marrow(all_bbmt2010.BBMT2010, all_bbmt2010.REMISSION, assessment, baseline,
                       prior_remission)
    if criteria == "extramedullary_lugano2014":
        return assess_extramedullary(assessment, baseline=baseline, nadir=nadir)
    raise invalid("criteria", criteria, f"one of {list(CRITERIA)}")


def _code(result: ResponseResult | str | None) -> str | None:
    if result is None or isinstance(result, str):
        return result
    if isinstance(result, ResponseResult):
        return result.category
    raise invalid("response", result, "a ResponseResult, a category code or None")


def overall_response(marrow: ResponseResult | str | None,
                     emd: ResponseResult | str | None = None, *,
                     non_response: str = "NR") -> str:
    """Overall response of one assessment from its marrow and EMD categories (see module)."""
    m, e = _code(marrow), _code(emd)
    if e in (None, "NO_EMD", "CR"):
        return m if m is not None else "NE"
    if e == "PD":
        return "RELAPSE" if m == "RELAPSE" else "PD"
    if m is None or m == "NE" or e == "NE":
        return "NE"
    cap = {"PR": "PR", "SD": non_response}.get(e)
    if cap is None:
        raise invalid("EMD category", e, "one of CR, PR, SD, PD, NE, NO_EMD")
    if m not in RANK:
        raise invalid("marrow category", m, f"one of {sorted(RANK)} or NE")
    return cap if RANK[m] > RANK[cap] else m


def _series(assessments: Iterable[tuple[float, ResponseResult | str]]) -> list[tuple[float, str]]:
    out = []
    for item in assessments:
        if not isinstance(item, tuple) or len(item) != 2:
            raise invalid("assessment", item, "a (day, category) pair")
        day, result = item
        if isinstance(day, bool) or not isinstance(day, int | float):
            raise invalid("assessment day", day, "a study day (number)")
        code = _code(result)
        if code is None or (code not in RANK and code not in ("NE", "NO_EMD")):
            raise invalid("category", code, f"one of {sorted(RANK)} or NE")
        out.append((float(day), code))
    return sorted(out, key=lambda x: x[0])


def best_overall_response(assessments: Iterable[tuple[float, ResponseResult | str]]) -> str:
    """Best category from the start until the first PD/relapse (inclusive); NE if none."""
    best: str | None = None
    for _, code in _series(assessments):
        if code in RANK and (best is None or RANK[code] > RANK[best]):
            best = code
        if code in ("PD", "RELAPSE"):
            break
    return best or "NE"


def first_response_day(assessments: Iterable[tuple[float, ResponseResult | str]], *,
                       responders: Iterable[str] = RESPONDERS) -> float | None:
    """Day of the first assessment in a responder category (before any PD/relapse)."""
    wanted = set(responders)
    for day, code in _series(assessments):
        if code in ("PD", "RELAPSE"):
            return None
        if code in wanted:
            return day
    return None


def relapse_day(assessments: Iterable[tuple[float, ResponseResult | str]], *,
                remission: Iterable[str] = ("CR", "CRh", "CRi")) -> float | None:
    """Day of the first RELAPSE (or PD) after a remission; None without one."""
    wanted, in_remission = set(remission), False
    for day, code in _series(assessments):
        if code in wanted:
            in_remission = True
        elif in_remission and code in ("RELAPSE", "PD"):
            return day
    return None
