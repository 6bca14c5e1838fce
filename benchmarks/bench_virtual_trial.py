"""Time a virtual trial per study: `celltrial simulate-study -n 40` (conduct loop, DLTs derived
from the generated records before every cohort, data cut), seeds 1-5.

Two figures per study: the library call ``celltrial.conduct.run_virtual_trial(protocol, 40,
seed)`` (median of the seeds, and the worst), and the whole command line
``celltrial simulate-study --study ID -n 40 --seed 1 --no-db`` as a user runs it (process start,
imports and printing included; best of 2). Goal (issue 9): under 5 s per study.

Usage: .venv/bin/python benchmarks/bench_virtual_trial.py [--seeds 1,2,3,4,5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

CUT = "2026-12-01"


def machine() -> str:
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines()
                  if ln.startswith("Model name")), platform.processor())
    return f"{model}, {os.cpu_count()} cores"


def main() -> None:
    from celltrial.conduct import run_virtual_trial
    from celltrial.protocols import list_ids, load

    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    exe = str(Path(sys.executable).with_name("celltrial"))
    out = {"machine": machine(), "date": time.strftime("%Y-%m-%d"),
           "command": " ".join([".venv/bin/python", *sys.argv]), "rows": []}
    for study in list_ids():
        protocol = load(study)
        times, dosed, cohorts = [], [], []
        for seed in seeds:
            start = time.perf_counter()
            trial = run_virtual_trial(protocol, 40, seed, data_cut=CUT)
            times.append(time.perf_counter() - start)
            dosed.append(sum(len(s.subjects) for s in trial.steps))
            cohorts.append(len(trial.steps))
        cli = []
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run([exe, "simulate-study", "--study", study, "-n", "40", "--seed", "1",
                            "--no-db", "--data-cut", CUT], check=True, capture_output=True)
            cli.append(time.perf_counter() - start)
        row = {"study": study, "library_median_s": statistics.median(times),
               "library_max_s": max(times), "cli_s": min(cli), "cohorts": cohorts,
               "dosed": dosed}
        out["rows"].append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
