"""Benchmark: virtual-trial operating characteristics (issue 14).

Protocol nct04762485 (5 dose levels, BOIN, target 0.3), 30-patient trials (--max-n 30),
designs 3+3, BOIN, CRM, BOIN12. Two costs are timed separately:

1. the patient bank (`celltrial.design.virtual_bank.build_bank`): patients/s made by the
   per-patient path (screening, mechanistic model, one-year records, ADSL/DLT adjudication,
   ADRS, ADPP), in this process and on a local Dask cluster of 1 and 2 worker processes;
2. the lockstep virtual trials (`celltrial.design.virtual_oc.virtual_oc`) on that bank:
   trials/s per design in this process, and all designs on Dask with 1 and 2 worker
   processes (same seed: the tables must be equal, checked here).

Prints markdown tables. Bounded: a few minutes on 2 cores with the defaults.

    .venv/bin/python benchmarks/bench_virtual_oc.py [--bank-size 12] [--trials 4000]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from celltrial.design.virtual_bank import build_bank
from celltrial.design.virtual_oc import comparison_designs, virtual_oc
from celltrial.protocols import load

STUDY = "nct04762485"
DESIGNS = ("3+3", "boin", "crm", "boin12")


def on_dask(workers: int, fn):  # type: ignore[no-untyped-def]
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.submit(sum, [1]).result()  # workers up before timing
        t0 = time.perf_counter()
        out = fn(client)
        return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bank-size", type=int, default=12, help="patients per dose level")
    ap.add_argument("--trials", type=int, default=4000, help="virtual trials per design")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    protocol = load(STUDY)
    n_bank = args.bank_size * len(protocol.dose_levels)

    print(f"## patient bank: {args.bank_size} per dose x {len(protocol.dose_levels)} doses "
          f"= {n_bank} patients ({STUDY})\n")
    print("| where | seconds | patients/s |\n|---|---:|---:|")
    t0 = time.perf_counter()
    bank = build_bank(protocol, args.bank_size, args.seed, chunk=6)
    sec = time.perf_counter() - t0
    print(f"| this process | {sec:.1f} | {n_bank / sec:.2f} |")
    for workers in (1, 2):
        other, sec = on_dask(workers, lambda c: build_bank(protocol, args.bank_size,
                                                           args.seed, chunk=6, client=c))
        assert other.table.equals(bank.table), "bank differs on Dask"
        print(f"| Dask, {workers} worker process{'es' if workers > 1 else ''} | {sec:.1f} | "
              f"{n_bank / sec:.2f} |")

    designs = comparison_designs(protocol, DESIGNS, 30)
    print(f"\n## lockstep virtual trials on that bank: {args.trials} trials per design, "
          "30 patients max\n")
    print("| design | seconds | trials/s | no dose % |\n|---|---:|---:|---:|")
    tables = []
    total = 0.0
    for name, design in designs.items():
        t0 = time.perf_counter()
        table = virtual_oc(bank, {name: design}, args.trials, args.seed)
        sec = time.perf_counter() - t0
        total += sec
        tables.append(table)
        print(f"| {name} | {sec:.1f} | {args.trials / sec:.0f} | "
              f"{table['stop_pct'].iloc[0]:.1f} |")
    here = pd.concat(tables, ignore_index=True)
    print(f"| all four, this process | {total:.1f} | {4 * args.trials / total:.0f} | |")
    cols = [c for c in here.columns if c != "seconds"]
    for workers in (1, 2):
        table, sec = on_dask(workers, lambda c: virtual_oc(bank, designs, args.trials,
                                                           args.seed, client=c))
        pd.testing.assert_frame_equal(table[cols], here[cols])
        print(f"| all four, Dask {workers} worker process{'es' if workers > 1 else ''} | "
              f"{sec:.1f} | {4 * args.trials / sec:.0f} | |")
    print("\nJAX: not used (each decision is the design's own next_dose in Python, once per "
          "distinct trial state; the patients come from the bank).")
    print("GPU: not measured: no device lent.")


if __name__ == "__main__":
    main()
