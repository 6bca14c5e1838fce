"""Diagnostic plots of a population fit: individual fits, goodness of fit, visual predictive check.

matplotlib is imported lazily with the Agg backend (no display needed). Conventions (Nguyen et
al., "Model evaluation of continuous data pharmacometric models", CPT:PSP 2017;6:87-109):

- individual fits: observed levels (BLQ samples drawn at the LLOQ as open triangles), IPRED (the
  patient's estimates) and PRED (typical values with the patient's covariates) over time;
- goodness of fit: DV vs PRED and DV vs IPRED (log axes, identity line), IWRES
  ``(log DV - log IPRED)/sigma`` vs time, and NPDE-like residuals vs time: the observed value's
  percentile among simulations of the fitted model at the same sample (not decorrelated, BLQ
  samples left out) mapped through the normal quantile; simulated levels below the LLOQ count
  as the LLOQ, so at times with many BLQ samples these residuals shift upwards (they compare
  quantified observations only);
- visual predictive check: ``n_sim`` replicates of the observed design simulated from the fitted
  model (new random effects, residual error, LLOQ censoring); per sample time the 10th, 50th and
  90th percentiles of observed and simulated levels (a BLQ level counts as the LLOQ, so a
  percentile at the LLOQ means "at or below"), with the 90% band of the simulated percentiles,
  and the fraction BLQ observed vs simulated (band).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from celltrial.kinetics.multiphasic import PARAMETERS, log_predict

PERCENTILES = (10, 50, 90)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ipred_pred(fit: Any) -> tuple[np.ndarray, np.ndarray]:
    obs = fit.observations
    mu = fit.log_mu_individual
    ipred = log_predict((mu + fit.eta)[:, None, :], obs.t)
    pred = log_predict(mu[:, None, :], obs.t)
    return ipred, pred


def simulate_design(fit: Any, n_sim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Simulated ``log`` levels and BLQ flags on the observed design: ``(n_sim, n, m)``.

    Random effects from the fitted Omega matrix (``fit.omega_matrix``: block or full
    covariances included; the diagonal of the variances for a diagonal fit)."""
    obs = fit.observations
    rng = np.random.default_rng(seed)
    matrix = getattr(fit, "omega_matrix", None)
    omega = (np.asarray(matrix, dtype=float) if matrix is not None
             else np.diag([fit.omega[p].value for p in PARAMETERS]))
    chol = np.linalg.cholesky(omega)
    eta = rng.standard_normal((n_sim, obs.n_subjects, 6)) @ chol.T
    phi = fit.log_mu_individual[None] + eta
    logc = log_predict(phi[:, :, None, :], obs.t[None])
    y = logc + fit.sigma.value * rng.standard_normal(logc.shape)
    lloq = np.full(obs.t.shape, -np.inf) if obs.log_lloq is None else obs.log_lloq
    lloq = np.where(np.isfinite(lloq), lloq, -np.inf)   # no LLOQ given: never censored
    blq = y < lloq[None]
    return np.where(blq, lloq[None], y), blq


