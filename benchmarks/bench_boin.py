"""Benchmark: BOIN simulation throughput (issue 5).

Scenario: target 0.3, true DLT probabilities (0.05, 0.12, 0.30, 0.45, 0.60), cohorts of 3,
10 cohorts. Times, in one run: the numpy lockstep (all threads and 1 thread), JAX jit (CPU
here; GPU when JAX sees one), the plain per-trial Python loop, and the R package BOIN 2.7.2
`get.oc` when installed in a private library (``--r-lib``, default /tmp/rlib; see
tests/design/fixtures/boin_get_oc.R for how it was installed). Prints a markdown table.

    .venv/bin/python benchmarks/bench_boin.py [--trials 4000000] [--python-trials 3000]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import time

import numpy as np

from celltrial.design import BOIN, simulate

P_TRUE = (0.05, 0.12, 0.30, 0.45, 0.60)


def best_of(fn, repeats: int):
    results = [fn() for _ in range(repeats)]
    return min(results, key=lambda r: r.seconds)


def r_get_oc(lib: str, n: int) -> tuple[float, list[float]] | None:
    if shutil.which("Rscript") is None or not os.path.isdir(os.path.join(lib, "BOIN")):
        return None
    code = (f'.libPaths(c("{lib}", .libPaths())); suppressMessages(library(BOIN)); '
            f't <- system.time(oc <- get.oc(target=0.3, p.true=c({", ".join(map(str, P_TRUE))}), '
            f'ncohort=10, cohortsize=3, ntrial={n}, seed=6)); '
            'cat(t[["elapsed"]], oc$selpercent, "\\n")')
    out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, check=True)
    values = [float(v) for v in re.findall(r"[-0-9.eE]+", out.stdout)]
    return values[0], values[1:6]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=4_000_000)
    ap.add_argument("--python-trials", type=int, default=3_000)
    ap.add_argument("--r-trials", type=int, default=5_000)
    ap.add_argument("--r-lib", default="/tmp/rlib")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    design = BOIN(target=0.3, n_doses=5, cohort_size=3, n_cohorts=10)
    rows = []

    simulate(design, P_TRUE, 100_000, seed=1)  # warm-up (tables, threads)
    res = best_of(lambda: simulate(design, P_TRUE, args.trials, seed=6), args.repeats)
    rows.append((f"numpy lockstep, {os.cpu_count()} threads", res.n_trials, res.seconds,
                 res.selection_pct))
    numpy_rate = res.trials_per_second
    res1 = best_of(lambda: simulate(design, P_TRUE, args.trials, seed=6, threads=1), 1)
    rows.append(("numpy lockstep, 1 thread", res1.n_trials, res1.seconds, res1.selection_pct))

    import jax

    t0 = time.perf_counter()
    simulate(design, P_TRUE, 1000, seed=1, backend="jax")
    compile_s = time.perf_counter() - t0
    resj = best_of(lambda: simulate(design, P_TRUE, args.trials, seed=6, backend="jax"),
                   args.repeats)
    rows.append((f"JAX jit ({jax.default_backend()}, {jax.devices()[0].device_kind}; "
                 f"first call {compile_s:.1f} s incl. compile)", resj.n_trials, resj.seconds,
                 resj.selection_pct))

    resp = simulate(design, P_TRUE, args.python_trials, seed=6, backend="python")
    rows.append(("plain Python per-trial loop (next_dose/select)", resp.n_trials, resp.seconds,
                 resp.selection_pct))

    r = r_get_oc(args.r_lib, args.r_trials)
    if r is not None:
        rows.append(("R package BOIN 2.7.2 get.oc", args.r_trials, r[0], tuple(r[1])))

    print("| implementation | trials | seconds | trials/s | selection % (doses 1-5) |")
    print("|---|---:|---:|---:|---|")
    for name, n, s, sel in rows:
        print(f"| {name} | {n:,} | {s:.3f} | {n / s:,.0f} | "
              f"{' / '.join(f'{v:.2f}' for v in sel)} |")
    print()
    print(f"numpy / plain Python loop: {numpy_rate / resp.trials_per_second:,.0f}x")
    if r is not None:
        print(f"numpy / R get.oc: {numpy_rate / (args.r_trials / r[0]):,.0f}x")
    se = 100 * np.sqrt(np.array(res.selection_pct) / 100 * (1 - np.array(res.selection_pct) / 100)
                       / res.n_trials)
    print(f"Monte Carlo SE of the numpy selection %: {' / '.join(f'{v:.3f}' for v in se)}")


if __name__ == "__main__":
    main()
