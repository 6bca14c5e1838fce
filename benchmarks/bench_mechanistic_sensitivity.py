"""Sensitivity of the mechanistic CD7 CAR-T model to its extinction floor, effector ceiling and
fratricide rate (issue 17): one-year relapse, Cmax and persistence on one fixed virtual cohort.

Cohort (the same patients in every scenario): ``--n`` patients (default 2,000, seed
``--seed`` 11) drawn by :func:`celltrial.kinetics.parameters.draw_parameters` with the table's
between-subject variability; marrow blasts at infusion log-normal around 35% (SD 0.7 on the
log scale, clipped to 5-89%, as in the CRS calibration test); one infusion of 1 x 10^6 CAR+
cells/kg on day 0; numpy RK4, dt 0.05 d, float64, states read daily to day 365. The floor,
the ceiling and the fratricide rate are the model parameters ``extinction_floor``,
``effector_max`` and ``k_fratricide``; the floor is applied at day 0 (an escape clone below it
does not exist) and after every step. This is the bare model: none of the virtual study's
additions (expansion failure, diagnosis-dependent escape clones, CD7-positive relapse
hazard, HSCT) of :mod:`celltrial.kinetics.virtual`.

Figures per scenario:

- remission: marrow blast fraction (B + BN)/(B + BN + marrow_normal) < 5% on some day 1-28;
- relapse by 1 year: of the remitters, the share whose blast fraction is >= 5% again on some
  day after the first remission day, up to day 365; "CD7-neg" is the share of those relapses
  whose CD7-negative blasts (BN) outnumber the CD7-positive ones (B) on the relapse day;
- Cmax: the largest daily CAR-T count (E + M, cells/uL) over days 0-365 — median, 99th
  percentile, share above 10^6 cells/uL, and the largest;
- persistence at day 90 / 180: the share of patients with CAR-T (E + M) >= 1 cell/uL, the
  lower limit of quantification of the flow assay CARTABS (:data:`celltrial.kinetics.virtual.
  ASSAYS`), and the median count.

Usage: .venv/bin/python benchmarks/bench_mechanistic_sensitivity.py [--n 2000] [--seed 11]
       [--json OUT] [--markdown]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import subprocess
import sys
import time

import numpy as np

from celltrial.kinetics.engine import Infusion, simulate
from celltrial.kinetics.mechanistic import (
    CD7Model, effectors_per_ul, extinction_floor, initial_state, marrow_blast_fraction,
)
from celltrial.kinetics.parameters import BY_NAME, draw_parameters

DAYS = list(range(0, 366))
MORPHOLOGIC = 0.05
FLOW_LLOQ = 1.0
FLOOR = BY_NAME["extinction_floor"].value
CEILING = BY_NAME["effector_max"].value
FRATRICIDE = BY_NAME["k_fratricide"].value

FLOORS = [("default 1e-6", FLOOR), ("/10 (1e-7)", FLOOR / 10), ("/100 (1e-8)", FLOOR / 100),
          ("none", 0.0)]
CEILINGS = [("default 5,000", CEILING), ("x10 (50,000)", CEILING * 10), ("none", math.inf)]
FRATRICIDES = [(f"default {FRATRICIDE:g}/d", FRATRICIDE), ("0 (CD7-edited)", 0.0)]


def cohort(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Parameters (table defaults) and marrow blast % of the fixed cohort."""
    rng = np.random.default_rng(seed)
    p = draw_parameters(n, rng)
    pct = np.exp(rng.normal(math.log(35.0), 0.7, n)).clip(5.0, 89.0)
    return p, pct


def scenario(p: dict[str, np.ndarray], pct: np.ndarray, floor: float, ceiling: float,
             fratricide: float) -> dict[str, float]:
    n = pct.size
    q = {**p, "extinction_floor": np.full(n, floor), "effector_max": np.full(n, ceiling),
         "k_fratricide": np.full(n, fratricide)}
    y0 = initial_state(q, marrow_blast_pct=pct)
    inf = [Infusion(0, effectors_per_ul(np.full(n, 1e6), q["blood_fraction"]))]
    t = time.perf_counter()
    tr = simulate(CD7Model(), q, y0, DAYS, infusions=inf, floor=extinction_floor(q))
    sec = time.perf_counter() - t
    frac = marrow_blast_fraction(tr.states, q)
    below = frac[:, 1:] < MORPHOLOGIC
    remission = below[:, :28].any(axis=1)
    first = np.argmax(below, axis=1) + 1
    after = np.arange(len(DAYS))[None, :] > first[:, None]
    relapsed_on = (frac >= MORPHOLOGIC) & after
    relapse = relapsed_on.any(axis=1) & remission
    day = np.argmax(relapsed_on, axis=1)
    rows = np.flatnonzero(relapse)
    cd7neg = tr.states[rows, day[rows], 3] > tr.states[rows, day[rows], 2]
    car = tr.states[..., 0] + tr.states[..., 1]
    cmax = car.max(axis=1)
    return {
        "patients": n, "seconds": sec,
        "remission": float(remission.mean()),
        "relapse_1y": float(relapse[remission].mean()) if remission.any() else float("nan"),
        "relapse_cd7neg": float(cd7neg.mean()) if rows.size else float("nan"),
        "cmax_median": float(np.median(cmax)), "cmax_p99": float(np.quantile(cmax, 0.99)),
        "cmax_over_1e6": float(np.mean(cmax > 1e6)), "cmax_max": float(cmax.max()),
        "persist_d90": float(np.mean(car[:, 90] >= FLOW_LLOQ)),
        "persist_d180": float(np.mean(car[:, 180] >= FLOW_LLOQ)),
        "car_d90_median": float(np.median(car[:, 90])),
        "car_d180_median": float(np.median(car[:, 180])),
    }


def markdown(rows: list[dict]) -> str:
    head = ("| floor (cells/uL) | ceiling (cells/uL) | fratricide | remission | relapse by 1 y "
            "(CD7-neg share) | median Cmax | 99th pct Cmax | Cmax > 10^6 | largest Cmax | "
            "CAR-T >= 1/uL d90 / d180 | median CAR-T d90 / d180 |\n"
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['floor']} | {r['ceiling']} | {r['fratricide']} | {r['remission']:.3f} | "
            f"{100 * r['relapse_1y']:.1f}% ({100 * r['relapse_cd7neg']:.0f}%) | "
            f"{r['cmax_median']:.1f} | {r['cmax_p99']:.3g} | {100 * r['cmax_over_1e6']:.2f}% | "
            f"{r['cmax_max']:.3g} | {100 * r['persist_d90']:.1f}% / "
            f"{100 * r['persist_d180']:.1f}% | {r['car_d90_median']:.2f} / "
            f"{r['car_d180_median']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = ap.parse_args()
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines()
                  if ln.startswith("Model name")), platform.processor())
    p, pct = cohort(args.n, args.seed)
    result: dict = {"machine": model, "date": time.strftime("%Y-%m-%d"),
                    "command": " ".join([".venv/bin/python", *sys.argv]),
                    "patients": args.n, "seed": args.seed, "rows": []}
    start = time.perf_counter()
    for (fl, floor), (cl, ceiling), (kl, kf) in itertools.product(FLOORS, CEILINGS, FRATRICIDES):
        row = {"floor": fl, "ceiling": cl, "fratricide": kl,
               **scenario(p, pct, floor, ceiling, kf)}
        result["rows"].append(row)
        print(json.dumps(row), flush=True)
    result["seconds"] = time.perf_counter() - start
    if args.markdown:
        print(markdown(result["rows"]))
    print(f"total {result['seconds']:.0f} s", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
