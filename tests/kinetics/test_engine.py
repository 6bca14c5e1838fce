"""Simulation engine: numpy RK4 vs scipy solve_ivp, JAX float32 vs numpy float64 per patient,
JAX float64 vs numpy float64, infusion timing, chunking, input validation.

Tolerances (stated in docs/kinetics-mechanistic.md):
- numpy RK4 (dt 0.05 d, float64, no floor) vs solve_ivp LSODA (rtol 1e-10): per state and
  sample day, |rk4 - ref| <= 1e-4 * |ref| + 1e-6 (cells/uL or pg/mL);
- JAX float32 vs numpy float64 (both with the extinction floor): per patient, every state
  at every sample day within |f32 - f64| <= 2e-3 * |f64| + 1e-3, for every patient;
- JAX float64 vs numpy float64: the same arithmetic, equal to 1e-9 relative.
"""

from __future__ import annotations

import numpy as np
import pytest

from celltrial.errors import InvalidValue
from celltrial.kinetics.engine import Infusion, simulate, solve_ivp_reference
from celltrial.kinetics.mechanistic import CD7Model, effectors_per_ul, initial_state
from celltrial.kinetics.parameters import draw_parameters

SAMPLE_DAYS = [0, 1, 4, 7, 10, 14, 21, 28, 60, 90, 180, 270, 365]


def cohort(n: int, seed: int):
    rng = np.random.default_rng(seed)
    p = draw_parameters(n, rng)
    y0 = initial_state(p, marrow_blast_pct=rng.uniform(1, 85, n))
    dose = rng.choice([5e5, 1e6, 2e6, 4e6], size=n)
    infusions = [Infusion(0, effectors_per_ul(0.3 * dose, p["blood_fraction"])),
                 Infusion(1, effectors_per_ul(0.7 * dose, p["blood_fraction"]))]
    return p, y0, infusions


def subset(p, y0, infusions, k):
    return ({name: v[:k] for name, v in p.items()}, y0[:k],
            [Infusion(i.day, i.cells_per_ul[:k]) for i in infusions])


def test_numpy_rk4_agrees_with_solve_ivp():
    p, y0, inf = subset(*cohort(200, 1), 12)
    rk4 = simulate(CD7Model(), p, y0, SAMPLE_DAYS, infusions=inf, floor=0.0)
    ref = solve_ivp_reference(CD7Model(), p, y0, SAMPLE_DAYS, infusions=inf, rtol=1e-10,
                              atol=1e-12)
    np.testing.assert_array_less(np.abs(rk4.states - ref.states),
                                 1e-4 * np.abs(ref.states) + 1e-6)


def test_jax_float32_agrees_with_numpy_float64_for_every_patient():
    p, y0, inf = cohort(400, 2)
    f64 = simulate(CD7Model(), p, y0, SAMPLE_DAYS, infusions=inf, backend="numpy")
    f32 = simulate(CD7Model(), p, y0, SAMPLE_DAYS, infusions=inf, backend="jax",
                   dtype="float32")
    assert f32.states.dtype == np.float32
    err = np.abs(f32.states.astype(float) - f64.states)
    ok = (err <= 2e-3 * np.abs(f64.states) + 1e-3).all(axis=(1, 2))
    assert ok.all(), f"patients out of tolerance: {np.flatnonzero(~ok).tolist()}"


def test_jax_float64_equals_numpy_float64():
    p, y0, inf = cohort(50, 3)
    a = simulate(CD7Model(), p, y0, SAMPLE_DAYS, infusions=inf, backend="numpy")
    b = simulate(CD7Model(), p, y0, SAMPLE_DAYS, infusions=inf, backend="jax",
                 dtype="float64")
    assert b.states.dtype == np.float64
    np.testing.assert_allclose(b.states, a.states, rtol=1e-9, atol=1e-12)


def test_a_sample_on_an_infusion_day_is_pre_dose():
    p, y0, inf = cohort(3, 4)
    tr = simulate(CD7Model(), p, y0, [0, 1], infusions=inf)
    np.testing.assert_array_equal(tr.state("E")[:, 0], 0.0)      # before the day-0 dose
    assert np.all(tr.state("E")[:, 1] > 0)


def test_chunking_does_not_change_results():
    p, y0, inf = cohort(30, 5)
    whole = simulate(CD7Model(), p, y0, [0, 7, 28], infusions=inf)
    chunked = simulate(CD7Model(), p, y0, [0, 7, 28], infusions=inf, chunk=7)
    np.testing.assert_array_equal(whole.states, chunked.states)


def test_output_shape_and_order():
    p, y0, inf = cohort(4, 6)
    tr = simulate(CD7Model(), p, y0, [0, 3, 10], infusions=inf)
    assert tr.states.shape == (4, 3, 6)
    assert list(tr.days) == [0, 3, 10]


@pytest.mark.parametrize("kwargs, message", [
    ({"days": [0, 0.03]}, "Invalid `days`: got `0.03`, must be a multiple of the step"),
    ({"days": [-1, 2]}, "Invalid `days`"),
    ({"days": [1], "dt": 0.0}, "Invalid `dt`"),
    ({"days": [1], "backend": "torch"}, "Invalid `backend`"),
    ({"days": [1], "dtype": "float16"}, "Invalid `dtype`"),
])
def test_bad_input_is_refused(kwargs, message):
    p, y0, _ = cohort(2, 7)
    with pytest.raises(InvalidValue, match=message):
        simulate(CD7Model(), p, y0, **kwargs)


def test_bad_state_shape_is_refused():
    p, y0, _ = cohort(2, 7)
    with pytest.raises(InvalidValue, match="Invalid `y0`"):
        simulate(CD7Model(), p, y0[:, :4], [1])


def test_unrolled_gpu_loop_gives_the_same_states(monkeypatch):
    """The GPU path unrolls a day's 20 steps per loop iteration; run it on the CPU here."""
    from celltrial.kinetics import engine

    p, y0, inf = cohort(20, 8)
    plain = simulate(CD7Model(), p, y0, [0, 1, 7, 28], infusions=inf, backend="jax",
                     dtype="float64")
    monkeypatch.setitem(engine.UNROLL_MAX, "cpu", 20)
    assert engine._block(np.array([20, 120, 420])) == 20
    unrolled = simulate(CD7Model(), p, y0, [0, 1, 7, 28], infusions=inf, backend="jax",
                        dtype="float64")
    np.testing.assert_allclose(unrolled.states, plain.states, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("killing", ["saturating", "mass_action"])
def test_few_patients_integrated_with_floats_equal_numpy_to_the_last_bit(killing, monkeypatch):
    """Up to SCALAR_MAX patients the engine integrates each with Python floats; the states are
    bit-for-bit those of the numpy path (same expressions, IEEE 754 double arithmetic), with
    the extinction floor and with split infusions."""
    import celltrial.kinetics.engine as engine

    p, y0, inf = subset(*cohort(50, 5), 7)
    model = CD7Model(killing=killing)
    few = simulate(model, p, y0, SAMPLE_DAYS, infusions=inf)
    monkeypatch.setattr(engine, "SCALAR_MAX", 0)
    many = simulate(model, p, y0, SAMPLE_DAYS, infusions=inf)
    assert few.states.dtype == many.states.dtype == np.float64
    assert (few.states > 0).any() and (few.states == 0).any()  # the floor acted somewhere
    np.testing.assert_array_equal(few.states, many.states)
