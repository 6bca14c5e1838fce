"""Parameters of the mechanistic CD7 CAR-T model, declared as data.

One row per parameter: name, typical value, unit, between-subject variability (IIV, the
standard deviation of a log-normal random effect; 0 = fixed), and its source. A source that
reads ``assumption: ...`` is not taken from a publication; the text gives the rationale.
Keys to sources are those of ``../shared/CLINICAL_REFERENCE.md`` (e.g. [K1] Stein et al.
2019, [D1] Pan et al. JCO 2021).

Three rows are structural rather than biological rates and are named here so that nothing
acts as a hidden constant: ``extinction_floor`` (the level below which a cell population is
lost), ``effector_max`` (the ceiling of CAR-T expansion) and ``k_fratricide`` (CAR-T killing
CD7+ CAR-T cells, zero for a CD7-edited product). Each accepts an override of 0 or infinity
only where :attr:`Parameter.zero_means` / :attr:`Parameter.inf_means` say what that means.
Their effect on relapse, Cmax and persistence is the sensitivity table of
benchmarks/RESULTS.md ("Mechanistic model: floor, ceiling and fratricide sensitivity").

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
    zero_means: str | None = None
    """What an override of 0 means (None: 0 is refused)."""
    inf_means: str | None = None
    """What an override of infinity means (None: infinity is refused)."""
    draws: bool = True
    """Whether :func:`draw_parameters` takes this row's n standard normals from the generator.
    False only for rows without IIV added after seeded virtual cohorts were in use
    (``extinction_floor``, ``k_fratricide``), so that a seed still gives the same patients."""

    def __post_init__(self) -> None:
        if not self.draws and self.iiv != 0:
            raise invalid("draws", self.draws, f"True for `{self.name}`, which has IIV")


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
              "memory conversion: contracting effectors become memory at k_em = fb*(alpha-beta) "
              "and leave the effector pool, so the persisting fraction (memory x e^(beta t) over "
              "the effectors at the start of contraction, once they are gone, without antigen "
              "or fratricide) is fb/(1+fb), not fb",
              "[K1] Stein 2019: FB 0.0079, omega^2 0.80; k = FB*(alpha-beta). In Stein's model "
              "conversion does not deplete the effectors (C = (1-FB) Cmax e^-alpha t + FB Cmax "
              "e^-beta t, persisting fraction FB); here it does (cells are conserved), giving "
              "fb/(1+fb) = 0.00784 at the typical value, within 1% of Stein's FB"),
    Parameter("effector_max", 5000.0, "cells/uL", 0.0,
              "effector (expansion) ceiling: CAR-T effector expansion is logistic, rho f E "
              "(1 - E/effector_max), so effectors cannot exceed it by expansion",
              "assumption: the highest published CD7 CAR-T peak, 326,483 copies/ug gDNA [D9] "
              "(about 2 transgene copies per genome, i.e. nearly every blood leukocyte "
              "CAR+), is 10^3-10^4 CAR-T cells/uL at post-lymphodepletion leukocyte counts; "
              "5,000 cells/uL is that upper end. Without the ceiling 0.65% of a 2,000-patient "
              "cohort (0.15% with fratricide) exceed 10^6 CAR-T/uL, the largest 1.9e25 (draws "
              "with a small k_antigen and slow contraction expand on the normal CD7+ cells' "
              "source; E > 1e38, float32 overflow, in 3 of 100,000 patients in the reference "
              "benchmark run); median Cmax moves < 1% (benchmarks/RESULTS.md)",
              inf_means="no ceiling: effectors grow exponentially at rho f while antigen lasts"),
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
    # --- appended rows without IIV that draw no random numbers (draws=False), so that the
    # --- rows above and everything drawn after them keep their values for a given seed ---
    Parameter("extinction_floor", 1.0e-6, "cells/uL", 0.0,
              "extinction floor: a cell population (E, M, B, BN, N) below it is set to zero, "
              "at day 0 and after every integration step; a cleared population cannot regrow",
              "calibrated: not a numerical guard but a stand-in for stochastic extinction. "
              "1e-6/uL is one cell in a litre of blood (about 5 in an adult's 5 L) and, in the "
              "marrow proxy (marrow_max 9e4/uL for the ~1e12 leukemic cells of a fully "
              "infiltrated marrow, textbook), about 10 leukemic cells in the body: a clone that "
              "small dies out by chance (a birth-death clone of n cells with death/birth ratio "
              "q is lost with probability q^n), which the deterministic ODE cannot show. Below "
              "it a clone is lost; an escape clone starting below it does not exist. With "
              "escape_fraction (3e-11, IIV 3) it therefore decides which patients carry a "
              "CD7-negative clone, and the two are calibrated together to the one-year "
              "relapse of remitters after CD7 CAR-T: 25.2% in the 2,000-patient model cohort "
              "of benchmarks/bench_mechanistic_sensitivity.py, 98% CD7-negative (published: "
              "[D1] Pan et al. JCO 2021 / [D2] Tan 2023: 6 relapses of 19 remitters by 2 years, "
              "7 transplanted, median 6 mo, 4/6 CD7-negative; [D8] 7 CD7-negative relapses of "
              "11 AML remitters by median 4.7 mo; [D3] Lu et al. 2022: none after HSCT by "
              "median 142 d; docs/virtual-patients.md). The same cohort relapses 45.6% at a "
              "floor of 1e-7, 58.3% at 1e-8 and 66.3% without a floor (benchmarks/RESULTS.md): "
              "change it only together with escape_fraction",
              zero_means="no floor: populations decay without end (the ODE's continuous "
                         "limit); a vanishing escape clone always regrows", draws=False),
    Parameter("k_fratricide", 0.1, "1/day", 0.0,
              "fratricide: maximal rate at which CAR-T effectors kill CAR-T cells (effector and "
              "memory) that carry CD7, saturating like target killing: loss per CAR-T cell = "
              "k_fratricide E/(E + k_effector); zero for a CD7-edited product",
              "assumption: the CD7 CAR kills CD7+ T cells including CAR-T cells ([D10] "
              "Gomes-Silva et al. Blood 2017: CD7 CAR T cells without CD7 disruption suffer "
              "fratricide and expand poorly; CD7 knockout prevents it; [D11], Png et al. Blood "
              "Adv 2017: a protein expression blocker (PEBL) keeping CD7 off the surface "
              "prevents it). No in-vivo rate is published: 0.1/d is k_kill (3/d) x ~3%, the "
              "share of a non-edited product's CAR-T cells taken to keep CD7 on the surface "
              "(most have it masked by their own CAR, [D3] natural selection). It lowers the "
              "median CAR-T peak by ~16% and leaves relapse and persistence nearly unchanged "
              "(benchmarks/RESULTS.md); every virtual-patient calibration target still holds "
              "with it (docs/virtual-patients.md; the exposure reference of the CD7-positive "
              "relapse hazard was re-set to the new median peak)",
              zero_means="a CD7-edited product (CD7 knockout or PEBL): its CAR-T cells carry "
                         "no surface CD7", draws=False),
)

BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}

EXTINCTION_FLOOR = BY_NAME["extinction_floor"].value
"""The default extinction floor (cells/uL), the typical value of the ``extinction_floor``
parameter (see its source: a calibrated parameter standing for stochastic extinction, not a
numerical guard). It also keeps float32 runs sound: a population that decays for a year
would otherwise fall under float32's smallest normal number (~1.2e-38) and become noise that
can later regrow (0.2-0.6% of patients in reference runs)."""

EFFECTOR_CEILING = BY_NAME["effector_max"].value
"""The default effector ceiling (cells/uL), the typical value of ``effector_max``."""

FRATRICIDE_FREE_EDITING: tuple[str, ...] = ("knockout", "pebl")
"""Product CD7 editing (protocol ``intervention.cd7_editing``) that removes surface CD7 from
the CAR-T cells, so ``k_fratricide`` is 0: CRISPR knockout ([D10]) or a protein expression
blocker (PEBL, [D11]). Any other value (``natural_selection``, ``none``, ``unknown``) keeps the
typical fratricide rate."""


def fratricide_rate(cd7_editing: str) -> float:
    """Typical ``k_fratricide`` (1/day) of a product with this CD7 editing: 0 for a CD7-edited
    product (:data:`FRATRICIDE_FREE_EDITING`), the table's typical value otherwise."""
    return 0.0 if cd7_editing in FRATRICIDE_FREE_EDITING else BY_NAME["k_fratricide"].value


