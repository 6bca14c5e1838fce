"""Fine-Gray regression against frozen R cmprsk::crr 2.2-11 fits on three data sets
(tests/stats/fixtures/finegray.json, made by finegray_reference.R there): coefficients,
standard errors, the sandwich variance, the information matrix and the log
pseudo-likelihood, each to 1e-6 relative."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from celltrial.errors import InvalidValue, NotComputable
from celltrial.stats.finegray import censoring_survival_before, fine_gray

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "finegray.json").read_text())
CASES = ["small", "days200", "cont500"]
REL = 1e-6


def _fit(case: dict) -> object:
    return fine_gray(case["ftime"], case["fstatus"], np.array(case["cov"]).T,
                     names=case["names"])


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("fit", ["tight", "default"])
def test_matches_crr(name: str, fit: str) -> None:
    case = FIXTURE[name]
    ref = case[fit]
    r = _fit(case)
    p = len(case["names"])
    np.testing.assert_allclose(r.coef, ref["coef"], rtol=REL, atol=0)
    np.testing.assert_allclose(r.se, ref["se"], rtol=REL, atol=0)
    np.testing.assert_allclose(r.var, np.reshape(ref["var"], (p, p), order="F"), rtol=REL,
                               atol=1e-12)
    np.testing.assert_allclose(r.information, np.reshape(ref["inf"], (p, p), order="F"),
                               rtol=REL, atol=1e-12)
    np.testing.assert_allclose(r.loglik, ref["loglik"][0], rtol=REL, atol=0)
    assert ref["converged"] == [True]


def test_exact_maximum_is_closer_to_tight_crr_than_crr_default() -> None:
    # crr stops at gtol = 1e-6; this module iterates to full precision
    for name in CASES:
        case = FIXTURE[name]
        r = _fit(case)
        np.testing.assert_allclose(r.coef, case["tight"]["coef"], rtol=1e-9, atol=0)
        assert np.all(np.abs(r.score) < 1e-8)


def test_result_fields() -> None:
    case = FIXTURE["days200"]
    r = _fit(case)
    status = np.array(case["fstatus"])
    assert (r.n, r.n_events, r.n_competing) == (200, int((status == 1).sum()),
                                                int((status == 2).sum()))
    assert r.names == ("x1", "x2")
    np.testing.assert_allclose(r.hazard_ratio, np.exp(r.coef), rtol=1e-15)
    assert set(r.as_dict()) >= {"coef", "se", "hazard_ratio", "var"}


def test_failcode_and_input_orientation() -> None:
    case = FIXTURE["small"]
    status = np.array(case["fstatus"])
    swapped = np.where(status == 1, 2, np.where(status == 2, 1, 0))
    a = fine_gray(case["ftime"], case["fstatus"], case["cov"])       # p x n columns
    b = fine_gray(case["ftime"], swapped, np.array(case["cov"]).T, failcode=2)
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-12)
    np.testing.assert_allclose(a.se, b.se, rtol=1e-12)


# (times, censored flags, G(t-) at each time): KM of censoring read just before each time
G_ROWS = [
    ([1, 2, 3], [0, 0, 0], [1, 1, 1]),
    ([1, 2, 3], [1, 0, 1], [1, 2 / 3, 2 / 3]),
    ([1, 2, 2, 3], [0, 1, 0, 1], [1, 1, 1, 2 / 3]),   # failure tied with a censoring at risk
    ([2, 2, 5], [1, 1, 0], [1, 1, 1 / 3]),
]


@pytest.mark.parametrize(("t", "c", "g"), G_ROWS)
def test_censoring_survival(t, c, g) -> None:
    np.testing.assert_allclose(censoring_survival_before(np.array(t, float), np.array(c)), g,
                               rtol=1e-15)


def test_refusals() -> None:
    with pytest.raises(NotComputable, match="at least one failure"):
        fine_gray([1, 2, 3], [0, 2, 0], [[0], [1], [0]])
    with pytest.raises(InvalidValue):
        fine_gray([1, -2, 3], [1, 2, 0], [[0], [1], [0]])
    with pytest.raises(InvalidValue):
        fine_gray([1, 2, 3], [1, 2, 0], [[0], [1]])
    with pytest.raises(InvalidValue):
        fine_gray([1, 2, 3], [1, 0.5, 0], [[0], [1], [0]])
    with pytest.raises(NotComputable, match="singular"):
        fine_gray([1, 2, 3, 4], [1, 2, 1, 0], [[1], [1], [1], [1]])


def test_docstring_examples() -> None:
    import doctest

    import celltrial.stats.finegray as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
