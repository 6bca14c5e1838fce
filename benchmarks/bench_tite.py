"""Benchmark: TITE-BOIN and TITE-CRM operating characteristics in calendar time (issue 17).

Scenarios: the six fixed scenarios of Lin & Yuan (Biostatistics 2020) - target 0.3, 6 doses,
12 cohorts of 3, a 3-month DLT window, 2 patients per month (Poisson), Weibull time to DLT
with half of the DLTs in the second half of the window. Anchors (frozen, with the scripts that
made them): R TITEgBOIN 0.4.0 ``get_oc_TITE_QuasiBOIN`` (tests/design/fixtures/
titegboin_oc.{R,json}) and R dfcrm 0.2-2.1 ``titesim`` (fixtures/dfcrm_titesim.{R,json}).

Rows per scenario:
- ``TITE-BOIN, TITEgBOIN rules``: `TITEBOIN(estimator="ess", eliminate_on="treated",
  min_complete_to_escalate=0)`, the rules the anchor codes; compared within 4 MC SE;
- ``TITE-BOIN, celltrial rules``: the default `TITEBOIN` (Yuan 2018 imputation, elimination
  on complete patients, no escalation with fewer than 3 complete at the dose);
- ``BOIN, complete data``: `CompleteFollowUp(BOIN)`, waiting until every enrolled patient has
  completed the window before each cohort (the anchor's BOIN row waits only for the patients
  at the current dose, and for at most one window, see RESULTS.md).
TITE-CRM (dfcrm scenarios s1, s4; uniform DLT onset, a decision at every arrival): `TITECRM`
with cohorts of 1 and no accrual suspension (``max_pending_fraction=1``), as titesim.

    .venv/bin/python benchmarks/bench_tite.py [--trials 2000] [--other-trials 1000]
        [--crm-trials 400] [--json-out FILE]
    .venv/bin/python benchmarks/bench_tite.py --from-json FILE   # tables again, no simulation
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

from celltrial.design import BOIN
from celltrial.design.crm import getprior
from celltrial.design.simulate_tite import CompleteFollowUp, TiteSettings, simulate_tite
from celltrial.design.tite import TITEBOIN, TITECRM

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "design" / "fixtures"
SCENARIOS = {  # Lin & Yuan 2020, the six fixed scenarios (as in titegboin_oc.R)
    "s1": (0.13, 0.28, 0.41, 0.50, 0.60, 0.70),
    "s2": (0.08, 0.15, 0.29, 0.43, 0.50, 0.57),
    "s3": (0.28, 0.42, 0.49, 0.61, 0.76, 0.87),
    "s4": (0.05, 0.10, 0.20, 0.31, 0.50, 0.70),
    "s5": (0.06, 0.08, 0.12, 0.18, 0.30, 0.41),
    "s6": (0.05, 0.06, 0.08, 0.11, 0.19, 0.32),
}
CRM_SCENARIOS = ("s1", "s4")  # as in dfcrm_titesim.R
SKELETON = getprior(0.05, 0.3, 3, 6)  # = dfcrm getprior(0.05, 0.3, 3, 6)
PAPER = TiteSettings(window=3.0, accrual=2.0, arrivals="poisson", dlt_time="weibull", late=0.5)
CRM_SETTINGS = TiteSettings(window=3.0, accrual=2.0, arrivals="poisson", dlt_time="uniform")
BOIN6 = BOIN(target=0.3, n_doses=6, n_cohorts=12)


def fmt(v: list[float] | tuple[float, ...], digits: int = 1) -> str:
    return " / ".join(f"{x:.{digits}f}" for x in v)


def worst_z(ours: dict, ref: dict, n_ref: int) -> float:
    """Largest |difference| / combined MC SE over selection %, stop %, patients per dose and
    duration (the anchor's patient SD taken equal to ours)."""
    n = ours["n_trials"]
    zs = []
    for a, b in zip(ours["selection_pct"] + [ours["stop_pct"]],
                    list(ref["selection_pct"]) + [ref.get("stop_pct", 0.0)], strict=True):
        p = max((a + b) / 200, 0.0005)
        zs.append(abs(a - b) / (100 * math.sqrt(p * (1 - p) * (1 / n + 1 / n_ref))))
    for a, b, sd in zip(ours["mean_patients"], ref["mean_patients"], ours["sd_patients"],
                        strict=True):
        if sd > 0:
            zs.append(abs(a - b) / (sd * math.sqrt(1 / n + 1 / n_ref)))
    se = math.sqrt(ours["sd_duration"] ** 2 / n + ref["sd_duration"] ** 2 / n_ref)
    zs.append(abs(ours["mean_duration"] - ref["mean_duration"]) / se)
    return max(zs)


def row(label: str, sel: list[float], stop: float, n: list[float], dur: float, sd: float,
        m: int, z: str = "") -> str:
    return (f"| {label} | {m} | {fmt(sel)} | {stop:.1f} | {fmt(n, 2)} | {sum(n):.1f} | "
            f"{dur:.1f} ({sd:.1f}) | {z} |")


def ours_row(label: str, r: dict, z: str = "") -> str:
    return row(label, r["selection_pct"], r["stop_pct"], r["mean_patients"], r["mean_duration"],
               r["sd_duration"], r["n_trials"], z)


def run(args: argparse.Namespace) -> dict:
    """Our side of every table (the anchors are not needed to run it)."""
    out: dict = {"machine": f"{platform.processor() or platform.machine()}, "
                            f"Python {platform.python_version()}", "boin": {}, "crm": {}}
    anchor_rules = TITEBOIN(BOIN6, estimator="ess", eliminate_on="treated",
                            min_complete_to_escalate=0)
    for name, p in SCENARIOS.items():
        t0 = time.perf_counter()
        out["boin"][name] = {
            "anchor_rules": simulate_tite(anchor_rules, p, args.trials, PAPER, 101).as_dict(),
            "celltrial_rules": simulate_tite(TITEBOIN(BOIN6), p, args.other_trials, PAPER,
                                             102).as_dict(),
            "complete_data": simulate_tite(CompleteFollowUp(BOIN6), p, args.other_trials, PAPER,
                                           103).as_dict()}
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    crm = TITECRM(skeleton=SKELETON, target=0.3, cohort_size=1, n_cohorts=36,
                  max_pending_fraction=1.0)
    for name in CRM_SCENARIOS:
        t0 = time.perf_counter()
        out["crm"][name] = simulate_tite(crm, SCENARIOS[name], args.crm_trials, CRM_SETTINGS,
                                         104).as_dict()
        print(f"TITE-CRM {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def tables(out: dict) -> None:
    boin_ref = json.loads((FIXTURES / "titegboin_oc.json").read_text())["scenarios"]
    crm_fix = json.loads((FIXTURES / "dfcrm_titesim.json").read_text())
    head = ("| design | trials | selection % by dose | stop % | patients by dose | total n | "
            "duration, months (SD) | max z |\n|---|---:|---|---:|---|---:|---|---:|")
    for name, ours in out["boin"].items():
        ref = boin_ref[name]
        tite, boin = ref["titeboin"], ref["boin"]
        a = ours["anchor_rules"]
        print(f"\n{name}: p_true {fmt(ref['p_true'], 2)}\n" + head)
        print(row("R TITEgBOIN (TITE-BOIN)", tite["selection_pct"], tite["stop_pct"],
                  tite["mean_patients"], tite["mean_duration"], tite["sd_duration"],
                  tite["ntrial"]))
        print(ours_row("TITE-BOIN, TITEgBOIN rules", a,
                       f"{worst_z(a, tite, tite['ntrial']):.2f}"))
        print(ours_row("TITE-BOIN, celltrial rules", ours["celltrial_rules"]))
        print(row("R TITEgBOIN (BOIN, TITE=FALSE)", boin["selection_pct"], boin["stop_pct"],
                  boin["mean_patients"], boin["mean_duration"], boin["sd_duration"],
                  boin["ntrial"]))
        print(ours_row("BOIN, complete data", ours["complete_data"]))
    for name, r in out["crm"].items():
        ref = dict(crm_fix["scenarios"][name], stop_pct=0.0)
        print(f"\nTITE-CRM {name}: p_true {fmt(ref['p_true'], 2)}, skeleton "
              f"{fmt(crm_fix['skeleton'], 3)}\n" + head)
        print(row("R dfcrm titesim", ref["selection_pct"], 0.0, ref["mean_patients"],
                  ref["mean_duration"], ref["sd_duration"], ref["nsim"]))
        print(ours_row("TITE-CRM, cohorts of 1", r, f"{worst_z(r, ref, ref['nsim']):.2f}"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=2000, help="trials, TITEgBOIN rules")
    ap.add_argument("--other-trials", type=int, default=1000,
                    help="trials, celltrial rules and complete-data BOIN")
    ap.add_argument("--crm-trials", type=int, default=400, help="trials, TITE-CRM")
    ap.add_argument("--json-out", type=Path, default=None)
    ap.add_argument("--from-json", type=Path, default=None,
                    help="print the tables of a saved --json-out run without simulating")
    args = ap.parse_args()
    if args.from_json:
        out = json.loads(args.from_json.read_text())
    else:
        out = run(args)
        if args.json_out:
            args.json_out.write_text(json.dumps(out, indent=1))
    tables(out)


if __name__ == "__main__":
    main()
