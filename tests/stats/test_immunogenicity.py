"""Anti-CAR antibodies: rate per time point with exact CIs and treatment-emergent positivity."""

from __future__ import annotations

import pandas as pd
import pytest

from celltrial.errors import InvalidValue
from celltrial.stats import Missing, clopper_pearson
from celltrial.stats.immunogenicity import ada_summary


def _adis():
    return pd.DataFrame({
        "USUBJID": ["01", "01", "02", "02", "03", "03", "04"],
        "ADY":     [0, 28, 0, 28, -2, 28, 0],
        "AVALC":   ["NEGATIVE", "POSITIVE", "POSITIVE", "POSITIVE", "POSITIVE", "POSITIVE",
                    "NEGATIVE"],
        "AVAL":    [None, 40, 10, 20, 10, 80, None],
    })


def test_rate_per_day_and_emergent():
    s = ada_summary(_adis())
    assert s.by_day[["day", "n_tested", "n_positive"]].values.tolist() == [[28, 3, 3]]
    subjects = s.subjects.set_index("USUBJID")
    assert subjects.loc["01", "induced"]                          # negative -> positive
    assert not subjects.loc["02", "emergent"]                     # 10 -> 20: not 4-fold
    assert subjects.loc["03", "boosted"]                          # 10 -> 80: >= 4-fold
    assert (s.n_evaluable, s.n_emergent) == (3, 2)                # 04 has no post-day-0 result
    assert s.ci == tuple(clopper_pearson(2, 3))


def test_no_post_baseline_result_is_missing_with_reason():
    s = ada_summary(_adis().iloc[[0, 6]])
    assert isinstance(s.rate, Missing) and "after day 0" in s.rate.reason


def test_unknown_result_is_named():
    bad = _adis().assign(AVALC=["EQUIVOCAL"] + ["NEGATIVE"] * 6)
    with pytest.raises(InvalidValue, match=r"Invalid `AVALC`: got `'EQUIVOCAL'`"):
        ada_summary(bad)
