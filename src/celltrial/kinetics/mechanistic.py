"""Mechanistic CD7 CAR-T model: CAR-T effectors and memory expanding on CD7+ antigen.

States (cells/uL blood or marrow proxy; IL-6 in pg/mL), in this order (:data:`STATES`):

====  =====================================================================================
E     CAR-T effector cells (blood)
M     CAR-T memory cells (blood)
B     CD7+ leukemic blasts (marrow proxy)
BN    CD7-negative leukemic blasts, the escape clone (not killed by CAR-T)
N     normal CD7+ T and NK cells (blood)
IL6   serum IL-6
====  =====================================================================================

Equations (parameters in :mod:`celltrial.kinetics.parameters`, with sources)::

    A     = B + N                                  CD7+ antigen seen by the CAR
    f     = A / (A + k_antigen)                    antigen drive, 0..1
    s     = E / (E + k_effector)                   effector saturation
    kill  = k_kill * s                             per-target kill rate (saturating)
          | k_mass_action * E                      (killing="mass_action")
    fr    = k_fratricide * s                       per-CAR-T-cell fratricide rate
    g     = blast_growth * (1 - (B + BN) / marrow_max)
    dE/dt = rho f E (1 - E/effector_max) - (alpha + k_em)(1 - f) E + k_react f M - fr E
    dM/dt = k_em (1 - f) E - beta M - k_react f M - fr M   k_em = fb (alpha - beta)   [Stein 2019]
    dB/dt = (g - kill) B
    dBN/dt = g BN
    dN/dt = d_N (N_ss - N) - kill N                 source d_N N_ss, turnover d_N
    dIL6/dt = k_I (IL6_0 - IL6) + p_kill kill A + p_E f E

With antigen abundant (f ~ 1) effectors grow at ``rho`` (Stein's expansion phase) up to the
effector ceiling ``effector_max``; once the CD7+ targets are cleared (f ~ 0) they contract at
``alpha`` while converting to memory at ``k_em``, and memory declines at ``beta`` — Stein's
bi-exponential contraction emerges instead of being switched on at Tmax. Because conversion
moves cells from E to M (Stein's model does not deplete E), the persisting fraction — memory
over the peak once the effectors are gone, without antigen or fratricide — is
``fb / (1 + fb)`` (:func:`persisting_fraction`), not ``fb``: the effectors leave at
``alpha + k_em``, so M tends to ``k_em / (alpha + k_em - beta) E0 = fb/(1+fb) E0``. Normal
CD7+ cells fall (aplasia) while effectors are present and recover from their source when
effectors wane; regrowing CD7+ cells or blasts re-activate memory. Blasts regrow
logistically; the CD7-negative clone (``escape_fraction``) is not killed and gives
CD7-negative relapse.

Fratricide: CAR-T cells that carry CD7 are CD7+ targets too ([D10] Gomes-Silva et al., Blood
2017); CAR-T effectors kill them at ``k_fratricide`` x the effector saturation ``s``, the same
saturating form as target killing. A CD7-edited product (CD7 knockout [D10], or a protein
expression blocker, PEBL [D11], Png et al. Blood Adv 2017) has ``k_fratricide = 0``;
:mod:`celltrial.kinetics.virtual` sets it from the protocol's ``intervention.cd7_editing``.
Killed CAR-T cells do not count as antigen drive and add no IL-6 (a simplification).

Extinction floor: cell populations below the ``extinction_floor`` parameter (default
:data:`~celltrial.kinetics.parameters.EXTINCTION_FLOOR`, 1e-6 cells/uL) are set to zero at
day 0 (:func:`initial_state`) and after every step (the engine's ``floor``; pass
``floor=extinction_floor(params)``). It stands for stochastic extinction of a clone of a
few cells and acts as a calibrated parameter: it decides which patients carry a CD7-negative
escape clone (see the parameter's source and docs/kinetics-mechanistic.md).

CRS and ICANS: the probability of each ASTCT grade is an ordinal-logistic function of the
peak IL-6 (:data:`CRS_LINK`, :data:`ICANS_LINK`), calibrated to the published CD7 CAR-T rates
(CLINICAL_REFERENCE section 6: CRS grade 1-2 85-92%, grade >= 3 ~10%; neurotoxicity ~8-15%).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from celltrial.errors import invalid
from celltrial.kinetics.parameters import EXTINCTION_FLOOR

STATES: tuple[str, ...] = ("E", "M", "B", "BN", "N", "IL6")
"""State names, in the order of the last axis of state arrays."""

CELL_STATES: tuple[bool, ...] = (True, True, True, True, True, False)
"""Which states are cell populations (subject to the extinction floor)."""

E, M, B, BN, N, IL6 = range(6)

BLOOD_VOLUME_UL_PER_KG = 70_000.0
"""Blood volume 70 mL/kg (adult textbook value) = 7e4 uL/kg."""

CELLS_PER_UG_GDNA = 151_500.0
"""Diploid human genome 6.6 pg: 1 ug genomic DNA holds about 1.515e5 cells."""

FLOPS_PER_RHS = 43
"""Floating-point operations of one right-hand-side evaluation (saturating killing), counted
by hand from :meth:`CD7Model.rhs` (see docs/kinetics-mechanistic.md, 'Flop count')."""

FLOPS_PER_STEP = 4 * FLOPS_PER_RHS + 3 * 12 + 42 + 5
"""255 = RK4's 4 RHS (4 x 43), 3 stage states y + c k (6 states x 2 flops each), the
combination y + h/6 (k1 + 2 k2 + 2 k3 + k4) (6 states x 7 flops) and the extinction floor
(5 compare-selects); divisions count as one flop."""


@dataclass(frozen=True)
class Link:
    """Ordinal logistic link: P(grade >= g) = 1 / (1 + exp(-(log10(x) - c_g) / scale))."""

    name: str
    thresholds_log10: tuple[float, ...]
    scale: float
    source: str

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """P(grade >= g) for g = 1..len(thresholds), shape (n, len(thresholds))."""
        lx = np.log10(np.maximum(np.asarray(x, dtype=float), 1e-12))[:, None]
        c = np.asarray(self.thresholds_log10)[None, :]
        return 1.0 / (1.0 + np.exp(-(lx - c) / self.scale))

    def draw(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Grades 0..G from uniforms ``u`` (one per patient): grade = #{g: u < P(>= g)}."""
        return (np.asarray(u)[:, None] < self.probabilities(x)).sum(axis=1)


