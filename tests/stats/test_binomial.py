"""Clopper-Pearson and Wilson intervals against R binom.test / prop.test(correct = FALSE) over
x = 0..n, n = 1..50 at 95 % and n = 1..20 at 80 % (tests/fixtures/binomial_reference.R)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FIXTURES, close

from celltrial.errors import InvalidValue
from celltrial.stats import clopper_pearson, wilson

GRIDS = json.loads((FIXTURES / "binomial.json").read_text())


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: f"level={g['level']}")
def test_clopper_pearson_equals_binom_test(grid):
    got = np.array([clopper_pearson(x, n, level=grid["level"]) for x, n in
                    zip(grid["x"], grid["n"], strict=True)])
    close(got[:, 0], grid["cp_lower"])
    close(got[:, 1], grid["cp_upper"])


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: f"level={g['level']}")
def test_wilson_equals_prop_test_without_correction(grid):
    got = np.array([wilson(x, n, level=grid["level"]) for x, n in
                    zip(grid["x"], grid["n"], strict=True)])
    close(got[:, 0], grid["wilson_lower"])
    close(got[:, 1], grid["wilson_upper"])


def test_edges_are_exact():
    assert clopper_pearson(0, 12).lower == 0.0
    assert clopper_pearson(12, 12).upper == 1.0
    lower, upper = clopper_pearson(0, 3)
    assert upper == pytest.approx(1 - 0.025 ** (1 / 3), rel=1e-12)


@pytest.mark.parametrize(("x", "n", "level", "match"), [
    (3, 0, 0.95, r"Invalid `n`: got `0`, must be a whole number >= 1"),
    (4, 3, 0.95, r"Invalid `x`: got `4`, must be a whole number in \[0, n = 3\]"),
    (-1, 3, 0.95, r"Invalid `x`: got `-1`"),
    (1, 3, 95, r"Invalid `level`: got `95`, must be in \(0, 1\)"),
    (1.5, 3, 0.95, r"Invalid `x`: got `1.5`"),
])
def test_bad_input_is_named(x, n, level, match):
    with pytest.raises(InvalidValue, match=match):
        clopper_pearson(x, n, level=level)
