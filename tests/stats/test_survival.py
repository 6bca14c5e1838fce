"""Kaplan-Meier and log-rank against frozen R survival 3.5 outputs (tests/fixtures/survival_*.R).

Seven data sets: aml, lung (survival package), heavy ties (400 on 15 days), heavy censoring
(~85 %), 50,000 rows, and two small sets whose curves sit exactly on 0.5 or end at 0.
Every number equal to R within 1e-8 relative.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import close

from celltrial.errors import InvalidValue, NotComputable
from celltrial.stats import kaplan_meier, logrank_test

CONF_TYPES = ("log", "log-log", "plain")


@pytest.mark.parametrize("conf_type", CONF_TYPES)
def test_table_equals_survfit(reference, conf_type):
    data, r = reference["data"], reference["km"][conf_type]
    fit = kaplan_meier(data["time"], data["cause"] != 0, conf_type=conf_type)
    assert list(fit.table.columns) == ["time", "n_risk", "n_event", "n_censor", "surv",
                                       "std_err", "lower", "upper"]
    for column in ("time", "n_risk", "n_event", "n_censor", "surv", "std_err", "lower", "upper"):
        close(fit.table[column], r[column])
    close(fit.std_err_log, r["std_err_log"])


@pytest.mark.parametrize("conf_type", CONF_TYPES)
def test_median_and_ci_equal_print_survfit(reference, conf_type):
    data, r = reference["data"], reference["km"][conf_type]
    fit = kaplan_meier(data["time"], data["cause"] != 0, conf_type=conf_type)
    close([fit.median, *fit.median_ci], [r["median"][0], r["median_lower"][0], r["median_upper"][0]])


@pytest.mark.parametrize("conf_type", CONF_TYPES)
def test_quantiles_equal_quantile_survfit(reference, conf_type):
    data, r = reference["data"], reference["km"][conf_type]
    q = kaplan_meier(data["time"], data["cause"] != 0, conf_type=conf_type).quantile(r["q_p"])
    close(q["quantile"], r["q"])
    close(q["lower"], r["q_lower"])
    close(q["upper"], r["q_upper"])


@pytest.mark.parametrize("conf_type", CONF_TYPES)
def test_landmarks_equal_summary_times(reference, conf_type):
    data, r = reference["data"], reference["km"][conf_type]
    at = kaplan_meier(data["time"], data["cause"] != 0, conf_type=conf_type).at(r["at_request"])
    close(at["time"], r["at_time"])
    close(at["n_risk"], r["at_n_risk"])
    close(at["n_event"], r["at_n_event"])
    for column in ("surv", "std_err", "lower", "upper"):
        close(at[column], r[f"at_{column}"])


def test_logrank_equals_survdiff(reference):
    if "logrank" not in reference:
        pytest.skip(f"{reference['name']}: no group comparison in this data set")
    data, r = reference["data"], reference["logrank"]
    chisq, df, p = logrank_test(data["time"], data["cause"] != 0, data["group"])
    close([chisq, df, p], [r["chisq"][0], r["df"][0], r["p"][0]])


def test_flat_part_median_is_midpoint():
    # 8 patients, no censoring: S = 0.5 exactly from day 4 to day 5 -> median 4.5 (print.survfit).
    fit = kaplan_meier([1, 2, 3, 4, 5, 6, 7, 8], [1] * 8)
    assert fit.median == 4.5
    assert kaplan_meier([1, 2, 3], [1, 0, 0]).median != kaplan_meier([1, 2, 3], [1, 0, 0]).median


def test_not_reached_median_is_nan():
    fit = kaplan_meier([10, 20, 30, 40], [1, 0, 0, 0])
    assert math.isnan(fit.median) and all(math.isnan(v) for v in fit.median_ci[1:])


def test_std_err_is_that_of_s():
    fit = kaplan_meier([1, 2, 3, 4], [1, 1, 0, 1])
    assert np.allclose(fit.table["std_err"], fit.table["surv"] * fit.std_err_log, equal_nan=True)


@pytest.mark.parametrize(("time", "event", "match"), [
    ([1, 2], [1], r"Invalid `event`: got `'1 values'`, must be one per time \(2\)"),
    ([1, float("nan")], [1, 0], r"Invalid `time`: got `nan`, must be a finite number"),
    ([1, 2], [1, 2], r"Invalid `event`: got `2.0`, must be 0 \(censored\) or 1 \(event\)"),
    ([], [], r"Invalid `time`: got `'\[\]'`, must be at least one observation"),
])
def test_bad_input_is_named(time, event, match):
    with pytest.raises(InvalidValue, match=match):
        kaplan_meier(time, event)


def test_bad_conf_type_is_named():
    with pytest.raises(InvalidValue, match=r"Invalid `conf_type`: got `'logit'`"):
        kaplan_meier([1, 2], [1, 0], conf_type="logit")


def test_logrank_needs_two_groups():
    with pytest.raises(InvalidValue, match=r"Invalid `group`"):
        logrank_test([1, 2, 3], [1, 1, 0], ["a", "a", "a"])
    with pytest.raises(NotComputable):
        logrank_test([1, 2, 3], [0, 0, 0], ["a", "b", "a"])