CRS_LINK = Link(
    "CRS (ASTCT 2019 grade) from peak IL-6 (pg/mL)",
    (math.log10(12.0), math.log10(300.0), math.log10(1500.0), math.log10(8000.0)), 0.25,
    "assumption: thresholds calibrated on virtual cohorts to CLINICAL_REFERENCE 6 (CRS any "
    "85-92%, grade >= 3 about 10% [D1, D4, D8]); IL-6 is the cytokine most linked to CRS")
ICANS_LINK = Link(
    "ICANS (ASTCT 2019 grade) from peak IL-6 (pg/mL)",
    (math.log10(1500.0), math.log10(6000.0), math.log10(30000.0), math.log10(1e5)), 0.3,
    "assumption: calibrated to neurotoxicity in 8-15% of patients, mostly grade 1-2 [D1, D4, D8]")


@dataclass(frozen=True)
class CD7Model:
    """The mechanistic CD7 CAR-T model (see module docstring); options are static.

    ``killing``: ``"saturating"`` (k_kill E/(E+k_effector)) or ``"mass_action"``
    (k_mass_action E). ``escape``: whether the CD7-negative clone exists.
    """

    killing: Literal["saturating", "mass_action"] = "saturating"
    escape: bool = True

    def __post_init__(self) -> None:
        if self.killing not in ("saturating", "mass_action"):
            raise invalid("killing", self.killing, "'saturating' or 'mass_action'")

    def rates(self, p: Mapping[str, Any]) -> dict[str, Any]:
        """Per-patient constants used by :meth:`rhs` (computed once, not per step).

        ``effector_max`` may be infinite (no ceiling: ``1/effector_max`` = 0)."""
        return {
            "rho": p["rho"], "inv_emax": 1.0 / p["effector_max"],
            "c_e": p["alpha"] + p["fb"] * (p["alpha"] - p["beta"]),
            "k_em": p["fb"] * (p["alpha"] - p["beta"]), "beta": p["beta"],
            "k_react": p["k_react"], "k_antigen": p["k_antigen"], "k_kill": p["k_kill"],
            "k_effector": p["k_effector"], "k_mass": p["k_mass_action"],
            "g": p["blast_growth"], "inv_bmax": 1.0 / p["marrow_max"],
            "s_n": p["normal_cd7_turnover"] * p["normal_cd7_steady"],
            "d_n": p["normal_cd7_turnover"], "k_i": p["il6_clearance"],
            "s_i": p["il6_clearance"] * p["il6_baseline"], "p_kill": p["il6_per_kill"],
            "p_e": p["il6_per_effector"], "k_frat": p["k_fratricide"],
        }

    def rhs(self, y: tuple[Any, ...], r: Mapping[str, Any]) -> tuple[Any, ...]:
        """Time derivatives of the six states; ``y`` is a tuple of per-patient arrays.

        Pure arithmetic, so the same code runs on numpy and on jax.numpy arrays.
        """
        e, m, b, bn, n, il6 = y
        a = b + n
        f = a / (a + r["k_antigen"])
        sat = e / (e + r["k_effector"])
        kill = r["k_kill"] * sat if self.killing == "saturating" else r["k_mass"] * e
        fr = r["k_frat"] * sat             # fratricide of CD7-carrying CAR-T cells
        g = r["g"] * (1.0 - (b + bn) * r["inv_bmax"])
        fe = f * e
        qe = e - fe                        # (1 - f) E
        fm = r["k_react"] * f * m
        de = r["rho"] * fe * (1.0 - e * r["inv_emax"]) - r["c_e"] * qe + fm - fr * e
        dm = r["k_em"] * qe - r["beta"] * m - fm - fr * m
        db = (g - kill) * b
        dbn = g * bn
        dn = r["s_n"] - (r["d_n"] + kill) * n
        dil6 = r["s_i"] - r["k_i"] * il6 + r["p_kill"] * kill * a + r["p_e"] * fe
        return de, dm, db, dbn, dn, dil6


