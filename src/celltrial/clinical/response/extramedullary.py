"""Extramedullary disease response from CT lesion measurements (Lugano 2014, Cheson).

Source: Cheson BD et al. J Clin Oncol 2014;32:3059-3068, CT-based response
(../shared/CLINICAL_REFERENCE.md 3.3 [R8]). Up to 6 target lesions; PPD = longest diameter
(LDi) x perpendicular diameter (SDi); SPD = sum of PPDs. A lesion too small to measure is
entered as 0.5 x 0.5 cm, one no longer visible as 0 x 0 cm (Lugano's rule).

- PD: any new lesion; or SPD >= 1.5 x the nadir SPD (>= 50% increase from nadir, the issue's
  SPD reading); or one lesion with LDi > 1.5 cm, PPD >= 1.5 x its nadir PPD and an increase
  of LDi or SDi from nadir of >= 0.5 cm (nadir LDi <= 2 cm) or >= 1.0 cm (nadir LDi > 2 cm)
  (Lugano; needs lesion-level nadir by ``id``).
- CR: every nodal target LDi <= 1.5 cm, every extranodal target gone (0 x 0), no new lesion.
- PR: SPD decreased >= 50% from baseline, no new lesion.
- SD: none of the above.
- NO_EMD: no lesion at baseline and none now (the EMD component does not apply).
Spleen, non-measured lesions and PET-CT (Deauville) criteria are not in the vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from celltrial.clinical.response.table import ResponseResult
from celltrial.errors import invalid

__all__ = ["LUGANO", "assess_extramedullary", "spd"]

LUGANO = {"normal_node_ldi_cm": 1.5, "pr_spd_ratio": 0.5, "pd_spd_ratio": 1.5,
          "pd_lesion_ldi_cm": 1.5, "pd_ppd_ratio": 1.5, "pd_small_lesion_cm": 2.0,
          "pd_increase_small_cm": 0.5, "pd_increase_large_cm": 1.0}
"""Lugano 2014 CT thresholds."""

_LESION_KEYS = {"id", "ldi_cm", "sdi_cm", "kind"}
SOURCE = "Lugano 2014 CT criteria (Cheson 2014)"


def _lesions(where: str, data: Mapping[str, Any] | None) -> list[Mapping[str, Any]] | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise invalid(where, data, "a mapping with `lesions`")
    lesions = data.get("lesions")
    if lesions is None:
        return None
    if not isinstance(lesions, Sequence) or isinstance(lesions, str):
        raise invalid(f"{where} `lesions`", lesions, "a list of lesions")
    for i, lesion in enumerate(lesions):
        if not isinstance(lesion, Mapping):
            raise invalid(f"{where} lesion {i}", lesion, "a mapping with ldi_cm, sdi_cm")
        for key in lesion:
            if key not in _LESION_KEYS:
                raise invalid(f"{where} lesion {i} key", key, f"one of {sorted(_LESION_KEYS)}")
        for key in ("ldi_cm", "sdi_cm"):
            v = lesion.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 50:
                raise invalid(f"{where} lesion {i} `{key}`", v, "a diameter in cm (0-50)")
        if lesion["sdi_cm"] > lesion["ldi_cm"]:
            raise invalid(f"{where} lesion {i} `sdi_cm`", lesion["sdi_cm"],
                          "<= ldi_cm (the longest diameter)")
        if lesion.get("kind", "nodal") not in ("nodal", "extranodal"):
            raise invalid(f"{where} lesion {i} `kind`", lesion.get("kind"),
                          "'nodal' or 'extranodal'")
    return list(lesions)


def spd(lesions: Sequence[Mapping[str, Any]]) -> float:
    """Sum of the products of the perpendicular diameters (cm^2)."""
    return float(sum(float(x["ldi_cm"]) * float(x["sdi_cm"]) for x in lesions))


def _lesion_pd(now: Mapping[str, Any], nadir: Mapping[str, Any]) -> bool:
    ldi, sdi = float(now["ldi_cm"]), float(now["sdi_cm"])
    n_ldi, n_sdi = float(nadir["ldi_cm"]), float(nadir["sdi_cm"])
    step = (LUGANO["pd_increase_small_cm"] if n_ldi <= LUGANO["pd_small_lesion_cm"]
            else LUGANO["pd_increase_large_cm"])
    return (ldi > LUGANO["pd_lesion_ldi_cm"] and ldi * sdi >= LUGANO["pd_ppd_ratio"] * n_ldi * n_sdi
            and (ldi - n_ldi >= step or sdi - n_sdi >= step))


def assess_extramedullary(assessment: Mapping[str, Any], *, baseline: Mapping[str, Any] | None,
                          nadir: Mapping[str, Any] | None = None) -> ResponseResult:
    """Lugano 2014 CT response of extramedullary disease at one assessment.

    ``assessment``/``baseline``/``nadir``: ``{"lesions": [{"id", "ldi_cm", "sdi_cm", "kind"}],
    "new_lesions": bool}``; ``nadir`` may instead give ``{"spd": cm2}``. Without ``nadir`` the
    baseline is the nadir.
    """
    if isinstance(assessment, Mapping):
        for key in assessment:
            if key not in ("lesions", "new_lesions", "spd"):
                raise invalid("assessment key", key, "one of ['lesions', 'new_lesions']")
    now = _lesions("assessment", assessment)
    base = _lesions("baseline", baseline)
    new = assessment.get("new_lesions")
    if new is not None and not isinstance(new, bool):
        raise invalid("new_lesions", new, "true or false")
    if now is None:
        return ResponseResult("NE", ("not evaluable: no lesion measurements",), SOURCE)
    if base is None:
        return ResponseResult("NE", ("not evaluable: no baseline lesion measurements",), SOURCE)
    s_now, s_base = spd(now), spd(base)
    nadir_lesions = _lesions("nadir", nadir) if nadir is not None else base
    if nadir is not None and nadir_lesions is None:
        s_nadir = nadir.get("spd")
        if isinstance(s_nadir, bool) or not isinstance(s_nadir, int | float) or s_nadir < 0:
            raise invalid("nadir `spd`", s_nadir, "an SPD in cm^2 (>= 0) or nadir `lesions`")
        s_nadir = float(s_nadir)
    else:
        s_nadir = spd(nadir_lesions or [])
    details = {"spd": s_now, "baseline_spd": s_base, "nadir_spd": s_nadir}
    if new:
        return ResponseResult("PD", (f"PD: new lesion ({SOURCE})",), SOURCE, details=details)
    if s_nadir > 0 and s_now >= LUGANO["pd_spd_ratio"] * s_nadir:
        return ResponseResult("PD", (f"PD: SPD {s_now:g} >= 1.5 x nadir SPD {s_nadir:g} "
                                     f"({SOURCE})",), SOURCE, details=details)
    by_id = {x.get("id"): x for x in (nadir_lesions or []) if x.get("id") is not None}
    for lesion in now:
        ref = by_id.get(lesion.get("id")) if lesion.get("id") is not None else None
        if ref is not None and _lesion_pd(lesion, ref):
            return ResponseResult("PD", (f"PD: lesion {lesion['id']} LDi > 1.5 cm, PPD >= 1.5 x "
                                         f"nadir and diameter increase ({SOURCE})",),
                                  SOURCE, details=details)
    if not base and not now:
        return ResponseResult("NO_EMD", ("no extramedullary lesion at baseline or now",),
                              SOURCE, details=details)
    if new is None:
        return ResponseResult("NE", ("not evaluable: `new_lesions` not recorded",), SOURCE,
                              details=details)
    cr = all(float(x["ldi_cm"]) <= LUGANO["normal_node_ldi_cm"]
             if x.get("kind", "nodal") == "nodal" else float(x["ldi_cm"]) == 0 for x in now)
    if cr:
        return ResponseResult("CR", (f"CR: nodal LDi <= 1.5 cm, extranodal lesions gone, no new "
                                     f"lesion ({SOURCE})",), SOURCE, details=details)
    if s_base > 0 and s_now <= LUGANO["pr_spd_ratio"] * s_base:
        return ResponseResult("PR", (f"PR: SPD {s_now:g} <= 50% of baseline {s_base:g} "
                                     f"({SOURCE})",), SOURCE, details=details)
    return ResponseResult("SD", (f"SD: SPD {s_now:g} vs baseline {s_base:g}, no PD ({SOURCE})",),
                          SOURCE, details=details)
