"""Split-infusion hold rules: is the next fraction of a split CAR-T dose given or withheld?

The rules are the protocol's data (``protocol.intervention.hold_rules``,
:class:`~celltrial.protocols.HoldRule`); this module only applies them. Before fraction ``n``
(n >= 2) the site reports what was seen from the first fraction up to the morning of fraction
``n``: the worst ASTCT 2019 CRS grade, the worst ASTCT 2019 ICANS grade and whether an
infection is uncontrolled. A rule holds when its sign reached ``min_grade`` (for
``uncontrolled_infection``: when present). The first rule that holds withholds the fraction,
and a withheld fraction withholds every later one (split doses are not resumed once stopped,
the usual practice of split CAR-T dosing; the protocols mark the rules ``assumed`` where the
registration is silent).

>>> from celltrial.protocols import load
>>> next_fraction(load("nct04762485"), 2, {"crs_grade": 2}).reason
'H1: CRS grade >= 2 after the previous fraction (CRS grade 2 seen)'
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celltrial.errors import invalid

__all__ = ["FractionDecision", "next_fraction"]

_SIGNS = {"crs": "crs_grade", "icans": "icans_grade",
          "uncontrolled_infection": "uncontrolled_infection"}


@dataclass(frozen=True)
class FractionDecision:
    """Whether fraction ``fraction`` is given; ``rule`` is the hold rule that withheld it."""

    fraction: int
    give: bool
    rule: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"fraction": self.fraction, "give": self.give, "rule": self.rule,
                "reason": self.reason}


def _grade(name: str, value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != int(value) \
            or not 0 <= value <= 5:
        raise invalid(name, value, "an ASTCT 2019 grade 0-5")
    return int(value)


def next_fraction(protocol: Any, fraction: int, seen: Mapping[str, Any],
                  *, previous_withheld: bool = False) -> FractionDecision:
    """Decision for fraction ``fraction`` (1-based; the first is always given) from what was
    ``seen`` since the first fraction: ``crs_grade``, ``icans_grade`` (ASTCT 2019, 0 = none;
    absent = not seen) and ``uncontrolled_infection`` (bool)."""
    split = protocol.intervention.split
    if isinstance(fraction, bool) or not isinstance(fraction, int) or not 1 <= fraction <= len(
            split):
        raise invalid("fraction", fraction, f"a fraction number 1..{len(split)}")
    unknown = set(seen) - set(_SIGNS.values())
    if unknown:
        raise invalid("seen", sorted(unknown)[0], f"one of {sorted(_SIGNS.values())}")
    if fraction == 1:
        return FractionDecision(1, True, None, "first fraction")
    if previous_withheld:
        return FractionDecision(fraction, False, None,
                                f"fraction {fraction - 1} was withheld: later fractions are not "
                                "given")
    values = {"crs_grade": _grade("crs_grade", seen.get("crs_grade")),
              "icans_grade": _grade("icans_grade", seen.get("icans_grade"))}
    infection = seen.get("uncontrolled_infection", False)
    if not isinstance(infection, bool):
        raise invalid("uncontrolled_infection", infection, "true or false")
    for rule in protocol.intervention.hold_rules:
        if rule.sign == "uncontrolled_infection":
            if infection:
                return FractionDecision(fraction, False, rule.id,
                                        f"{rule.id}: {rule.description} (uncontrolled infection)")
            continue
        key = _SIGNS[rule.sign]
        if values[key] >= rule.min_grade:
            name = "CRS" if rule.sign == "crs" else "ICANS"
            return FractionDecision(fraction, False, rule.id,
                                    f"{rule.id}: {rule.description} ({name} grade "
                                    f"{values[key]} seen)")
    return FractionDecision(fraction, True, None,
                            "no hold rule met" if protocol.intervention.hold_rules else
                            "the protocol has no hold rule")