def individual_fits(fit: Any, path: Path, max_panels: int = 36) -> Path:
    """Grid of individual fits (first ``max_panels`` patients)."""
    plt = _plt()
    obs = fit.observations
    n = min(obs.n_subjects, max_panels)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.2 * rows), sharex=True,
                             squeeze=False)
    grid = np.linspace(0.0, max(1.0, float(obs.t[obs.mask].max())), 400)
    for k in range(rows * cols):
        ax = axes.flat[k]
        if k >= n:
            ax.axis("off")
            continue
        m = obs.mask[k]
        q, b = m & ~obs.blq[k], m & obs.blq[k]
        ax.semilogy(obs.t[k][q], np.exp(obs.z[k][q]), "o", ms=3, color="black")
        ax.semilogy(obs.t[k][b], np.exp(obs.z[k][b]), "v", ms=4, mfc="none", color="grey")
        ax.semilogy(grid, np.exp(log_predict(fit.log_mu_individual[k] + fit.eta[k], grid)),
                    color="tab:blue", lw=1, label="IPRED")
        ax.semilogy(grid, np.exp(log_predict(fit.log_mu_individual[k], grid)),
                    color="tab:orange", lw=1, ls="--", label="PRED")
        ax.set_title(obs.ids[k], fontsize=7)
        ax.tick_params(labelsize=6)
    axes.flat[0].legend(fontsize=6)
    fig.supxlabel("day from first infusion")
    fig.supylabel(fit.unit)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def goodness_of_fit(fit: Any, path: Path, n_sim: int = 200, seed: int = 1) -> Path:
    """DV vs PRED/IPRED, IWRES vs time, NPDE-like residuals vs time (2 x 2 panels)."""
    plt = _plt()
    obs = fit.observations
    ipred, pred = _ipred_pred(fit)
    q = obs.mask & ~obs.blq
    dv = obs.z
    sim, _ = simulate_design(fit, n_sim, seed)
    pde = (np.sum(sim < dv[None], axis=0) + 0.5) / (n_sim + 1)
    from scipy.stats import norm

    npde = norm.ppf(pde)
    fig, axes = plt.subplots(2, 2, figsize=(9, 8))
    for ax, x, label in ((axes[0, 0], pred, "PRED"), (axes[0, 1], ipred, "IPRED")):
        ax.loglog(np.exp(x[q]), np.exp(dv[q]), "o", ms=3, alpha=0.6)
        lim = np.exp([min(x[q].min(), dv[q].min()), max(x[q].max(), dv[q].max())])
        ax.loglog(lim, lim, "k-", lw=1)
        ax.set_xlabel(f"{label} ({fit.unit})")
        ax.set_ylabel(f"DV ({fit.unit})")
    for ax, r, label in ((axes[1, 0], (dv - ipred) / fit.sigma.value, "IWRES"),
                         (axes[1, 1], npde, "NPDE-like")):
        ax.semilogx(np.maximum(obs.t[q], 0.1), r[q], "o", ms=3, alpha=0.6)
        for y in (-1.96, 0.0, 1.96):
            ax.axhline(y, color="k", lw=0.8, ls="-" if y == 0 else ":")
        ax.set_xlabel("day from first infusion (log axis; day 0 at 0.1)")
        ax.set_ylabel(label)
    fig.suptitle(f"Goodness of fit ({fit.method}, {fit.n_subjects} patients, "
                 f"{fit.n_blq} of {fit.n_samples} samples BLQ, not shown)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def vpc_table(fit: Any, n_sim: int = 200, seed: int = 2) -> pd.DataFrame:
    """Observed and simulated percentiles and BLQ fractions per sample time (rounded to 0.1 d)."""
    obs = fit.observations
    sim, sim_blq = simulate_design(fit, n_sim, seed)
    lloq_or_dv = obs.z
    times = np.round(obs.t, 1)
    rows = []
    for time in np.unique(times[obs.mask]):
        sel = obs.mask & (times == time)
        row: dict[str, Any] = {"time": float(time), "n": int(sel.sum())}
        for p in PERCENTILES:
            row[f"obs_p{p}"] = float(np.exp(np.percentile(lloq_or_dv[sel], p)))
            per_rep = np.exp(np.percentile(sim[:, sel], p, axis=1))
            row[f"sim_p{p}_lo"], row[f"sim_p{p}_med"], row[f"sim_p{p}_hi"] = (
                float(v) for v in np.percentile(per_rep, [5, 50, 95]))
        row["obs_blq_frac"] = float(obs.blq[sel].mean())
        frac = sim_blq[:, sel].mean(axis=1)
        row["sim_blq_lo"], row["sim_blq_hi"] = (float(v) for v in np.percentile(frac, [5, 95]))
        rows.append(row)
    return pd.DataFrame(rows)


def visual_predictive_check(fit: Any, path: Path, n_sim: int = 200, seed: int = 2) -> Path:
    """VPC plot: percentiles with 90% bands of the simulated percentiles, and BLQ fractions."""
    plt = _plt()
    table = vpc_table(fit, n_sim, seed)
    x = np.maximum(table["time"].to_numpy(), 0.1)
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(8, 8), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 1]})
    colors = {10: "tab:blue", 50: "tab:red", 90: "tab:blue"}
    for p in PERCENTILES:
        ax.fill_between(x, table[f"sim_p{p}_lo"], table[f"sim_p{p}_hi"], color=colors[p],
                        alpha=0.2, lw=0)
        ax.plot(x, table[f"sim_p{p}_med"], color=colors[p], lw=1, ls="--")
        ax.plot(x, table[f"obs_p{p}"], color=colors[p], lw=1.5, marker="o", ms=3,
                label=f"observed p{p}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel(f"{fit.unit} (BLQ counted at the LLOQ)")
    ax.legend(fontsize=7)
    bx.fill_between(x, table["sim_blq_lo"], table["sim_blq_hi"], color="grey", alpha=0.3, lw=0,
                    label="simulated 90% band")
    bx.plot(x, table["obs_blq_frac"], "ko-", ms=3, label="observed")
    bx.set_ylabel("fraction BLQ")
    bx.set_xlabel("day from first infusion (log axis; day 0 at 0.1)")
    bx.legend(fontsize=7)
    fig.suptitle(f"Visual predictive check ({n_sim} simulated replicates of the observed design)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_all(fit: Any, adpc: pd.DataFrame | None, out_dir: str | Path) -> list[Path]:
    """Write every diagnostic (PNG) and the VPC and parameter tables (CSV) to ``out_dir``.

    ``adpc`` is accepted for the signature's sake and for future per-record listings; the fit
    carries the observations it was fitted to, which is what the plots use.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        individual_fits(fit, out / "ck_individual_fits.png"),
        goodness_of_fit(fit, out / "ck_goodness_of_fit.png"),
        visual_predictive_check(fit, out / "ck_vpc.png"),
    ]
    vpc = out / "ck_vpc.csv"
    vpc_table(fit).to_csv(vpc, index=False)
    params = out / "ck_parameters.csv"
    fit.parameter_table().to_csv(params, index=False)
    individual = out / "ck_individual_estimates.csv"
    fit.individual.to_csv(individual, index=False)
    return [*paths, vpc, params, individual]
