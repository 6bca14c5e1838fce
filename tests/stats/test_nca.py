"""NCA against hand-worked profiles: exponential segments (analytic AUCs), linear trapezoids by
hand, the BLQ and time-0 rules, and the Stein 2019 typical tisagenlecleucel curve
(CLINICAL_REFERENCE.md 5.1: Cmax 24000 at 9.3 d, AUC0-28 about 172000 on a 0.1 d grid)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from celltrial.errors import InvalidValue
from celltrial.stats import Missing, nca
from celltrial.stats.nca import NCA_PARAMETERS


def test_exponential_decline_log_down_is_exact():
    # C = 100 exp(-0.2 t) sampled at 0, 1, 3, 7, 14, 30: the log trapezoid is exact on each
    # segment, and day 28 is interpolated log-linearly inside the 14-30 segment.
    t = np.array([0, 1, 3, 7, 14, 30.0])
    r = nca(t, 100 * np.exp(-0.2 * t), lloq=0.1)
    assert r.auc_0_28 == pytest.approx(500 * (1 - math.exp(-5.6)), rel=1e-12)
    assert r.auc_last == pytest.approx(500 * (1 - math.exp(-6.0)), rel=1e-12)
    assert (r.cmax, r.tmax, r.tlast) == (100.0, 0.0, 30.0)
    assert r.clast == pytest.approx(100 * math.exp(-6.0))


def test_exponential_growth_then_decline_analytic():
    # Growth 10 exp(0.5 t) to day 6, then decline exp(-0.1 (t - 6)); dense grid, lin-up/log-down:
    # the decline is exact, the rise by linear trapezoids converges to the integral.
    t = np.round(np.arange(0, 40.001, 0.01), 2)
    c = np.where(t <= 6, 10 * np.exp(0.5 * t), 10 * math.exp(3) * np.exp(-0.1 * (t - 6)))
    r = nca(t, c, lloq=1)
    cmax = 10 * math.exp(3)
    exact = (cmax - 10) / 0.5 + cmax / 0.1 * (1 - math.exp(-2.2))
    assert r.auc_0_28 == pytest.approx(exact, rel=1e-5)
    assert (r.cmax, r.tmax) == (pytest.approx(cmax), 6.0)


def test_linear_trapezoid_by_hand():
    # (0,0) (1,10) (3,30) (7,20) (14,5) (35,1): areas 5, 40, 100, 87.5, then 14-28 of 14-35
    # segment: level at 28 = 5 - 14/21*4 = 2.3333, area (5 + 2.3333)/2*14 = 51.3333.
    t, c = [0, 1, 3, 7, 14, 35], [0, 10, 30, 20, 5, 1]
    r = nca(t, c, lloq=0.5, method="linear")
    assert r.auc_0_28 == pytest.approx(5 + 40 + 100 + 87.5 + (5 + 5 - 56 / 21) / 2 * 14)
    assert r.auc_last == pytest.approx(5 + 40 + 100 + 87.5 + 3 * 21)


def test_log_down_segments_by_hand():
    # lin-up/log-down on the same profile: rises linear, falls log: (C1-C2) dt / ln(C1/C2).
    t, c = [0, 1, 3, 7, 14], [0, 10, 30, 20, 5]
    r = nca(t, c, lloq=0.5)
    expected = 5 + 40 + 10 * 4 / math.log(1.5) + 15 * 7 / math.log(4)
    assert r.auc_last == pytest.approx(expected, rel=1e-12)


def test_blq_before_first_quantifiable_is_zero_after_is_missing():
    # day 1 BLQ -> 0; day 10 BLQ (between quantifiable) left out; day 35 BLQ after Tlast.
    t = [1, 4, 7, 10, 14, 35]
    c = [np.nan, 50, 100, 3, 40, 2]
    r = nca(t, c, lloq=5, method="linear")
    assert (r.tlast, r.clast) == (14.0, 40.0)
    by_hand = 0 + 25 * 3 + 75 * 3 + 70 * 7   # (0,0) (1,0) (4,50) (7,100) (14,40)
    assert r.auc_last == pytest.approx(by_hand)
    assert r.auc_0_28 == pytest.approx(by_hand)  # BLQ at day 35: nothing after Tlast
    assert r.n_quantifiable == 3


def test_implied_zero_at_time_zero():
    r = nca([2, 4], [10, 10], lloq=1, method="linear")
    assert r.auc_last == pytest.approx(10 + 20)


def test_day_28_missing_when_follow_up_ends_early():
    r = nca([0, 7, 14], [0, 100, 50], lloq=1)
    assert isinstance(r.auc_0_28, Missing)
    assert "day 14" in r.auc_0_28.reason
    assert r.auc_last == pytest.approx(350 + 50 * 7 / math.log(2))


def test_all_blq_carries_reasons():
    r = nca([0, 7, 14, 28], [np.nan, 1, 2, np.nan], lloq=5)
    for name in ("cmax", "tmax", "clast", "tlast", "auc_last"):
        assert isinstance(getattr(r, name), Missing)
    assert r.auc_0_28 == 0.0
    table = r.table("copies/ug gDNA")
    assert table.loc[table["name"] == "cmax", "reason"].item().startswith("no quantifiable")


def test_stein_2019_typical_curve():
    cmax, tmax, foldx, alpha, beta, fb = 24000, 9.3, 3900, 0.16, 0.0032, 0.0079
    rho, r0 = math.log(foldx) / tmax, cmax / foldx
    t = np.round(np.arange(0, 28.0001, 0.1), 1)
    c = np.where(t < tmax, r0 * np.exp(rho * t),
                 (1 - fb) * cmax * np.exp(-alpha * (t - tmax)) + fb * cmax * np.exp(-beta * (t - tmax)))
    r = nca(t, c, lloq=1)
    assert r.cmax == pytest.approx(24000) and r.tmax == pytest.approx(9.3)
    assert r.auc_0_28 == pytest.approx(172000, rel=0.005)
    analytic = ((cmax - r0) / rho + (1 - fb) * cmax / alpha * (1 - math.exp(-alpha * 18.7))
                + fb * cmax / beta * (1 - math.exp(-beta * 18.7)))
    assert r.auc_0_28 == pytest.approx(analytic, rel=1e-3)


def test_parameters_are_declared_as_data():
    assert [p.name for p in NCA_PARAMETERS] == ["cmax", "tmax", "clast", "tlast", "auc_0_28",
                                                "auc_last"]
    assert {p.pptestcd for p in NCA_PARAMETERS} >= {"CMAX", "TMAX", "CLST", "TLST", "AUCLST"}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"times": [0, 1], "values": [1, 2], "method": "lin-log"}, r"Invalid `method`: got `'lin-log'`"),
    ({"times": [0, 1], "values": [1]}, r"Invalid `values`"),
    ({"times": [0, 1, 1], "values": [1, 2, 3]}, r"Invalid `times`: got `1.0`, must be distinct"),
    ({"times": [0, 1], "values": [1, -2]}, r"Invalid `values`: got `-2.0`, must be levels >= 0"),
    ({"times": [0, 1], "values": [1, 2], "lloq": -1}, r"Invalid `lloq`"),
])
def test_bad_input_is_named(kwargs, match):
    with pytest.raises(InvalidValue, match=match):
        nca(**kwargs)
