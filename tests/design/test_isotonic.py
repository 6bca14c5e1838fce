"""Pool-adjacent-violators (BOIN select.mtd) and its vectorised max-min form agree."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from celltrial.design.isotonic import closest_to_target, isotonic_batch, pava


def test_pava_textbook_example():
    # 1, 3, 2, 4 with equal weights: the violators 3, 2 pool to 2.5
    assert np.allclose(pava(np.array([1.0, 3.0, 2.0, 4.0])), [1, 2.5, 2.5, 4])
    # weighted pooling
    assert np.allclose(pava(np.array([0.5, 0.1]), np.array([1.0, 3.0])), [0.2, 0.2])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0.1, 10)), min_size=1, max_size=7))
def test_batch_equals_pava(pairs):
    x = np.array([p[0] for p in pairs])
    w = np.array([p[1] for p in pairs])
    assert np.allclose(isotonic_batch(x[None, :], w[None, :])[0], pava(x, w), atol=1e-12)


def test_zero_weight_columns_are_left_out():
    fit = isotonic_batch(np.array([[0.4, 0.9, 0.1]]), np.array([[1.0, 0.0, 1.0]]))[0]
    assert np.isnan(fit[1])
    assert np.allclose(fit[[0, 2]], [0.25, 0.25])


def test_tie_rule_of_boin():
    # equal pooled estimates below the target: the higher dose wins; above: the lower
    assert closest_to_target(np.array([[0.2, 0.2, 0.6]]), 0.3)[0] == 1
    assert closest_to_target(np.array([[0.1, 0.4, 0.4]]), 0.3)[0] == 1
    assert closest_to_target(np.array([[np.nan, np.nan]]), 0.3)[0] == -1
