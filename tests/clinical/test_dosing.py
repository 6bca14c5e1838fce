"""Dose and bag planning on the shipped protocols: cells, split fractions, bags, refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celltrial.clinical import DoseInfeasible, Product, plan_dose
from celltrial.errors import InvalidValue, ProtocolError
from celltrial.protocols import load


@pytest.fixture(scope="module")
def split():
    return load("nct04762485")  # 30% day 0, 70% day 1 (assumed split); 10-50 mL, 1-4 bags


@pytest.fixture(scope="module")
def single():
    return load("cd7-zz-phase1")


def test_worked_split_dose(split):
    """DL2 = 1e6/kg, 70 kg -> 7e7 cells: 2.1e7 on day 0, 4.9e7 on day 1; 5e5 cells/mL."""
    plan = plan_dose(split, "DL2", 70, Product(5e5, 200))
    assert plan.total_cells == pytest.approx(7e7)
    (d0, d1) = plan.fractions
    assert (d0.day, d0.cells, d0.volume_ml, d0.bags, d0.bag_volumes_ml) == (0, 2.1e7, 42.0, 1,
                                                                            (42.0,))
    assert (d1.day, d1.cells, d1.volume_ml, d1.bags, d1.bag_volumes_ml) == (1, 4.9e7, 98.0, 2,
                                                                            (49.0, 49.0))
    assert d1.cells_per_kg == pytest.approx(7e5)
    assert plan.total_volume_ml == 140.0 and not plan.weight_capped


def test_bags_split_in_tenths(single):
    plan = plan_dose(single, "DL1", 50.3, Product(2.5e5, 500))  # 100.6 mL -> 3 bags
    (f,) = plan.fractions
    assert f.volume_ml == 100.6 and f.bags == 3
    assert f.bag_volumes_ml == (33.6, 33.5, 33.5)
    assert sum(f.bag_volumes_ml) == pytest.approx(f.volume_ml)


@pytest.mark.parametrize(("volume", "bags"), [(10.0, 1), (50.0, 1), (50.1, 2), (100.0, 2),
                                              (100.1, 3), (200.0, 4)])
def test_bag_count_boundaries(single, volume, bags):
    level = single.dose_levels[0]
    weight = 50.0
    conc = level.cells_per_kg * weight / volume
    (f,) = plan_dose(single, level.id, weight, Product(conc, 250)).fractions
    assert (f.volume_ml, f.bags) == (volume, bags)
    assert all(10.0 <= v <= 50.0 for v in f.bag_volumes_ml)


@pytest.mark.parametrize(("volume", "message"), [
    (9.9, "below the minimum 10 mL per bag"),
    (200.1, "needs 5 bags .* allows 4 bags"),
])
def test_bag_limits_refused(single, volume, message):
    level = single.dose_levels[0]
    conc = level.cells_per_kg * 50.0 / volume
    with pytest.raises(DoseInfeasible, match=message):
        plan_dose(single, level.id, 50.0, Product(conc, 500))


def test_too_little_product(split):
    with pytest.raises(DoseInfeasible, match="too little product: 140.0 mL needed .* 139.9 mL"):
        plan_dose(split, "DL2", 70, Product(5e5, 139.9))
    assert plan_dose(split, "DL2", 70, Product(5e5, 140.0)).total_volume_ml == 140.0


def test_weight_cap(single):
    capped = single.model_copy(update={"intervention": single.intervention.model_copy(
        update={"weight_cap_kg": 80.0})})
    plan = plan_dose(capped, "DL1", 95.0, Product(1e6, 500))
    assert plan.weight_used_kg == 80.0 and plan.weight_capped
    assert plan.total_cells == pytest.approx(80.0 * single.dose_levels[0].cells_per_kg)


@pytest.mark.parametrize(("args", "error", "message"), [
    (("DL9", 70, Product(5e5, 100)), ProtocolError, "dose level"),
    (("DL1", 0, Product(5e5, 100)), InvalidValue, "Invalid `weight_kg`"),
    (("DL1", 400, Product(5e5, 100)), InvalidValue, "Invalid `weight_kg`"),
    (("DL1", 70, Product(0, 100)), InvalidValue, "Invalid `concentration_cells_per_ml`"),
    (("DL1", 70, Product(5e5, -1)), InvalidValue, "Invalid `available_volume_ml`"),
    (("DL1", 70, {"concentration": 5e5}), InvalidValue, "Invalid `product`"),
])
def test_bad_input(split, args, error, message):
    with pytest.raises(error, match=message):
        plan_dose(split, *args)


@given(st.floats(10, 150), st.floats(1e5, 1e7))
def test_plan_respects_limits_or_refuses(weight, conc):
    protocol = load("nct04762485")
    try:
        plan = plan_dose(protocol, "DL3", weight, Product(conc, 1000))
    except DoseInfeasible:
        return
    bags = protocol.intervention.bags
    for f in plan.fractions:
        assert bags.min_bags <= f.bags <= bags.max_bags
        assert all(bags.min_volume_ml <= v <= bags.max_volume_ml for v in f.bag_volumes_ml)
        assert abs(f.cells - f.target_cells) <= 0.05 * conc + 1e-6 * f.target_cells
    assert sum(f.target_cells for f in plan.fractions) == pytest.approx(plan.total_cells)
