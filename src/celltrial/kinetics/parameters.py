"""Parameters of the mechanistic CD7 CAR-T model, declared as data.

One row per parameter: name, typical value, unit, between-subject variability (IIV, the
standard deviation of a log-normal random effect; 0 = fixed), and its source. A source that
reads ``assumption: ...`` is not taken from a publication; the text gives the rationale.
Keys to sources are those of ``../shared/CLINICAL_REFERENCE.md`` (e.g. [K1] Stein et al.
2019, [D1] Pan et al. JCO 2021).

Draw individual parameters with :func:`draw_parameters`; the table itself never changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from celltrial.errors import invalid


@dataclass(frozen=True)
class Parameter:
    """One model parameter: typical value, unit, log-normal IIV (SD on the log scale), source."""

    name: str
    value: float
    unit: str
    iiv: float
    description: str
    source: str


PARAMETERS: tuple[Parameter, ...] = (
    # --- CAR-T effector/memory kinetics (cells/uL blood) ---
    Parameter("rho", math.log(3900) / 9.3, "1/day", 0.3,
              "maximal antigen-driven expansion rate of CAR-T effectors",
              "[K1] Stein 2019: rho = ln(foldx)/Tmax = ln(3900)/9.3 = 0.889/d (doubling 0.78 d); "
              "IIV assumption: 0.3 (Stein's IIV sits on foldx and Tmax, not on rho)"),
    Parameter("alpha", 0.16, "1/day", math.sqrt(0.91),
              "effector contraction rate when antigen is scarce",
              "[K1] Stein 2019: alpha 0.16/d (initial-decline t1/2 4.3 d), omega^2 0.91"),
    Parameter("beta", 0.0032, "1/day", math.sqrt(0.86),
              "memory CAR-T decline rate (persistence)",
              "[K1] Stein 2019: beta 0.0032/d (terminal t1/2 ~217 d), omega^2 0.86"),
    Parameter("fb", 0.0079, "1", math.sqrt(0.80),
              "fraction of contracting effectors that become memory; k_em = fb*(alpha-beta)",
              "[K1] Stein 2019: FB 0.0079, omega^2 0.80; k = FB*(alpha-beta)"),
    Parameter("effector_max", 5000.0, "cells/uL", 0.0,
              "ceiling of CAR-T effector expansion (logistic factor 1 - E/effector_max)",
              "assumption: CAR-T counts in blood stay below ~10^3-10^4 cells/uL; without a "
              "ceiling, draws with a small k_antigen and slow contraction expand without "
              "bound on the normal CD7+ cells' source (E > 1e38 within a year: float32 "
              "overflow in 3 of 100,000 patients in the reference benchmark run)"),
    Parameter("k_react", 0.2, "1/day", 0.5,
              "re-activation rate of memory CAR-T into effectors at full antigen drive",
              "assumption: memory re-expands within days of antigen return (relapse, CD7+ "
              "recovery); no published value for CD7 CAR-T"),
    Parameter("k_antigen", 100.0, "cells/uL", 0.5,
              "antigen (CD7+ cells) giving half-maximal drive f = A/(A+K)",
              "assumption: at equilibrium the CAR-T hold CD7+ targets near 0.2 x K; K = 100 "
              "cells/uL keeps normal CD7+ cells in deep aplasia while CAR-T persist and keeps "
              "CD7+ blasts suppressed, so relapses are mostly CD7-negative as published "
              "([D2] 4/6, [D8] 7/7); expansion stops within 1-2 weeks ([D9] Tmax 10-21 d)"),
    Parameter("blood_fraction", 0.02, "1", 0.5,
              "fraction of infused CAR-T cells found in blood right after infusion",
              "assumption: most infused cells home to tissues; sets R0 so that Cmax falls in "
              "the published 10^3-10^5 copies/ug range ([K1], [D9])"),
    # --- killing ---
    Parameter("k_kill", 3.0, "1/day", 0.4,
              "maximal kill rate of a CD7+ target by CAR-T effectors",
              "assumption: MRD-negative marrow by day 28 in 19/20 ([D3]) needs several logs of "
              "kill within 2-3 weeks, i.e. a maximal rate of order 1/d"),
    Parameter("k_effector", 20.0, "cells/uL", 0.5,
              "effector count giving half-maximal killing (saturating kill E/(E+K))",
              "assumption: killing saturates once effectors reach tens of cells/uL, the "
              "usual peak CAR-T count in blood"),
    Parameter("k_mass_action", 0.05, "uL/(cell*day)", 0.4,
              "kill rate per effector in the mass-action variant (killing = 'mass_action')",
              "assumption: equals k_kill/k_effector at low effector counts"),
    # --- leukemia ---
    Parameter("blast_growth", math.log(2) / 10.0, "1/day", 0.4,
              "net growth rate of leukemic blasts",
              "assumption: in-vivo doubling of relapsing acute leukemia of order 1-3 weeks; 10 d "
              "gives median relapse ~4-6 months as in [D2] (median 6 mo, 4.0-10.9)"),
    Parameter("marrow_normal", 1.0e4, "cells/uL", 0.0,
              "normal nucleated marrow cells in the marrow proxy (blast % denominator)",
              "assumption: scale of the marrow proxy; blast % = B/(B+H) so only ratios matter"),
    Parameter("marrow_max", 9.0e4, "cells/uL", 0.0,
              "carrying capacity of leukemic blasts in the marrow proxy (90% blasts)",
              "assumption: blasts saturate at about 90% of marrow cellularity"),
    Parameter("escape_fraction", 3.0e-11, "1", 3.0,
              "initial fraction of blasts that are CD7-negative (escape clone, not killed)",
              "assumption: CD7-negative relapse is the main relapse mechanism ([D2] 4/6, [D8] "
              "7/7); a log-normal fraction around 3e-11 (IIV 3) leaves an escape clone "
              "above the extinction floor in about a third of patients"),
    # --- normal CD7+ T/NK cells ---
    Parameter("normal_cd7_steady", 1200.0, "cells/uL", 0.3,
              "steady-state normal CD7+ T and NK cells in blood",
              "normal adult T cells ~700-2100/uL of which ~85-90% CD7+, NK ~90-600/uL, all "
              "CD7+ ([D6], [D12]); 1200/uL is the middle"),
    Parameter("normal_cd7_turnover", 0.004, "1/day", 0.3,
              "turnover (death) rate of normal CD7+ cells; source = turnover*steady",
              "assumption: T-cell reconstitution after lymphodepletion and CD7 CAR-T takes "
              "months (t1/2 ~170 d)"),
    Parameter("lymphodepletion", 0.1, "1", 0.4,
              "fraction of normal CD7+ cells left after lymphodepletion at day 0",
              "assumption: fludarabine/cyclophosphamide lowers lymphocytes about tenfold"),
    # --- cytokines ---
    Parameter("il6_baseline", 3.0, "pg/mL", 0.3,
              "baseline serum IL-6", "assumption: healthy range < 7 pg/mL"),
    Parameter("il6_clearance", math.log(2) / 0.25, "1/day", 0.2,
              "first-order IL-6 clearance",
              "assumption: serum IL-6 half-life of hours; 6 h used (elimination rate 2.77/d)"),
    Parameter("il6_per_kill", 0.25, "pg/mL per (cell/uL killed)", 1.0,
              "IL-6 produced per CD7+ target killed",
              "assumption: calibrated so that peak IL-6 gives CRS grade 1-2 in ~85-90% and "
              "grade >= 3 in ~10% of patients as in [D1], [D4], [D8] (CLINICAL_REFERENCE 6)"),
    Parameter("il6_per_effector", 2.0, "pg/mL per (cell/uL * day)", 1.0,
              "IL-6 produced per activated effector per day",
              "assumption: activated CAR-T and bystander monocytes add IL-6 while antigen drives "
              "expansion; same calibration as il6_per_kill"),
)

BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}

EXTINCTION_FLOOR = 1.0e-6
"""Cells/uL below which a population is set to zero (one cell in 1 L of blood is 1e-6/uL).

