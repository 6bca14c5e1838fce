"""Benchmark: BOIN12 operating characteristics with the toxicity and futility stops (issue 17).

Runs the current `BOIN12` and, side by side, the BOIN12 of commit 758e974 (before the stops;
loaded from git) on stated scenarios: selection % per dose, % stopped with no dose, mean
patients and DLTs. 10 cohorts of 3, phi_T 0.35, phi_E 0.25, u2 40, u3 60 (the paper's
example settings). Prints a markdown table.

    .venv/bin/python benchmarks/bench_boin12.py [--trials 4000] [--seed 1]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

from celltrial.design.boin12 import BOIN12
from celltrial.design.simulate import simulate

SCENARIOS = {
    "every dose too toxic": ((0.6, 0.7, 0.8, 0.85, 0.9), (0.3, 0.4, 0.5, 0.5, 0.5)),
    "OBD dose 3, MTD dose 4": ((0.05, 0.1, 0.15, 0.3, 0.45), (0.1, 0.3, 0.5, 0.5, 0.5)),
    "every dose futile": ((0.1, 0.15, 0.3, 0.45, 0.6), (0.05, 0.1, 0.1, 0.1, 0.1)),
    "efficacy peaks at dose 3": ((0.02, 0.05, 0.08, 0.1, 0.12), (0.2, 0.4, 0.6, 0.4, 0.2)),
}
BEFORE = "758e974"


def before_design() -> object | None:
    """BOIN12 as it was at commit 758e974 (None when git or the commit is not available)."""
    root = Path(__file__).resolve().parents[1]
    try:
        src = subprocess.run(["git", "show", f"{BEFORE}:src/celltrial/design/boin12.py"],
                             cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("boin12_before")
    sys.modules["boin12_before"] = module
    exec(compile(src, "boin12_before.py", "exec"), module.__dict__)  # noqa: S102
    return module.BOIN12()


def fmt(values, spec: str = ".1f") -> str:
    return " / ".join(f"{v:{spec}}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    designs = [("now", BOIN12())]
    old = before_design()
    if old is not None:
        designs.append((BEFORE, old))
    print("| scenario (DLT; response) | version | selection % doses 1-5 | stop % | "
          "patients per dose | patients | DLTs | trials/s |")
    print("|---|---|---|---:|---|---:|---:|---:|")
    for name, (p_tox, p_eff) in SCENARIOS.items():
        for label, design in designs:
            res = simulate(design, p_tox, args.trials, seed=args.seed, p_efficacy=p_eff)
            print(f"| {name} ({fmt(p_tox, 'g')}; {fmt(p_eff, 'g')}) | {label} | "
                  f"{fmt(res.selection_pct)} | {res.stop_pct:.1f} | {fmt(res.mean_patients)} | "
                  f"{sum(res.mean_patients):.1f} | {sum(res.mean_dlts):.2f} | "
                  f"{res.trials_per_second:,.0f} |")


if __name__ == "__main__":
    main()
