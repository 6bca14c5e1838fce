"""Mechanistic CD7 CAR-T model: parameter table, model sanity on a typical patient, CRS link."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from celltrial.errors import InvalidValue
from celltrial.kinetics.engine import Infusion, simulate
from celltrial.kinetics.mechanistic import (
    CRS_LINK, FLOPS_PER_STEP, ICANS_LINK, STATES, CD7Model, effectors_per_ul, initial_state,
    marrow_blast_fraction,
)
from celltrial.kinetics.parameters import (
    BY_NAME, EXTINCTION_FLOOR, PARAMETERS, draw_parameters, typical_values,
)

DAYS = list(range(0, 366))


def typical_run(model: CD7Model = CD7Model(), *, overrides: dict[str, float] | None = None,
                blast_pct: float = 40.0, dose_per_kg: float = 1e6):
    """A typical patient (IIV 0) over one year, daily; cached (the tests only read it)."""
    return _typical_run(model, tuple(sorted((overrides or {}).items())), blast_pct, dose_per_kg)


@functools.lru_cache(maxsize=None)
def _typical_run(model: CD7Model, overrides: tuple, blast_pct: float, dose_per_kg: float):
    p = draw_parameters(1, np.random.default_rng(0), overrides=dict(overrides), iiv_scale=0.0)
    y0 = initial_state(p, marrow_blast_pct=np.array([blast_pct]), escape=model.escape)
    inf = [Infusion(0, effectors_per_ul(np.array([dose_per_kg]), p["blood_fraction"]))]
    return p, simulate(model, p, y0, DAYS, infusions=inf)


# --- the parameter table: every value has a source or is marked as an assumption
@pytest.mark.parametrize("param", PARAMETERS, ids=lambda p: p.name)
def test_every_parameter_has_a_source_or_is_an_assumption(param):
    assert param.source.strip()
    assert param.source.startswith(("[", "assumption:", "normal adult")), param.source
    assert param.unit and param.description
    assert param.iiv >= 0 and param.value > 0


@pytest.mark.parametrize("name, value", [
    ("rho", math.log(3900) / 9.3),      # Stein 2019: doubling time 0.78 d
    ("alpha", 0.16),                    # Stein 2019 contraction
    ("beta", 0.0032),                   # Stein 2019 persistence
    ("fb", 0.0079),                     # Stein 2019 fraction to the slow phase
])
def test_stein_2019_values(name, value):
    assert BY_NAME[name].value == pytest.approx(value)
    assert "Stein" in BY_NAME[name].source


def test_stein_doubling_time_is_078_days():
    assert math.log(2) / BY_NAME["rho"].value == pytest.approx(0.78, abs=0.01)


def test_draw_parameters_is_seeded_and_iiv_zero_gives_typical_values():
    a = draw_parameters(5, np.random.default_rng(3))
    b = draw_parameters(5, np.random.default_rng(3))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    typical = draw_parameters(2, np.random.default_rng(3), iiv_scale=0.0)
    assert typical["alpha"] == pytest.approx([0.16, 0.16])
    assert set(typical) == set(typical_values())


def test_unknown_override_is_refused():
    with pytest.raises(InvalidValue, match="Invalid `overrides`: got"):
        draw_parameters(1, np.random.default_rng(0), overrides={"gamma": 1.0})


def test_unknown_killing_is_refused():
    with pytest.raises(InvalidValue, match="Invalid `killing`"):
        CD7Model(killing="linear")  # type: ignore[arg-type]


# --- model sanity on the typical patient (dose 1e6/kg, 40% marrow blasts)
def test_car_t_expands_then_contracts():
    _, tr = typical_run()
    car = tr.state("E")[0] + tr.state("M")[0]
    peak_day = int(np.argmax(car))
    assert 5 <= peak_day <= 21
    assert car[peak_day] > 10 * car[1]
    assert car[60] < 0.3 * car[peak_day]
    assert car[365] > 0                      # persistence (memory)


def test_normal_cd7_cells_fall_then_recover():
    _, tr = typical_run()
    n = tr.state("N")[0]
    nadir_day = int(np.argmin(n[:60]))
    assert n[nadir_day] < 0.2 * n[0]         # CD7+ T/NK aplasia
    assert n[180] > 3 * n[nadir_day]         # recovery from the source


def test_blasts_are_cleared_in_a_responder():
    p, tr = typical_run()
    frac = marrow_blast_fraction(tr.states, p)[0]
    assert frac[0] == pytest.approx(0.40)
    assert frac[28] < 1e-4                   # MRD-negative marrow by day 28


def test_il6_peak_precedes_or_coincides_with_car_t_peak():
    _, tr = typical_run()
    car = tr.state("E")[0] + tr.state("M")[0]
    il6 = tr.state("IL6")[0]
    assert int(np.argmax(il6)) <= int(np.argmax(car))
    assert il6.max() > 5 * il6[0]


def test_cd7_negative_escape_clone_relapses_and_is_absent_without_escape():
    p, tr = typical_run(overrides={"escape_fraction": 1e-5})
    bn = tr.state("BN")[0]
    assert tr.state("B")[0, 28] < 1.0 and bn[365] > bn[0] * 1e3
    assert marrow_blast_fraction(tr.states, p)[0, 365] > 0.05    # CD7-negative relapse
    _, no_escape = typical_run(CD7Model(escape=False), overrides={"escape_fraction": 1e-5})
    assert np.all(no_escape.state("BN") == 0)


def test_mass_action_killing_also_clears_blasts():
    p, tr = typical_run(CD7Model(killing="mass_action"))
    assert marrow_blast_fraction(tr.states, p)[0, 28] < 0.05


def test_extinction_floor_sets_vanished_populations_to_zero():
    _, tr = typical_run(overrides={"k_kill": 6.0})      # a deep responder
    b = tr.state("B")[0]
    assert b[365] == 0.0                     # cleared blasts are exactly zero, not 1e-40
    positive = tr.states[..., :5][tr.states[..., :5] > 0]
    assert positive.min() >= EXTINCTION_FLOOR


def test_state_order():
    assert STATES == ("E", "M", "B", "BN", "N", "IL6")
    assert FLOPS_PER_STEP == 235


# --- CRS / ICANS link
def test_crs_link_probabilities_are_monotone_in_il6():
    il6 = np.array([5.0, 50.0, 500.0, 5000.0, 50000.0])
    for link in (CRS_LINK, ICANS_LINK):
        prob = link.probabilities(il6)
        assert np.all(np.diff(prob, axis=0) > 0)          # higher IL-6, higher P(>= g)
        assert np.all(np.diff(prob, axis=1) < 0)          # P(>= g) falls with g


def test_crs_rates_are_calibrated_to_published_cd7_car_t():
    """CLINICAL_REFERENCE 6: CRS any grade 85-100%, grade >= 3 about 10% (5-20% accepted)."""
    n = 3000
    rng = np.random.default_rng(11)
    p = draw_parameters(n, rng)
    y0 = initial_state(p, marrow_blast_pct=np.exp(rng.normal(math.log(35), 0.7, n)).clip(5, 89))
    inf = [Infusion(0, effectors_per_ul(np.full(n, 1e6), p["blood_fraction"]))]
    tr = simulate(CD7Model(), p, y0, list(range(29)), infusions=inf)
    grade = CRS_LINK.draw(tr.state("IL6").max(axis=1), rng.uniform(size=n))
    assert 0.85 <= np.mean(grade >= 1) <= 1.0
    assert 0.05 <= np.mean(grade >= 3) <= 0.20
    icans = ICANS_LINK.draw(tr.state("IL6").max(axis=1), rng.uniform(size=n))
    assert 0.03 <= np.mean(icans >= 1) <= 0.25