def check_value(name: str, value: float) -> None:
    """Refuse a value the parameter ``name`` cannot take: NaN, negative, 0 unless the row
    says what 0 means (``zero_means``), infinity unless it says what that means."""
    if name not in BY_NAME:
        raise invalid("parameter", name, f"one of {sorted(BY_NAME)}")
    row = BY_NAME[name]
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise invalid(name, value, f"a number in {row.unit}") from None
    if math.isnan(v) or v < 0:
        raise invalid(name, value, f"a non-negative number in {row.unit}")
    if v == 0 and row.zero_means is None:
        raise invalid(name, value, f"a positive number in {row.unit}")
    if math.isinf(v) and row.inf_means is None:
        raise invalid(name, value, f"a finite number in {row.unit}")


def typical_values() -> dict[str, float]:
    """The typical (population) value of every parameter."""
    return {p.name: p.value for p in PARAMETERS}


def draw_parameters(n: int, rng: np.random.Generator, *,
                    overrides: dict[str, float] | None = None,
                    iiv_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Individual parameters for ``n`` patients: typical * exp(iiv * z), z ~ N(0, 1).

    ``overrides`` replaces typical values by name (checked by :func:`check_value`: 0 or
    infinity only where the row says what it means, e.g. ``extinction_floor=0`` for no floor,
    ``effector_max=inf`` for no ceiling, ``k_fratricide=0`` for a CD7-edited product);
    ``iiv_scale`` multiplies every IIV (0 gives typical patients).
    """
    if n < 0:
        raise invalid("n", n, "a non-negative number of patients")
    overrides = overrides or {}
    unknown = set(overrides) - set(BY_NAME)
    if unknown:
        raise invalid("overrides", sorted(unknown), f"names from {sorted(BY_NAME)}")
    for name, value in overrides.items():
        check_value(name, value)
    out: dict[str, np.ndarray] = {}
    for p in PARAMETERS:
        z = rng.standard_normal(n) if p.draws else np.zeros(n)
        typical = float(overrides.get(p.name, p.value))
        out[p.name] = typical * np.exp(p.iiv * iiv_scale * z)
    out["fb"] = np.minimum(out["fb"], 0.5)
    out["lymphodepletion"] = np.minimum(out["lymphodepletion"], 1.0)
    return out
