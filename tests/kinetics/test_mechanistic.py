"""Mechanistic CD7 CAR-T model: parameter table, model sanity on a typical patient, the
extinction floor, the effector ceiling, fratricide (protocol-driven), the persisting fraction,
CRS link."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from celltrial.errors import InvalidValue
from celltrial.kinetics.engine import Infusion, simulate
from celltrial.kinetics.mechanistic import (
    CRS_LINK, FLOPS_PER_STEP, ICANS_LINK, STATES, CD7Model, effectors_per_ul, extinction_floor,
    initial_state, marrow_blast_fraction, persisting_fraction,
)
from celltrial.kinetics.parameters import (
    BY_NAME, EXTINCTION_FLOOR, FRATRICIDE_FREE_EDITING, PARAMETERS, Parameter, check_value,
    draw_parameters, fratricide_rate, typical_values,
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
    return p, simulate(model, p, y0, DAYS, infusions=inf, floor=extinction_floor(p))


# --- the parameter table: every value has a source or is marked as an assumption
@pytest.mark.parametrize("param", PARAMETERS, ids=lambda p: p.name)
def test_every_parameter_has_a_source_or_is_an_assumption(param):
    assert param.source.strip()
    assert param.source.startswith(("[", "assumption:", "normal adult", "calibrated:")), \
        param.source
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
    assert FLOPS_PER_STEP == 255             # 4 x 43 + 36 + 42 + 5 (fratricide: +5 per RHS)


# --- the structural parameters: extinction floor, effector ceiling, fratricide
def test_floor_ceiling_and_fratricide_are_named_parameters_with_units_and_defaults():
    assert (BY_NAME["extinction_floor"].value, BY_NAME["extinction_floor"].unit) == \
        (1e-6, "cells/uL")
    assert EXTINCTION_FLOOR == BY_NAME["extinction_floor"].value
    assert (BY_NAME["effector_max"].value, BY_NAME["effector_max"].unit) == (5000.0, "cells/uL")
    assert (BY_NAME["k_fratricide"].value, BY_NAME["k_fratricide"].unit) == (0.1, "1/day")
    assert BY_NAME["extinction_floor"].source.startswith("calibrated:")
    assert "relapse" in BY_NAME["extinction_floor"].source       # what it is calibrated to
    for name in ("extinction_floor", "effector_max", "k_fratricide"):
        assert BY_NAME[name].iiv == 0


def test_new_rows_draw_no_random_numbers_so_seeded_cohorts_are_unchanged():
    rng = np.random.default_rng(7)
    draw_parameters(4, rng)
    reference = np.random.default_rng(7)
    reference.standard_normal(4 * sum(p.draws for p in PARAMETERS))
    assert rng.standard_normal() == reference.standard_normal()
    assert [p.name for p in PARAMETERS if not p.draws] == ["extinction_floor", "k_fratricide"]
    with pytest.raises(InvalidValue, match="Invalid `draws`"):
        Parameter("x", 1.0, "1", 0.5, "d", "assumption: x", draws=False)


@pytest.mark.parametrize("name, value, ok", [
    ("extinction_floor", 0.0, True),            # no floor
    ("extinction_floor", 1e-9, True),
    ("extinction_floor", -1e-6, False),
    ("extinction_floor", math.inf, False),
    ("effector_max", math.inf, True),           # no ceiling
    ("effector_max", 0.0, False),
    ("k_fratricide", 0.0, True),                # a CD7-edited product
    ("k_fratricide", math.nan, False),
    ("rho", 0.0, False),
    ("rho", math.inf, False),
    ("alpha", "fast", False),
])
def test_parameter_values_are_validated(name, value, ok):
    if ok:
        check_value(name, value)
        p = draw_parameters(2, np.random.default_rng(0), overrides={name: value})
        assert np.all(p[name] == value)
    else:
        with pytest.raises(InvalidValue, match=f"Invalid `{name}`"):
            draw_parameters(2, np.random.default_rng(0), overrides={name: value})


def test_extinction_floor_of_a_parameter_set_is_one_non_negative_value():
    p = draw_parameters(3, np.random.default_rng(0))
    assert extinction_floor(p) == EXTINCTION_FLOOR
    assert extinction_floor({}) == EXTINCTION_FLOOR
    p["extinction_floor"] = np.array([1e-6, 1e-6, 1e-8])
    with pytest.raises(InvalidValue, match="Invalid `extinction_floor`"):
        extinction_floor(p)


def test_floor_decides_whether_an_escape_clone_exists_at_day_0():
    """A clone below the floor does not exist; without a floor it does."""
    kw = {"marrow_blast_pct": np.array([35.0])}
    small = {"escape_fraction": 1e-11}           # 5,385 blasts/uL x 1e-11 = 5e-8 cells/uL
    p = draw_parameters(1, np.random.default_rng(0), overrides=small, iiv_scale=0.0)
    assert initial_state(p, **kw)[0, 3] == 0.0
    p0 = draw_parameters(1, np.random.default_rng(0),
                         overrides={**small, "extinction_floor": 0.0}, iiv_scale=0.0)
    assert initial_state(p0, **kw)[0, 3] == pytest.approx(5.385e-8, rel=1e-3)


def test_floor_extinguishes_what_falls_below_it_and_nothing_regrows():
    # an escape clone (6.7e-6 cells/uL) above the default floor regrows; under a floor 15-fold
    # higher it does not exist, and nothing regrows from zero all year
    _, grows = typical_run(overrides={"escape_fraction": 1e-9})
    assert grows.state("BN")[0, 365] > 1.0
    _, gone = typical_run(overrides={"escape_fraction": 1e-9, "extinction_floor": 1e-4})
    assert np.all(gone.state("BN")[0] == 0.0)
    # cleared CD7+ blasts: exactly zero with the floor, tiny but positive without it
    _, floored = typical_run(overrides={"k_kill": 6.0})
    _, unfloored = typical_run(overrides={"k_kill": 6.0, "extinction_floor": 0.0})
    assert floored.state("B")[0, 180] == 0.0
    assert 0.0 < unfloored.state("B")[0, 180] < EXTINCTION_FLOOR


def test_effector_ceiling_bounds_the_expansion():
    _, free = typical_run()
    assert free.state("E")[0].max() > 40
    _, capped = typical_run(overrides={"effector_max": 20.0})
    e = capped.state("E")[0]
    assert e.max() <= 20.0 * (1 + 1e-6)
    assert e.max() > 10.0                     # it presses against the ceiling
    _, none = typical_run(overrides={"effector_max": math.inf})
    assert none.state("E")[0].max() >= free.state("E")[0].max()


def test_without_ceiling_and_fratricide_a_small_k_antigen_runs_away_and_the_ceiling_stops_it():
    """The runaway the ceiling exists for: slow contraction and a small k_antigen expand on
    the normal CD7+ cells' source."""
    runaway = {"k_antigen": 5.0, "alpha": 0.01, "k_fratricide": 0.0}
    _, free = typical_run(overrides={**runaway, "effector_max": math.inf})
    _, capped = typical_run(overrides=runaway)
    assert free.state("E")[0].max() > 1e6
    assert capped.state("E")[0].max() <= BY_NAME["effector_max"].value * (1 + 1e-6)


