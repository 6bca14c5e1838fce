"""Cumulative incidence and Gray's test against frozen R cmprsk 2.2 outputs
(tests/fixtures/survival_reference.R): every curve's step-function corners, estimates and
variances, timepoints(), and Gray's test, within 1e-8 relative, on the seven data sets
(ungrouped, and grouped where the set has groups: 2 or 3 groups, 2 or 3 causes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import close

from celltrial.errors import InvalidValue
from celltrial.stats import cumulative_incidence
from celltrial.stats.competing import ALL


def _fit(reference, grouped):
    data = reference["data"]
    if grouped:
        if data["group"] is None:
            pytest.skip(f"{reference['name']}: no groups in this data set")
        return cumulative_incidence(data["time"], data["cause"], data["group"]), \
            reference["cif_group"]
    return cumulative_incidence(data["time"], data["cause"]), reference["cif"]


def _key(name, grouped):
    group, cause = name.rsplit(" ", 1)
    return (group if grouped else ALL), int(cause)


@pytest.mark.parametrize("grouped", [False, True], ids=["pooled", "by_group"])
def test_curves_equal_cuminc(reference, grouped):
    fit, r = _fit(reference, grouped)
    assert len(fit.curves.groupby(["group", "cause"])) == len(r["names"])
    for name, curve in zip(r["names"], r["curves"], strict=True):
        mine = fit.curve(_key(name, grouped)[1], _key(name, grouped)[0])
        close(mine["time"], curve["time"])
        close(mine["est"], curve["est"])
        close(mine["var"], curve["var"])


@pytest.mark.parametrize("grouped", [False, True], ids=["pooled", "by_group"])
def test_at_equals_timepoints(reference, grouped):
    fit, r = _fit(reference, grouped)
    at = fit.at(r["at_times"])
    for name, est, var in zip(r["names"], r["at_est"], r["at_var"], strict=True):
        group, cause = _key(name, grouped)
        rows = at[(at["group"] == group) & (at["cause"] == cause)]
        close(rows["time"], r["at_times"])
        close(rows["est"], est)
        close(rows["var"], var)


def test_gray_test_equals_cuminc_tests(reference):
    fit, r = _fit(reference, grouped=True)
    tests = r["tests"]
    assert fit.gray_test["cause"].astype(str).tolist() == tests["cause"]
    close(fit.gray_test["stat"], tests["stat"])
    close(fit.gray_test["pv"], tests["pv"])
    close(fit.gray_test["df"], tests["df"])


def test_single_group_has_no_test():
    assert cumulative_incidence([1, 2, 3], [1, 2, 0]).gray_test is None


def test_estimates_sum_with_km_to_one():
    # Aalen-Johansen: sum of the cause-specific CIFs = 1 - all-cause KM at every time.
    from celltrial.stats import kaplan_meier

    rng = np.random.default_rng(7)
    t = rng.integers(1, 30, 200).astype(float)
    c = rng.choice([0, 1, 2], 200)
    at = cumulative_incidence(t, c).at([5, 10, 20])
    total = at.groupby("time")["est"].sum().to_numpy()
    km = kaplan_meier(t, c != 0).at([5, 10, 20])["surv"].to_numpy()
    np.testing.assert_allclose(total, 1 - km, rtol=1e-12)


def test_custom_censoring_code_and_labels():
    fit = cumulative_incidence([1, 2, 3, 4], ["relapse", "death", "censored", "relapse"],
                               cencode="censored")
    assert fit.causes == ("death", "relapse")
    assert isinstance(fit.at([4]), pd.DataFrame)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"time": [1, 2], "cause": [1]}, r"Invalid `cause`: got `'1 values'`"),
    ({"time": [1, 2], "cause": [0, 0]}, r"Invalid `cause`: got `'all censored'`"),
    ({"time": [1, 2], "cause": [1, 0], "group": ["a"]}, r"Invalid `group`"),
])
def test_bad_input_is_named(kwargs, match):
    with pytest.raises(InvalidValue, match=match):
        cumulative_incidence(**kwargs)
