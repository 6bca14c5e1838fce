"""Unit conversion table (one place for every lab unit)."""

from __future__ import annotations

import pytest

from celltrial.clinical.units import convert, normalise_unit, to_si
from celltrial.errors import InvalidValue


@pytest.mark.parametrize(("analyte", "value", "unit", "si"), [
    ("neutrophils", 1500, "/mm3", 1.5), ("neutrophils", 1500, "cells/µL", 1.5),
    ("platelets", 75, "x10^9/L", 75.0), ("platelets", 75, "10e9/L", 75.0),
    ("platelets", 75, "G/L", 75.0), ("platelets", 75, "10^3/uL", 75.0),
    ("hemoglobin", 8.0, "g/dL", 80.0), ("hemoglobin", 80, "g/L", 80.0),
    ("bilirubin", 1.0, "mg/dL", 17.1), ("creatinine", 1.0, "mg/dL", 88.4),
    ("fibrinogen", 50, "mg/dL", 0.5), ("calcium", 8.0, "mg/dL", 1.996),
    ("albumin", 3.0, "g/dL", 30.0), ("potassium", 3.0, "mEq/L", 3.0), ("alt", 1.0, "ukat/L", 60.0),
])
def test_to_si(analyte, value, unit, si):
    assert to_si(analyte, value, unit) == pytest.approx(si, rel=1e-12)


def test_round_trip():
    assert convert("bilirubin", convert("bilirubin", 2.3, "mg/dL", "umol/L"), "umol/L",
                   "mg/dL") == pytest.approx(2.3)


@pytest.mark.parametrize(("args", "message"), [
    (("neutrophils", 1.0, "g/L", "10^9/L"), "Invalid `unit`"),
    (("neutrophils", 1.0, "", "10^9/L"), "Invalid `unit`"),
    (("ferritin", 1.0, "ug/L", "ug/L"), "Invalid `analyte`"),
])
def test_unknown_unit_or_analyte(args, message):
    with pytest.raises(InvalidValue, match=message):
        convert(*args)


def test_normalise_unit():
    assert normalise_unit(" µmol/L ") == "umol/l"
    assert normalise_unit("x10^9/L") == normalise_unit("10^9/L")
