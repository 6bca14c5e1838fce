"""Dose and infusion-bag planning from the protocol's dose level, split and bag limits.

Rules (all numbers from the protocol's ``intervention``):
- Weight used = actual weight, capped at ``weight_cap_kg`` when the protocol has one.
- Total CAR+ viable cells = dose level (CAR+ cells/kg) x weight used.
- Split infusion: each fraction's cells = total x its fraction, on its study day.
- Volume of a fraction = cells / product concentration (CAR+ viable cells/mL), rounded to
  the nearest 0.1 mL (half up); the cells actually given are volume x concentration and
  must be within ``dose_tolerance`` (relative) of the target, else refused.
- Bags per fraction = the fewest bags (>= ``min_bags``) whose volume is <= ``max_volume_ml``;
  the fraction's volume is shared out in 0.1 mL steps as evenly as possible (the first bags
  take the extra 0.1 mL); every bag must hold >= ``min_volume_ml``.
- The volumes of all fractions together must fit in the product's available volume.
Refusals raise :class:`DoseInfeasible` with the reason (too little product, bag volume out
of limits, more bags than allowed, dose outside tolerance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from celltrial.errors import CelltrialError, invalid

__all__ = ["DoseInfeasible", "DosePlan", "Fraction", "Product", "plan_dose"]

ROUNDING = ("volumes rounded to the nearest 0.1 mL (half up); cells given = rounded volume x "
            "concentration; bag volumes shared in 0.1 mL steps, first bags take the remainder")


class DoseInfeasible(CelltrialError):
    """The dose cannot be prepared within the protocol's limits; the message says why."""

    code = "CT110"


@dataclass(frozen=True)
class Product:
    """The manufactured product: CAR+ viable cells per mL and the volume available."""

    concentration_cells_per_ml: float
    available_volume_ml: float


@dataclass(frozen=True)
class Fraction:
    """One infusion of a split dose."""

    day: int
    fraction: float
    target_cells: float
    cells: float
    cells_per_kg: float
    volume_ml: float
    bags: int
    bag_volumes_ml: tuple[float, ...]
    volume_per_bag_ml: float


@dataclass(frozen=True)
class DosePlan:
    protocol_id: str
    dose_level: str
    cells_per_kg: float
    weight_kg: float
    weight_used_kg: float
    weight_capped: bool
    total_cells: float
    fractions: tuple[Fraction, ...]
    total_volume_ml: float
    rounding: str = ROUNDING

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _positive(what: str, value: object, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value <= 0:
        raise invalid(what, value, f"a number > 0 ({unit})")
    return float(value)


def _tenths(volume_ml: float) -> int:
    return int(Decimal(repr(volume_ml)).scaleb(1).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def plan_dose(protocol: Any, dose_level: Any, weight_kg: float, product: Product) -> DosePlan:
    """Plan the cells, fractions, bags and volumes of one patient's dose.

    ``dose_level``: a dose-level id (``"DL2"``) or a :class:`~celltrial.protocols.DoseLevel`.
    """
    level = protocol.dose_level(dose_level) if isinstance(dose_level, str) else dose_level
    if not hasattr(level, "cells_per_kg"):
        raise invalid("dose_level", dose_level, "a dose-level id or DoseLevel")
    weight = _positive("weight_kg", weight_kg, "kg")
    if not 1.0 <= weight <= 350.0:
        raise invalid("weight_kg", weight_kg, "a possible body weight in kg (1-350)")
    if not isinstance(product, Product):
        raise invalid("product", product, "a Product(concentration_cells_per_ml, "
                      "available_volume_ml)")
    conc = _positive("concentration_cells_per_ml", product.concentration_cells_per_ml,
                     "CAR+ viable cells/mL")
    available = _positive("available_volume_ml", product.available_volume_ml, "mL")
    iv = protocol.intervention
    cap = iv.weight_cap_kg
    used = min(weight, cap) if cap is not None else weight
    total = level.cells_per_kg * used
    bags = iv.bags
    fractions = []
    for split in sorted(iv.split, key=lambda s: s.day):
        target = total * split.fraction
        tenths = _tenths(target / conc)
        volume = tenths / 10
        if tenths == 0:
            raise DoseInfeasible(f"day {split.day}: {target:.3g} cells is less than 0.1 mL of a "
                                 f"product at {conc:.3g} cells/mL")
        cells = volume * conc
        if abs(cells - target) > iv.dose_tolerance * target:
            raise DoseInfeasible(f"day {split.day}: {volume:.1f} mL gives {cells:.3g} cells, "
                                 f"outside +-{iv.dose_tolerance:.0%} of {target:.3g}")
        n = max(bags.min_bags, math.ceil(volume / bags.max_volume_ml - 1e-12))
        if n > bags.max_bags:
            raise DoseInfeasible(f"day {split.day}: {volume:.1f} mL needs {n} bags of at most "
                                 f"{bags.max_volume_ml:g} mL; the protocol allows "
                                 f"{bags.max_bags} bags")
        base, extra = divmod(tenths, n)
        bag_volumes = tuple((base + (1 if i < extra else 0)) / 10 for i in range(n))
        if min(bag_volumes) < bags.min_volume_ml:
            raise DoseInfeasible(f"day {split.day}: {volume:.1f} mL in {n} bag(s) is "
                                 f"{min(bag_volumes):.1f} mL per bag, below the minimum "
                                 f"{bags.min_volume_ml:g} mL per bag (product too concentrated "
                                 "for the bag limits)")
        fractions.append(Fraction(split.day, split.fraction, target, cells, cells / used, volume,
                                  n, bag_volumes, round(volume / n, 2)))
    total_volume = sum(f.volume_ml for f in fractions)
    if total_volume > available + 1e-9:
        raise DoseInfeasible(f"too little product: {total_volume:.1f} mL needed at "
                             f"{conc:.3g} cells/mL, {available:g} mL available")
    return DosePlan(protocol.id, level.id, level.cells_per_kg, weight, used,
                    cap is not None and weight > cap, total, tuple(fractions),
                    round(total_volume, 1))
