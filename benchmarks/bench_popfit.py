"""Population fit of the multiphasic model: parameter recovery and fit time.

Recovery: ``--seeds`` data sets of ``--n`` patients simulated from Stein 2019 (typical values, IIV,
residual SD; LLOQ 50 copies/ug; days 0,1,4,7,10,14,21,28,60,90,180,365; a true dose effect on
Cmax of 0.5 per log dose), each fitted by ``fit_population``; reports per parameter the mean
relative bias of the estimate (log-scale estimates: exp(mean log ratio) - 1) and the coverage of
the 90% intervals. Timing: wall time of one fit for 20, 50 and 100 patients (first fit in the
process, so it includes every import and warm-up).

Run:  .venv/bin/python benchmarks/bench_popfit.py --seeds 20 --n 40
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from celltrial.kinetics.multiphasic import STEIN_2019, simulate_adpc
from celltrial.kinetics.population import fit_population, true_values_table

DOSE_EFFECT = 0.5


def recovery(n: int, seeds: int) -> pd.DataFrame:
    truth = dict(true_values_table(STEIN_2019))
    truth["Cmax ~ log(dose_level/1e+06)"] = DOSE_EFFECT
    rows = []
    for seed in range(seeds):
        adpc = simulate_adpc(n, seed=1000 + seed, cmax_per_log_dose=DOSE_EFFECT)
        fit = fit_population(adpc, covariates=("dose_level",), seed=seed)
        table = fit.parameter_table().set_index("parameter")
        for name, true in truth.items():
            r = table.loc[name]
            rows.append({"parameter": name, "seed": seed, "estimate": r["estimate"],
                         "truth": true, "scale": r["scale"],
                         "covered": bool(r["ci90_low"] <= true <= r["ci90_high"]),
                         "blq_pct": 100 * fit.n_blq / fit.n_samples, "time_s": fit.elapsed_s})
    df = pd.DataFrame(rows)

    def bias(g: pd.DataFrame) -> float:
        if g["scale"].iloc[0] == "log":
            return 100 * (np.exp(np.mean(np.log(g["estimate"] / g["truth"]))) - 1)
        return float(np.mean(g["estimate"] - g["truth"]))

    out = df.groupby("parameter", sort=False).apply(lambda g: pd.Series({
        "truth": g["truth"].iloc[0], "mean_estimate": g["estimate"].mean(),
        "bias": bias(g), "bias_unit": "% (geometric)" if g["scale"].iloc[0] == "log" else "abs",
        "coverage90_pct": 100 * g["covered"].mean()}), include_groups=False)
    print(f"BLQ {df['blq_pct'].mean():.0f}% of samples; mean fit time {df['time_s'].mean():.2f} s")
    return out


def timing() -> list[tuple[int, float]]:
    out = []
    for n in (20, 50, 100):
        adpc = simulate_adpc(n, seed=7, cmax_per_log_dose=DOSE_EFFECT)
        t = time.perf_counter()
        fit_population(adpc, seed=0)
        out.append((n, time.perf_counter() - t))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()
    print(f"cores available: {os.cpu_count()}")
    if not args.skip_timing:
        for n, s in timing():
            print(f"fit_population, {n} patients (3 covariates on Cmax): {s:.2f} s")
    print(recovery(args.n, args.seeds).to_string(float_format=lambda x: f"{x:.4g}"))


if __name__ == "__main__":
    main()