Why: below it the population has no biological meaning, and in float32 a population that
decays for a year falls under float32's smallest normal number (~1.2e-38) and becomes noise
that can later regrow; in reference runs 0.2-0.6% of patients went wrong in float32 that way.
"""


def typical_values() -> dict[str, float]:
    """The typical (population) value of every parameter."""
    return {p.name: p.value for p in PARAMETERS}


def draw_parameters(n: int, rng: np.random.Generator, *,
                    overrides: dict[str, float] | None = None,
                    iiv_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Individual parameters for ``n`` patients: typical * exp(iiv * z), z ~ N(0, 1).

    ``overrides`` replaces typical values by name; ``iiv_scale`` multiplies every IIV
    (0 gives typical patients).
    """
    if n < 0:
        raise invalid("n", n, "a non-negative number of patients")
    overrides = overrides or {}
    unknown = set(overrides) - set(BY_NAME)
    if unknown:
        raise invalid("overrides", sorted(unknown), f"names from {sorted(BY_NAME)}")
    out: dict[str, np.ndarray] = {}
    for p in PARAMETERS:
        z = rng.standard_normal(n)
        typical = overrides.get(p.name, p.value)
        out[p.name] = typical * np.exp(p.iiv * iiv_scale * z)
    out["fb"] = np.minimum(out["fb"], 0.5)
    out["lymphodepletion"] = np.minimum(out["lymphodepletion"], 1.0)
    return out
