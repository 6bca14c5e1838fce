"""Stratified log-rank test against R survival ``survdiff(... + strata(...))``, dropping of
rows with a missing group label as R does, and refusal of negative times.

Reference: tests/stats/fixtures/logrank_strata.json, written by
tests/stats/fixtures/logrank_strata_reference.R (R 4.2.2, survival 3.5.3)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from celltrial.errors import InvalidValue
from celltrial.stats import cumulative_incidence, kaplan_meier, logrank_test

FIXTURE = Path(__file__).parent / "fixtures" / "logrank_strata.json"
REFERENCE = json.loads(FIXTURE.read_text(encoding="utf-8"))
CASES = sorted(k for k, v in REFERENCE.items() if isinstance(v, dict))
RTOL = 1e-8


def _na(values):
    """JSON null (R's NA) as NaN for numbers-as-labels and None for text labels."""
    return [None if v is None else v for v in values]


@pytest.mark.parametrize("name", CASES)
def test_equals_survdiff(name):
    case = REFERENCE[name]
    strata = None if case["stratum"] is None else _na(case["stratum"])
    chisq, df, p = logrank_test(case["time"], case["event"], _na(case["group"]), strata=strata)
    assert df == case["df"]
    assert chisq == pytest.approx(case["chisq"], rel=RTOL)
    assert p == pytest.approx(case["p"], rel=RTOL)


def test_the_fixture_covers_strata_and_missing_labels():
    assert {"lung_sex_by_ecog", "veteran_trt_by_celltype", "synthetic_3groups_4strata"} <= set(
        CASES)
    synthetic = REFERENCE["synthetic_3groups_4strata"]
    assert synthetic["group"].count(None) == 10 and synthetic["stratum"].count(None) == 5
    assert REFERENCE["lung_sex_by_ecog"]["stratum"].count(None) == 1
    # stratifying changes the answer: the test is not the unstratified one
    assert synthetic["chisq"] != REFERENCE["synthetic_3groups_unstratified"]["chisq"]


def test_nan_and_none_group_labels_are_dropped_not_counted():
    case = REFERENCE["aml_missing_groups"]
    with_none = logrank_test(case["time"], case["event"], _na(case["group"]))
    with_nan = logrank_test(case["time"], case["event"],
                            [np.nan if g is None else g for g in case["group"]])
    keep = [g is not None for g in case["group"]]
    dropped = logrank_test(np.asarray(case["time"])[keep], np.asarray(case["event"])[keep],
                           [g for g in case["group"] if g is not None])
    assert with_none == with_nan == dropped
    assert with_none.df == 1  # two groups, not three
    numeric = logrank_test([1, 2, 3, 4, 5, 6, 7], [1, 1, 1, 0, 1, 1, 1],
                           [1.0, 2.0, np.nan, 1.0, 2.0, 1.0, 2.0])
    assert numeric.df == 1


def test_unusable_labels_are_refused_with_a_clear_error():
    with pytest.raises(InvalidValue, match=r"Invalid `group`: got `'labels of types int, "
                                           r"str'`, must be labels of one type"):
        logrank_test([1, 2, 3, 4], [1, 1, 0, 1], [1, "a", 1, "a"])
    with pytest.raises(InvalidValue, match="at least two distinct groups"):
        logrank_test([1, 2, 3, 4], [1, 1, 0, 1], ["a", None, "a", np.nan])
    with pytest.raises(InvalidValue, match=r"Invalid `strata`: got `'3 values'`, must be one "
                                           r"per time \(4\)"):
        logrank_test([1, 2, 3, 4], [1, 1, 0, 1], ["a", "b", "a", "b"], strata=[1, 2, 1])


@pytest.mark.parametrize("call", [
    lambda t: kaplan_meier(t, [1, 1, 0, 1]),
    lambda t: logrank_test(t, [1, 1, 0, 1], ["a", "b", "a", "b"]),
    lambda t: cumulative_incidence(t, [1, 2, 0, 1]),
    lambda t: cumulative_incidence(t, [1, 2, 0, 1], group=["a", "b", "a", "b"]),
])
def test_negative_times_are_refused_naming_them(call):
    with pytest.raises(InvalidValue, match=r"Invalid `time`: got `?-1\.0`?, must be a time >= 0 "
                                           r"from the origin \(row 2 of 4; 1 negative\)"):
        call([0.0, -1.0, 2.0, 4.0])
    call([0.0, 1.0, 2.0, 4.0])  # the same data with the date fixed is accepted


def test_nan_times_and_events_are_refused():
    with pytest.raises(InvalidValue, match="Invalid `time`"):
        logrank_test([1, np.nan, 3, 4], [1, 1, 0, 1], ["a", "b", "a", "b"])
    with pytest.raises(InvalidValue, match="Invalid `event`"):
        logrank_test([1, 2, 3, 4], [1, np.nan, 0, 1], ["a", "b", "a", "b"])
