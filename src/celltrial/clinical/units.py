"""Laboratory unit conversion: one table, one place.

Every analyte graded by :mod:`celltrial.clinical.ctcae` has a canonical SI unit; each unit a
user may give is a row ``(analyte, unit) -> factor`` so that ``value_si = value * factor``.
Factors are the usual molar-mass conversions (CTCAE v5.0 prints both unit systems;
bilirubin 17.1 umol/L per mg/dL, creatinine 88.4 umol/L per mg/dL, calcium 0.2495 mmol/L per
mg/dL, phosphate 0.3229 mmol/L per mg/dL, hemoglobin 0.6206 mmol/L per g/dL) and decimal
prefixes (``/mm3`` = ``/uL`` = 10^6/L = 0.001 x 10^9/L). Converted values are rounded to 12
significant digits so that 1500/mm3 compares equal to 1.5 x 10^9/L at a threshold (the same
idea as admiral's ``signif()`` before comparing).

Unit spellings are normalised (case, spaces, ``µ``/``u``, ``x10^9/L``/``10^9/L``/``10e9/L``,
``mEq/L`` = ``mmol/L`` for monovalent ions) but never guessed: an unknown unit raises
:class:`~celltrial.errors.InvalidValue` listing the units accepted for that analyte.
"""

from __future__ import annotations

import functools
import math
import re

from celltrial.errors import invalid

__all__ = ["ANALYTES", "SI_UNIT", "convert", "normalise_unit", "to_si"]

_COUNT = {"10^9/l": 1.0, "10^3/ul": 1.0, "k/ul": 1.0, "10^3/mm3": 1.0, "/mm3": 1e-3, "/ul": 1e-3,
          "cells/ul": 1e-3, "cells/mm3": 1e-3, "10^6/l": 1e-3}
_ENZYME = {"u/l": 1.0, "iu/l": 1.0, "ukat/l": 60.0}

SI_UNIT: dict[str, str] = {
    "neutrophils": "10^9/L", "platelets": "10^9/L", "lymphocytes": "10^9/L",
    "leukocytes": "10^9/L", "hemoglobin": "g/L", "alt": "U/L", "ast": "U/L",
    "bilirubin": "umol/L", "creatinine": "umol/L", "fibrinogen": "g/L",
    "potassium": "mmol/L", "sodium": "mmol/L", "calcium": "mmol/L",
    "ionized_calcium": "mmol/L", "phosphate": "mmol/L", "albumin": "g/L",
}
"""Canonical SI unit of each analyte."""

ANALYTES: dict[str, dict[str, float]] = {
    "neutrophils": _COUNT, "platelets": _COUNT, "lymphocytes": _COUNT, "leukocytes": _COUNT,
    "hemoglobin": {"g/l": 1.0, "g/dl": 10.0, "mmol/l": 10.0 / 0.6206},
    "alt": _ENZYME, "ast": _ENZYME,
    "bilirubin": {"umol/l": 1.0, "mg/dl": 17.1},
    "creatinine": {"umol/l": 1.0, "mg/dl": 88.4, "mmol/l": 1000.0},
    "fibrinogen": {"g/l": 1.0, "mg/dl": 0.01, "mg/l": 0.001},
    "potassium": {"mmol/l": 1.0, "meq/l": 1.0},
    "sodium": {"mmol/l": 1.0, "meq/l": 1.0},
    "calcium": {"mmol/l": 1.0, "mg/dl": 0.2495},
    "ionized_calcium": {"mmol/l": 1.0, "mg/dl": 0.2495},
    "phosphate": {"mmol/l": 1.0, "mg/dl": 0.3229},
    "albumin": {"g/l": 1.0, "g/dl": 10.0},
}
"""Analyte -> {normalised unit: factor to the SI unit}."""


def normalise_unit(unit: object) -> str:
    """Canonical spelling of a unit string (lower case, no spaces, ``u`` for micro)."""
    if not isinstance(unit, str) or not unit.strip():
        raise invalid("unit", unit, "a unit string such as '10^9/L', 'g/dL', 'mmol/L'")
    return _canonical(unit)


@functools.lru_cache(maxsize=1024)
def _canonical(unit: str) -> str:
    """:func:`normalise_unit` of a non-blank string (memoised: a study spells its units a
    handful of ways and grades every lab through here)."""
    if unit.strip() == "G/L":  # giga per litre (European count unit), not grams
        return "10^9/l"
    text = unit.strip().lower().replace(" ", "").replace("µ", "u").replace("μ", "u")
    text = text.replace("³", "3").replace("×", "x").replace("**", "^")
    text = re.sub(r"^x", "", text)
    text = re.sub(r"10[e*](\d)", r"10^\1", text)
    text = re.sub(r"^10(\d)/", r"10^\1/", text)
    text = text.replace("/cumm", "/mm3").replace("/mcl", "/ul").replace("giga/l", "10^9/l")
    return text


def _signif(value: float, digits: int = 12) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


def to_si(analyte: str, value: float, unit: str) -> float:
    """``value`` in ``unit`` expressed in the analyte's SI unit (12 significant digits)."""
    return convert(analyte, value, unit, SI_UNIT[analyte])


def convert(analyte: str, value: float, unit: str, to_unit: str) -> float:
    """Convert ``value`` of ``analyte`` from ``unit`` to ``to_unit``.

    >>> convert("bilirubin", 1.0, "mg/dL", "umol/L")
    17.1
    >>> convert("neutrophils", 1500, "/mm3", "10^9/L")
    1.5
    """
    if analyte not in ANALYTES:
        raise invalid("analyte", analyte, f"one of {sorted(ANALYTES)}")
    table = ANALYTES[analyte]
    src, dst = normalise_unit(unit), normalise_unit(to_unit)
    for name, u in (("unit", src), ("to_unit", dst)):
        if u not in table:
            raise invalid(name, unit if name == "unit" else to_unit,
                          f"a unit of {analyte}: one of {sorted(table)}")
    return _signif(float(value) * table[src] / table[dst])
