"""BOIN simulation: the R package BOIN 2.7.2 get.oc (fixture + script in fixtures/), the
per-trial loop and the JAX path agree within Monte Carlo error."""

import json
from pathlib import Path

import numpy as np
import pytest

from celltrial.design import BOIN, simulate
from celltrial.errors import InvalidValue

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "boin_get_oc.json").read_text())
ISSUE = (0.05, 0.12, 0.30, 0.45, 0.60)


def close(a, b, n_a, n_b, z=4.0, floor=0.05):
    """|a - b| within z combined binomial standard errors (percentages)."""
    p = max((a + b) / 200, floor / 100)
    return abs(a - b) <= z * 100 * np.sqrt(p * (1 - p) * (1 / n_a + 1 / n_b))


def test_issue_anchor_figures():
    # R package 2.7.2 on the issue's scenario: dose 3 ~57.5%, dose 2 19.8%, dose 4 20.4%
    res = simulate(BOIN(), ISSUE, 200_000, seed=6)
    assert res.selection_pct[2] == pytest.approx(57.5, abs=1.5)
    assert res.selection_pct[1] == pytest.approx(19.8, abs=1.5)
    assert res.selection_pct[3] == pytest.approx(20.4, abs=1.5)
    assert sum(res.mean_patients) == pytest.approx(30, abs=0.05)


@pytest.mark.parametrize("name", sorted(FIXTURE["scenarios"]))
def test_selection_equals_r_package(name):
    ref = FIXTURE["scenarios"][name]
    m_r = FIXTURE["ntrial"]
    res = simulate(BOIN(), ref["p_true"], 200_000, seed=7)
    for ours, theirs in zip(res.selection_pct + (res.stop_pct,),
                            ref["selection_pct"] + [ref["stop_pct"]], strict=True):
        assert close(ours, theirs, 200_000, m_r), (ours, theirs)
    for ours, theirs in zip(res.mean_patients, ref["mean_patients"], strict=True):
        assert ours == pytest.approx(theirs, abs=0.15)


def test_numpy_equals_per_trial_loop():
    fast = simulate(BOIN(), ISSUE, 100_000, seed=1)
    slow = simulate(BOIN(), ISSUE, 3_000, seed=1, backend="python")
    for a, b in zip(fast.selection_pct, slow.selection_pct, strict=True):
        assert close(a, b, 100_000, 3_000)


def test_jax_on_cpu_equals_numpy():
    pytest.importorskip("jax")
    a = simulate(BOIN(), ISSUE, 200_000, seed=3, backend="jax")
    b = simulate(BOIN(), ISSUE, 200_000, seed=4)
    assert a.backend == "jax"
    for x, y in zip(a.selection_pct + (a.stop_pct,), b.selection_pct + (b.stop_pct,),
                    strict=True):
        assert close(x, y, 200_000, 200_000)
    assert np.allclose(a.mean_patients, b.mean_patients, atol=0.06)
    # n_trials not a multiple of the batch: exactly n_trials are counted
    small = simulate(BOIN(), ISSUE, 1234, seed=3, backend="jax")
    assert sum(small.mean_patients) * 1234 == pytest.approx(round(sum(small.mean_patients) * 1234))
    assert sum(small.selection_pct) + small.stop_pct == pytest.approx(100)


def test_seeded_and_reproducible_whatever_the_threads():
    a = simulate(BOIN(), ISSUE, 150_000, seed=9, threads=1)
    b = simulate(BOIN(), ISSUE, 150_000, seed=9, threads=2)
    assert a == b
    assert a.seed == 9 and a.n_trials == 150_000
    assert simulate(BOIN(), ISSUE, 150_000, seed=10) != a


def test_early_stop_rule_lowers_the_sample_size():
    res = simulate(BOIN(n_earlystop=9), ISSUE, 20_000, seed=1)
    slow = simulate(BOIN(n_earlystop=9), ISSUE, 2_000, seed=1, backend="python")
    assert sum(res.mean_patients) < 29
    assert sum(res.mean_patients) == pytest.approx(sum(slow.mean_patients), abs=0.6)


def test_result_table_and_validation():
    res = simulate(BOIN(), ISSUE, 1000, seed=1)
    table = res.table()
    assert list(table["dose"]) == [1, 2, 3, 4, 5]
    assert table["p_true"].tolist() == list(ISSUE)
    with pytest.raises(InvalidValue, match="Invalid `backend`"):
        simulate(BOIN(), ISSUE, 10, backend="cuda")
    with pytest.raises(InvalidValue, match="Invalid `p_true`"):
        simulate(BOIN(), (0.1, 0.2), 10)
    with pytest.raises(InvalidValue, match="Invalid `n_trials`"):
        simulate(BOIN(), ISSUE, 0)
