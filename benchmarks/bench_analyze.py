"""Benchmark: `celltrial analyze` work for one 20-patient study (goal: under 2 s after start-up).

Usage: .venv/bin/python benchmarks/bench_analyze.py [--study cd7-aml-mll] [-n 20] [--repeat 5]

Data: ``celltrial.conduct.simulate_study(protocol, n, seed)`` (the virtual-patient generator)
when it is installed, else the dense synthetic cohort below, built on the protocol's own visit
schedule (every kinetics, cytokine, CD7, marrow, ADA and follow-up day; qPCR/flow by the Stein
2019 typical curve with log-normal variation). The timed work is what `celltrial analyze` does
after reading the store: derive all eight datasets, compute every endpoint, and write parquet,
CSV, endpoints.json and summary.md, plus ``read_domains`` from a SQLite store holding the cohort
(written once through ``celltrial.store.write_domains``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HEMATOLOGY = (("NEUT", "10^9/L", 2.0, 7.5, 3.0), ("PLAT", "10^9/L", 150, 400, 150),
              ("HGB", "g/L", 120, 160, 100), ("LYM", "10^9/L", 1.0, 4.0, 1.2),
              ("WBC", "10^9/L", 4.0, 10.0, 5.0), ("ALT", "U/L", 0, 40, 25),
              ("AST", "U/L", 0, 40, 25), ("BILI", "umol/L", 0, 21, 10),
              ("CREAT", "umol/L", 45, 110, 70))


def stein_curve(t: np.ndarray, cmax: float, tmax: float) -> np.ndarray:
    """Stein et al. 2019 typical CAR-T curve (CLINICAL_REFERENCE.md 5.1), scaled."""
    foldx, alpha, fb, beta = 3900.0, 0.16, 0.0079, 0.0032
    rho = np.log(foldx) / tmax
    rise = cmax / foldx * np.exp(rho * np.minimum(t, tmax))
    fall = (1 - fb) * cmax * np.exp(-alpha * (t - tmax)) + fb * cmax * np.exp(-beta * (t - tmax))
    return np.where(t < tmax, rise, fall)


def synthetic_study(protocol, n: int, seed: int) -> dict[str, pd.DataFrame]:
    """A dense cohort on the protocol's visit schedule (benchmark data, not a clinical model)."""
    rng = np.random.default_rng(seed)
    sched = protocol.schedule
    rows: dict[str, list[dict]] = {k: [] for k in
                                   ("DM", "EX", "AE", "LB", "RS", "PC", "IS", "PR", "DS", "SC")}
    start0 = dt.date(2024, 1, 8)
    levels = [d.id for d in protocol.dose_levels]
    for i in range(n):
        u = f"{protocol.id}-{i + 1:03d}"
        start = start0 + dt.timedelta(days=14 * i)

        def iso(day: float, start=start) -> str:
            return (start + dt.timedelta(days=int(day))).isoformat()
        level = levels[min(i // 3, len(levels) - 1)]
        follow = int(rng.choice([180, 365, 730]))
        dies = rng.random() < 0.3
        death = int(rng.integers(40, follow)) if dies else None
        end = death if dies else follow
        rows["DM"].append({"USUBJID": u, "SUBJID": f"{i + 1:03d}", "SITEID": "01",
                           "AGE": int(rng.integers(18, 70)), "AGEU": "YEARS",
                           "SEX": str(rng.choice(["M", "F"])), "DISEASE": "T-ALL",
                           "ARMCD": level, "ARM": level, "RFICDTC": iso(-20),
                           "RFSTDTC": iso(0), "RFPENDTC": iso(end),
                           "DTHDTC": iso(death) if dies else None, "DTHFL": "Y" if dies else None})
        rows["SC"].append({"USUBJID": u, "SCTESTCD": "cd7_blast_pct",
                           "SCORRES": str(round(float(rng.uniform(50, 99)), 1)), "SCDTC": iso(-14)})
        for k, frac in enumerate(protocol.intervention.split):
            rows["EX"].append({"USUBJID": u, "EXTRT": "CD7 CAR-T", "EXFRACN": k + 1,
                               "EXDOSE": 1e6 * frac.fraction, "EXDOSU": "cells/kg",
                               "EXSTDTC": f"{iso(frac.day)}T10:00"})
        cmax, tmax = 24000 * rng.lognormal(0, 0.8), 9.3 * rng.lognormal(0, 0.3)
        for code, scale, unit, lloq in (("CARTQPCR", 1.0, "copies/ug gDNA", 50.0),
                                        ("CARTPCT", 1 / 1000, "%", 0.1),
                                        ("CARTABS", 1 / 100, "cells/uL", 1.0)):
            for d in sched.kinetics_days:
                if d > end:
                    continue
                value = float(stein_curve(np.array([float(d)]), cmax * scale, tmax)[0]
                              * rng.lognormal(0, 0.3))
                blq = value < lloq
                rows["PC"].append({"USUBJID": u, "PCTESTCD": code,
                                   "PCSTRESN": None if blq else value, "PCSTRESU": unit,
                                   "PCORRES": "<LLOQ" if blq else f"{value:.4g}", "PCLLOQ": lloq,
                                   "PCSPEC": "BLOOD", "PCDTC": iso(d)})
        lab_days = sorted(set(sched.cytokine_days) | set(sched.cd7_days) | {-7})
        for d in lab_days:
            if d > end:
                continue
            for code, unit, lo, hi, mid in HEMATOLOGY:
                value = mid * rng.lognormal(-0.8 if 3 <= d <= 21 else 0, 0.3)
                rows["LB"].append({"USUBJID": u, "LBCAT": "HEMATOLOGY", "LBTESTCD": code,
                                   "LBTEST": code, "LBSPEC": "BLOOD", "LBSTRESN": value,
                                   "LBSTRESU": unit, "LBORNRLO": lo, "LBORNRHI": hi,
                                   "LBDTC": iso(d)})
        for d in sched.cytokine_days:
            for code in ("IL6", "IL10", "IFNG", "TNFA"):
                value = 5 * rng.lognormal(2.5 if 2 <= d <= 7 else 0, 0.6)
                rows["LB"].append({"USUBJID": u, "LBCAT": "CYTOKINE", "LBTESTCD": code,
                                   "LBTEST": code, "LBSPEC": "BLOOD", "LBSTRESN": value,
                                   "LBSTRESU": "pg/mL", "LBDTC": iso(d)})
        for d in sched.cd7_days:
            if d > end:
                continue
            depth = 1.0 if d <= 0 else 0.01 * rng.lognormal(0, 1)
            for code, unit, base in (("CD7ABS", "cells/uL", 900.0), ("CD7PCT", "%", 70.0)):
                rows["LB"].append({"USUBJID": u, "LBCAT": "IMMUNOPHENOTYPE", "LBTESTCD": code,
                                   "LBTEST": code, "LBSPEC": "BLOOD", "LBSTRESN": base * depth,
                                   "LBSTRESU": unit, "LBDTC": iso(d)})
        responder = rng.random() < 0.8
        relapse = int(rng.integers(60, 400)) if responder and rng.random() < 0.4 else None
        for d in sched.marrow_days:
            if d > end:
                continue
            if d <= 0:
                status = None
            elif not responder:
                status = "NR"
            elif relapse is not None and d >= relapse:
                status = "RELAPSE"
            else:
                status = str(rng.choice(["CR", "CRi"]))
            rows["LB"].append({"USUBJID": u, "LBCAT": "MARROW", "LBTESTCD": "BLAST",
                               "LBTEST": "BLAST", "LBSPEC": "BONE MARROW",
                               "LBSTRESN": 60.0 if d <= 0 or status in ("NR", "RELAPSE") else 1.0,
                               "LBSTRESU": "%", "LBDTC": iso(d)})
            rows["LB"].append({"USUBJID": u, "LBCAT": "MARROW", "LBTESTCD": "MRD",
                               "LBTEST": "MRD", "LBSPEC": "BONE MARROW", "LBMETHOD": "FLOW",
                               "LBSTRESN": 0.3 if status in (None, "NR", "RELAPSE") else 1e-5,
                               "LBSTRESU": "fraction", "LBDTC": iso(d)})
            if status:
                rows["RS"].append({"USUBJID": u, "RSTESTCD": "OVRLRESP", "RSCAT": "ALL",
                                   "RSORRES": status, "RSSTRESC": status, "RSDTC": iso(d),
                                   "RSEVAL": "INVESTIGATOR"})
        for d in sched.ada_days:
            if d <= end:
                result = "POSITIVE" if d > 0 and rng.random() < 0.1 else "NEGATIVE"
                rows["IS"].append({"USUBJID": u, "ISTESTCD": "ADACAR", "ISORRES": result,
                                   "ISSTRESC": result, "ISDTC": iso(d)})
        crs = int(rng.choice([1, 1, 2, 2, 3]))
        rows["AE"].append({"USUBJID": u, "AETERM": "CRS", "AEDECOD": "Cytokine release syndrome",
                           "AETOXGR": crs, "AETOXSCL": "ASTCT 2019", "AESTDTC": iso(2),
                           "AEENDTC": iso(2 + crs), "AESER": "N", "AEREL": "RELATED"})
        rows["AE"].append({"USUBJID": u, "AETERM": "neutropenia",
                           "AEDECOD": "Neutrophil count decreased", "AETOXGR": 4,
                           "AETOXSCL": "CTCAE v5.0", "AESTDTC": iso(3), "AEENDTC": iso(20),
                           "AESER": "N", "AEREL": "RELATED"})
        if responder and rng.random() < 0.35:
            rows["PR"].append({"USUBJID": u, "PRTRT": "ALLOGENEIC HSCT", "PRSTDTC": iso(60)})
        rows["DS"].append({"USUBJID": u, "DSDECOD": "DEATH" if dies else "COMPLETED",
                           "DSTERM": "", "DSSTDTC": iso(end)})
    frames = {}
    for name, data in rows.items():
        frame = pd.DataFrame(data)
        if not frame.empty:
            frame.insert(0, "STUDYID", protocol.id)
            if name != "DM":
                frame[f"{name}SEQ"] = frame.groupby("USUBJID").cumcount() + 1
        frames[name] = frame
    return frames


def cohort(protocol, n: int, seed: int) -> tuple[dict[str, pd.DataFrame], str]:
    try:
        from celltrial.conduct import simulate_study
    except ImportError:
        return synthetic_study(protocol, n, seed), "synthetic cohort (bench_analyze.py)"
    return simulate_study(protocol, n, seed), "celltrial.conduct.simulate_study"


def _store_copy(protocol, domains: dict[str, pd.DataFrame], tmp: Path) -> str | None:
    """Write the cohort to a fresh SQLite store; None when the store API is not installed."""
    try:
        from celltrial.store import init_db, open_store, register_study, write_domains
    except ImportError:
        return None
    url = f"sqlite:///{tmp / 'bench.db'}"
    init_db(url)
    store = open_store(url)
    register_study(store, protocol)
    write_domains(store, protocol.id, domains, user="bench", reason="benchmark")
    return url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="cd7-aml-mll")
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    t0 = time.perf_counter()
    from celltrial.derive import analyze, write_analysis
    from celltrial.protocols import load
    import_s = time.perf_counter() - t0

    protocol = load(args.study)
    domains, source = cohort(protocol, args.n, args.seed)
    rows = sum(len(f) for f in domains.values())
    timings, derive_only, reads = [], [], []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = _store_copy(protocol, domains, tmp)
        analyze(domains, protocol)   # warm-up: lazy imports (scipy, pyarrow)
        for _ in range(args.repeat):
            t1 = time.perf_counter()
            if url is not None:
                from celltrial.store import open_store, read_domains
                domains = read_domains(open_store(url), protocol.id)
            t2 = time.perf_counter()
            analysis = analyze(domains, protocol)
            t3 = time.perf_counter()
            write_analysis(analysis, tmp / "out")
            t4 = time.perf_counter()
            reads.append(t2 - t1)
            derive_only.append(t3 - t2)
            timings.append(t4 - t1)
        subjects = len(domains["DM"])
    ok = sum(r.status == "ok" for r in analysis.endpoints)
    print(f"machine: {platform.processor() or platform.machine()}, Python {sys.version.split()[0]}")
    print(f"study {args.study}: {subjects} subjects ({args.n} requested), {rows} SDTM rows "
          f"({source})")
    print(f"import of celltrial.derive: {import_s:.3f} s")
    if url is not None:
        print(f"read_domains (SQLite): median {statistics.median(reads):.3f} s")
    print(f"derive datasets + endpoints: median {statistics.median(derive_only):.3f} s "
          f"(min {min(derive_only):.3f})")
    print(f"total work (read + derive + endpoints + write parquet/CSV/JSON/MD): median "
          f"{statistics.median(timings):.3f} s (min {min(timings):.3f}) over {args.repeat} runs; "
          f"{ok}/{len(analysis.endpoints)} endpoints ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
