"""celltrial.kinetics: CAR-T cellular kinetics.

- multiphasic (Stein 2019) model, individual and population fits:
  :mod:`~celltrial.kinetics.multiphasic`, :mod:`~celltrial.kinetics.individual`,
  :mod:`~celltrial.kinetics.population` (``fit_population``);
- mechanistic CD7 CAR-T model: :mod:`~celltrial.kinetics.mechanistic` (parameters as data in
  :mod:`~celltrial.kinetics.parameters`), vectorised RK4 engine (numpy / JAX):
  :mod:`~celltrial.kinetics.engine`;
- virtual patients and their SDTM records: :mod:`~celltrial.kinetics.virtual` (the trial
  they are enrolled in is conducted by :mod:`celltrial.conduct`).

Heavy dependencies (JAX, scipy.integrate) load inside the functions that use them.
"""

from celltrial.kinetics.engine import Infusion, Trajectory, simulate, solve_ivp_reference
from celltrial.kinetics.mechanistic import (
    CRS_LINK, ICANS_LINK, STATES, CD7Model, effectors_per_ul, initial_state,
)
from celltrial.kinetics.multiphasic import (
    STEIN_2019, MultiphasicParameters, PopulationModel, predict, simulate_adpc,
)
from celltrial.kinetics.parameters import (
    EXTINCTION_FLOOR, PARAMETERS, Parameter, draw_parameters, typical_values,
)
from celltrial.kinetics.population import PopulationFit, fit_population

__all__ = [
    "CRS_LINK", "EXTINCTION_FLOOR", "ICANS_LINK", "PARAMETERS", "STATES", "STEIN_2019",
    "CD7Model", "Infusion", "MultiphasicParameters", "Parameter", "PopulationFit",
    "PopulationModel", "Trajectory", "draw_parameters", "effectors_per_ul", "fit_population",
    "initial_state", "predict",
    "simulate", "simulate_adpc", "solve_ivp_reference", "typical_values",
]