def test_fratricide_lowers_the_car_t_peak_and_zero_gives_the_edited_product():
    _, plain = typical_run()                                   # default: not edited
    _, edited = typical_run(overrides={"k_fratricide": 0.0})
    _, strong = typical_run(overrides={"k_fratricide": 1.0})
    peak = {k: (tr.state("E")[0] + tr.state("M")[0]).max()
            for k, tr in (("plain", plain), ("edited", edited), ("strong", strong))}
    assert peak["strong"] < peak["plain"] < peak["edited"]
    assert peak["plain"] > 0.7 * peak["edited"]                 # a modest effect by default


@pytest.mark.parametrize("editing, rate", [
    ("knockout", 0.0), ("pebl", 0.0), ("natural_selection", 0.1), ("none", 0.1),
    ("unknown", 0.1),
])
def test_fratricide_rate_is_zero_only_for_cd7_edited_products(editing, rate):
    assert fratricide_rate(editing) == pytest.approx(rate)
    assert (editing in FRATRICIDE_FREE_EDITING) == (rate == 0.0)


def _with_editing(protocol, editing):
    iv = protocol.intervention.model_copy(update={"cd7_editing": editing})
    return protocol.model_copy(update={"intervention": iv})


def test_virtual_patients_take_fratricide_from_the_protocol_product():
    from celltrial.kinetics.virtual import (
        draw_patients, patient_parameters, product_cd7_editing, simulate_cohort,
    )
    from celltrial.protocols import list_ids, load

    for study in list_ids():                   # the five registrations: not stated (unknown)
        protocol = load(study)
        patients = draw_patients(protocol, 5, np.random.default_rng(1))
        p = patient_parameters(patients, np.random.default_rng(2),
                               cd7_editing=product_cd7_editing(protocol))
        assert np.all(p["k_fratricide"] > 0), study
    protocol = load("cd7-tall-phase1")
    patients = draw_patients(protocol, 6, np.random.default_rng(1))
    for editing, positive in (("knockout", False), ("pebl", False), ("none", True),
                              ("natural_selection", True)):
        out = simulate_cohort(_with_editing(protocol, editing), patients, 0,
                              np.random.default_rng(2), [90])
        assert np.all(out.params["k_fratricide"] > 0) == positive, editing
        assert np.all(out.params["k_fratricide"] == 0) != positive, editing


# --- the persisting fraction: fb/(1+fb), not fb
@pytest.mark.parametrize("fb", [0.0079, 0.2])
def test_persisting_fraction_is_fb_over_1_plus_fb(fb):
    """Without antigen or fratricide, effectors E0 contract and leave memory that tends to
    fb/(1+fb) E0 exp(-beta t) (cells move from E to M; Stein's FB does not deplete E)."""
    p = draw_parameters(1, np.random.default_rng(0), iiv_scale=0.0, overrides={
        "fb": fb, "k_fratricide": 0.0, "normal_cd7_steady": 1e-12, "extinction_floor": 0.0})
    y0 = np.zeros((1, len(STATES)))
    y0[0, 0], y0[0, 5] = 100.0, p["il6_baseline"][0]
    tr = simulate(CD7Model(), p, y0, [0, 250], floor=0.0)
    beta = p["beta"][0]
    share = tr.state("M")[0, 1] * math.exp(beta * 250) / 100.0
    assert share == pytest.approx(persisting_fraction(fb), rel=1e-6)
    assert persisting_fraction(fb) == pytest.approx(fb / (1 + fb))
    assert abs(share - fb) > 0.005 * fb      # not fb itself


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