def persisting_fraction(fb: float | np.ndarray) -> float | np.ndarray:
    """Memory CAR-T over the effector count at the start of contraction, once the effectors
    are gone (no antigen, no fratricide): ``fb / (1 + fb)``, exactly.

    Effectors leave at ``alpha + k_em`` with ``k_em = fb (alpha - beta)``; memory gains
    ``k_em E`` and declines at ``beta``, so ``M(t) = k_em / (alpha + k_em - beta) E0
    (exp(-beta t) - exp(-(alpha + k_em) t))`` with ``k_em / (alpha + k_em - beta) =
    fb / (1 + fb)``. (Stein's FB is the same share in a model
    where conversion does not deplete the effectors; the two differ by under 1% at
    fb = 0.0079.)"""
    return fb / (1.0 + fb)


def extinction_floor(p: Mapping[str, Any]) -> float:
    """The extinction floor (cells/uL) of a parameter set: its ``extinction_floor`` (one
    value for all patients; the engine applies a scalar floor), or the table's default when
    the set has none. Pass it to the engine: ``simulate(..., floor=extinction_floor(p))``."""
    if "extinction_floor" not in p:
        return EXTINCTION_FLOOR
    values = np.unique(np.asarray(p["extinction_floor"], dtype=float))
    if values.size != 1 or not (np.isfinite(values[0]) and values[0] >= 0):
        raise invalid("extinction_floor", values.tolist(),
                      "one finite value >= 0 (cells/uL) shared by every patient")
    return float(values[0])


def initial_state(p: Mapping[str, np.ndarray], *, marrow_blast_pct: np.ndarray,
                  escape: bool = True) -> np.ndarray:
    """State at day 0 before the first infusion, shape (n_patients, 6).

    Blasts from the marrow blast % at screening (B/(B+H) = pct/100, capped at 89%); the
    escape clone is ``escape_fraction`` of them; normal CD7+ cells after lymphodepletion;
    IL-6 at baseline; no CAR-T yet (doses are added by the engine). Cell populations below
    the extinction floor (:func:`extinction_floor`) start at zero: an escape clone smaller
    than the floor does not exist.
    """
    pct = np.clip(np.asarray(marrow_blast_pct, dtype=float), 0.0, 89.0) / 100.0
    total = p["marrow_normal"] * pct / (1.0 - pct)
    frac = np.minimum(p["escape_fraction"], 0.5) if escape else np.zeros_like(total)
    y0 = np.zeros((total.shape[0], len(STATES)))
    y0[:, B] = total * (1.0 - frac)
    y0[:, BN] = total * frac
    y0[:, N] = p["normal_cd7_steady"] * p["lymphodepletion"]
    y0[:, IL6] = p["il6_baseline"]
    floor = extinction_floor(p)
    y0[:, :5] = np.where(y0[:, :5] < floor, 0.0, y0[:, :5])
    return y0


def effectors_per_ul(cells_per_kg: np.ndarray, blood_fraction: np.ndarray) -> np.ndarray:
    """CAR-T cells/uL of blood added by an infusion of ``cells_per_kg`` CAR+ cells/kg.

    cells/kg / (70,000 uL blood per kg) x fraction staying in blood (``blood_fraction``).
    """
    return np.asarray(cells_per_kg, dtype=float) / BLOOD_VOLUME_UL_PER_KG * blood_fraction


def marrow_blast_fraction(y: np.ndarray, p: Mapping[str, np.ndarray]) -> np.ndarray:
    """Leukemic blasts as a fraction of marrow cells, (B + BN) / (B + BN + H)."""
    blasts = y[..., B] + y[..., BN]
    h = np.asarray(p["marrow_normal"])
    h = h.reshape(h.shape + (1,) * (blasts.ndim - h.ndim))
    return blasts / (blasts + h)
