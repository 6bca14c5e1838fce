"""Kaplan-Meier and cumulative incidence on 1,000,000 rows: celltrial.stats vs R survfit/cuminc.

Usage (repository root):  .venv/bin/python benchmarks/bench_survival.py [--rows 1000000] [--repeat 3]

One seeded data set (continuous times rounded to 1e-4 day, ~25% censored, causes 1/2, two
groups) is written to a temporary CSV; R reads it and times ``survfit`` and ``cuminc`` inside R
with ``system.time`` (reading excluded); Python times ``kaplan_meier`` and
``cumulative_incidence`` on the same arrays (best of --repeat runs, conversion excluded).
Prints seconds and the ratio R / celltrial (> 1: celltrial faster). Results: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from celltrial.stats import cumulative_incidence, kaplan_meier

R_SCRIPT = r"""
suppressPackageStartupMessages({library(survival); library(cmprsk)})
d <- read.csv(commandArgs(TRUE)[1])
best <- function(expr_fun, k) min(sapply(seq_len(k), function(i) system.time(expr_fun())[["elapsed"]]))
k <- as.integer(commandArgs(TRUE)[2])
km <- best(function() survfit(Surv(d$time, d$cause != 0) ~ 1), k)
ci <- best(function() cuminc(d$time, d$cause), k)
cig <- best(function() cuminc(d$time, d$cause, d$group), 1)
cat(sprintf("R km %.4f\nR cif %.4f\nR cif_gray %.4f\n", km, ci, cig))
"""


def make_data(rows: int, seed: int = 20240404) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    group = rng.integers(1, 3, rows)
    event = rng.weibull(0.9, rows) * np.where(group == 1, 400, 330)
    censor = rng.uniform(30, 730, rows)
    time_ = np.round(np.minimum(event, censor), 4)
    cause = np.where(event <= censor, rng.choice([1, 2], rows, p=[0.65, 0.35]), 0)
    return time_, cause, group


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    t, c, g = make_data(args.rows)
    py = {
        "km": best_of(lambda: kaplan_meier(t, c != 0), args.repeat),
        "cif": best_of(lambda: cumulative_incidence(t, c), args.repeat),
        "cif_gray": best_of(lambda: cumulative_incidence(t, c, g), 1),
    }
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.csv"
        with data.open("w") as fh:
            fh.write("time,cause,group\n")
            np.savetxt(fh, np.column_stack([t, c, g]), fmt=["%.4f", "%d", "%d"], delimiter=",")
        script = Path(tmp) / "bench.R"
        script.write_text(R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), str(data), str(args.repeat)],
                             capture_output=True, text=True, check=True).stdout
    r = {line.split()[1]: float(line.split()[2]) for line in out.splitlines()
         if line.startswith("R ")}
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; rows: {args.rows:,}; "
          f"unique times: {np.unique(t).size:,}")
    print(f"{'task':<40}{'celltrial s':>12}{'R s':>10}{'R / celltrial':>15}")
    labels = {"km": "Kaplan-Meier (survfit)", "cif": "CIF, 2 causes (cuminc)",
              "cif_gray": "CIF + Gray test, 2 groups (cuminc)"}
    for key, label in labels.items():
        print(f"{label:<40}{py[key]:>12.3f}{r[key]:>10.3f}{r[key] / py[key]:>15.1f}")


if __name__ == "__main__":
    main()
