"""CD7+ cell depletion/recovery and cytokine peaks on hand-worked subject profiles."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from celltrial.errors import InvalidValue
from celltrial.stats import Missing
from celltrial.stats.pharmacodynamics import cd7_response, cd7_table, cytokine_response, cytokine_table


def test_cd7_nadir_clearance_recovery():
    r = cd7_response([-3, 0, 7, 14, 28, 60, 90], [900, 800, 40, 2, 5, 300, 500], threshold=10)
    assert r.baseline == 800.0          # last value on or before day 0
    assert (r.nadir, r.nadir_day) == (2.0, 14.0)
    assert r.clearance_day == 14.0      # first day <= 10
    assert r.recovery_day == 90.0       # first day after nadir >= 0.5 x 800


def test_cd7_never_cleared_and_not_recovered_carry_reasons():
    r = cd7_response([0, 7, 14], [800, 100, 50], threshold=10)
    assert isinstance(r.clearance_day, Missing) and "never <= 10" in r.clearance_day.reason
    assert isinstance(r.recovery_day, Missing) and "by day 14" in r.recovery_day.reason


def test_cd7_without_baseline():
    r = cd7_response([7, 14, 60], [5, 1, 600], threshold=10)
    assert isinstance(r.baseline, Missing) and isinstance(r.recovery_day, Missing)
    assert r.clearance_day == 7.0


def test_cytokine_peak_and_fold_change():
    r = cytokine_response([-1, 1, 3, 7, 14], [4, 50, 400, 120, 10])
    assert (r.peak, r.peak_day, r.fold_change) == (400.0, 3.0, 100.0)
    zero = cytokine_response([0, 2], [0, 30])
    assert isinstance(zero.fold_change, Missing) and "baseline is 0" in zero.fold_change.reason


def test_tables_from_long_frame():
    adlb = pd.DataFrame({
        "USUBJID": ["01"] * 6 + ["02"] * 3,
        "PARAMCD": ["IL6"] * 3 + ["CD7ABS"] * 3 + ["IL6"] * 3,
        "ADY": [0, 3, 7, 0, 14, 60, 0, 5, 9],
        "AVAL": [5, 500, 20, 700, 3, 400, 2, 8, 6],
    })
    cyt = cytokine_table(adlb)
    assert cyt.set_index("USUBJID")["fold_change"].to_dict() == {"01": 100.0, "02": 4.0}
    cd7 = cd7_table(adlb, {"CD7ABS": 10})
    assert cd7.loc[0, "clearance_day"] == 14.0 and cd7.loc[0, "recovery_day"] == 60.0


def test_bad_threshold_is_named():
    with pytest.raises(InvalidValue, match=r"Invalid `threshold`: got `nan`"):
        cd7_response([0, 1], [1, 2], threshold=math.nan)
