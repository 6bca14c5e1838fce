"""Population fit: are the standard errors right? Bias, SE/empirical SD and 90% CI coverage.

``--datasets`` data sets of ``--n`` patients are simulated from known parameters by a simulator
written here from the published model equations (Stein et al. 2019 [K1], CLINICAL_REFERENCE.md
5.1), independent of ``celltrial.kinetics.multiphasic``:

    C(t) = Cmax * foldx^-(1 - t/Tmax)                                   t <  Tmax
    C(t) = Cmax * ((1 - FB) exp(-alpha (t - Tmax)) + FB exp(-beta (t - Tmax)))   t >= Tmax

with log-normal between-subject variability (Stein 2019 Table 1 typical values and omega^2), a
true effect of ``DOSE_EFFECT`` on log Cmax per log dose (doses 5e5, 1e6, 2e6 cells/kg, equal
thirds), log-normal residual sigma 0.56, LLOQ 50 copies/ug (M3), samples at days
0,1,4,7,10,14,21,28,60,90,180,365. Each is fitted by ``fit_population(covariates=("dose_level",))``.

Per parameter (estimation scale: log for typical values, omega^2 and sigma; linear for the
covariate effect): bias (geometric % for log-scale, absolute otherwise), the empirical SD of the
estimates over the data sets, the root-mean-square reported SE, their ratio, and the coverage of
the 90% Wald intervals -- for the SEs the fit reports (Louis information + SAEM Monte-Carlo
covariance) and for the Louis information alone (``cov - mc_covariance``, the method before).
A well-calibrated SE has SE/SD near 1 and coverage near 90% (with 20 data sets the binomial
90% range of the coverage is 75-100%, and SE/SD has a relative SE of about 16%).

Run:  .venv/bin/python benchmarks/bench_popfit_coverage.py --datasets 20 --n 40 --workers 2
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

DOSE_EFFECT = 0.5
TYPICAL = {"foldx": 3900.0, "Tmax": 9.3, "Cmax": 24000.0, "alpha": 0.16, "FB": 0.0079,
           "beta": 0.0032}
OMEGA2 = {"foldx": 2.4, "Tmax": 0.38, "Cmax": 0.65, "alpha": 0.91, "FB": 0.80, "beta": 0.86}
SIGMA = 0.56
LLOQ = 50.0
DAYS = np.array([0, 1, 4, 7, 10, 14, 21, 28, 60, 90, 180, 365], dtype=float)
DOSES = np.array([5e5, 1e6, 2e6])
NAMES = list(TYPICAL)


def curve(p: dict[str, np.ndarray], t: np.ndarray) -> np.ndarray:
    """The Stein 2019 multiphasic curve on the natural scale (``p`` arrays ``(n, 1)``)."""
    rise = p["Cmax"] * p["foldx"] ** (-(1.0 - np.minimum(t, p["Tmax"]) / p["Tmax"]))
    dt = np.clip(t - p["Tmax"], 0.0, None)
    fall = p["Cmax"] * ((1 - p["FB"]) * np.exp(-p["alpha"] * dt)
                        + p["FB"] * np.exp(-p["beta"] * dt))
    return np.where(t < p["Tmax"], rise, fall)


def simulate(n: int, seed: int) -> pd.DataFrame:
    """One ADPC-shaped data set (USUBJID, PARAMCD, TIME, AVAL, BLQFL, LLOQ, dose_cells_per_kg)."""
    rng = np.random.default_rng(seed)
    dose = DOSES[np.arange(n) % 3]
    p = {k: TYPICAL[k] * np.exp(np.sqrt(OMEGA2[k]) * rng.standard_normal(n))[:, None]
         for k in NAMES}
    p["Cmax"] = p["Cmax"] * (dose / 1e6)[:, None] ** DOSE_EFFECT
    y = curve(p, DAYS[None, :]) * np.exp(SIGMA * rng.standard_normal((n, len(DAYS))))
    blq = y < LLOQ
    return pd.DataFrame({
        "USUBJID": np.repeat([f"S{k:03d}" for k in range(n)], len(DAYS)), "PARAMCD": "CARTQPCR",
        "TIME": np.tile(DAYS, n), "AVAL": np.where(blq, np.nan, y).ravel(),
        "BLQFL": np.where(blq.ravel(), "Y", "N"), "LLOQ": LLOQ,
        "dose_cells_per_kg": np.repeat(dose, len(DAYS))})


def truth() -> dict[str, tuple[float, str]]:
    """True value on the estimation scale, keyed like ``PopulationFit.parameter_names``."""
    out = {k: (np.log(v), "log") for k, v in TYPICAL.items()}
    out["Cmax ~ log(dose_level/1e+06)"] = (DOSE_EFFECT, "linear")
    out |= {f"omega2_{k}": (np.log(v), "log") for k, v in OMEGA2.items()}
    return out | {"sigma": (np.log(SIGMA), "log")}


def fit_one(args: tuple[int, int]) -> list[dict[str, float]]:
    from celltrial.kinetics.population import fit_population

    n, seed = args
    fit = fit_population(simulate(n, 5000 + seed), covariates=("dose_level",), seed=seed)
    table = fit.parameter_table().set_index("parameter")
    mc = getattr(fit, "mc_covariance", None)        # absent in the code before (Louis only)
    names = list(getattr(fit, "parameter_names", ()))
    rows = []
    for name, (true, scale) in truth().items():
        r = table.loc[name]
        est = float(np.log(r["estimate"]) if scale == "log" else r["estimate"])
        se = float(r["se"])
        se_louis = (float(np.sqrt(max(se ** 2 - mc[names.index(name), names.index(name)], 0.0)))
                    if mc is not None else se)
        rows.append({"parameter": name, "seed": seed, "scale": scale, "truth": true,
                     "estimate": est, "se": se, "se_louis": se_louis,
                     "ofv": getattr(fit, "ofv", np.nan), "time_s": fit.elapsed_s,
                     "blq": fit.n_blq / fit.n_samples})
    return rows


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    from scipy.stats import norm

    z = norm.ppf(0.95)

    def one(g: pd.DataFrame) -> pd.Series:
        err = g["estimate"] - g["truth"]
        sd = g["estimate"].std(ddof=1)
        rms = lambda s: float(np.sqrt(np.mean(s ** 2)))  # noqa: E731
        cover = lambda s: int((err.abs() <= z * s).sum())  # noqa: E731
        bias = (100 * (np.exp(err.mean()) - 1)) if g["scale"].iloc[0] == "log" else err.mean()
        return pd.Series({"bias": bias, "emp_sd": sd, "se": rms(g["se"]),
                          "se_sd": rms(g["se"]) / sd, "cover": cover(g["se"]),
                          "se_louis_sd": rms(g["se_louis"]) / sd,
                          "cover_louis": cover(g["se_louis"]),
                          "n": len(g)})

    return df.groupby("parameter", sort=False).apply(one, include_groups=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--n", type=int, default=40, help="patients per data set")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--csv", default="", help="also write the per-fit rows here")
    args = parser.parse_args()
    started = time.perf_counter()
    jobs = [(args.n, s) for s in range(args.datasets)]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = [r for part in pool.map(fit_one, jobs) for r in part]
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    out = summarise(df)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.datasets} data sets x {args.n} patients; {df['blq'].mean():.0%} BLQ; "
          f"mean fit {df.groupby('seed')['time_s'].first().mean():.1f} s; "
          f"wall {time.perf_counter() - started:.0f} s")
    print("| parameter | bias | empirical SD | RMS SE | SE/SD | 90% coverage | SE/SD, Louis only "
          "| 90% coverage, Louis only |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in out.iterrows():
        unit = "%" if truth()[name][1] == "log" else " (abs)"
        print(f"| {name} | {r['bias']:+.1f}{unit} | {r['emp_sd']:.3f} | {r['se']:.3f} | "
              f"{r['se_sd']:.2f} | {int(r['cover'])}/{int(r['n'])} | {r['se_louis_sd']:.2f} | "
              f"{int(r['cover_louis'])}/{int(r['n'])} |")


if __name__ == "__main__":
    main()
