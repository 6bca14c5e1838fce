"""CSV import of a large LB domain: rows per second and peak memory, SQLite and PostgreSQL.

Generates ``DM.csv`` (one row per subject) and ``LB.csv`` (``--rows`` lab results, 500 per
subject, deterministic seed) whose values pass every check of the store (units, plausible
ranges, LBORRES = LBSTRESN in LBORRESU, LBTOXGR = CTCAE v5.0 grade by
``celltrial.clinical.grade_lab``), then imports the folder with
``celltrial.store.import_csv_dir`` once per backend, each in a fresh child process so that
its peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is the import's
alone. Prints one JSON line per code version and backend.

Usage (from the repository root; PostgreSQL at 127.0.0.1:5432, trust auth, database test)::

    .venv/bin/python benchmarks/bench_import.py --rows 1000000
    .venv/bin/python benchmarks/bench_import.py --rows 200000 --backends sqlite

``cpu_s`` is the child's own CPU time during the import (``time.process_time``: Python,
validation and, on SQLite, the database engine; PostgreSQL's server works in its own
process): on a shared machine it varies less than the wall time ``seconds``.

``--code DIR`` (repeatable) imports the same generated files with the package under
``DIR`` (a ``src`` folder; default: the installed one), one child per code and backend, so
"before" and "after" are measured in the same run on the same data::

    git archive 758e974 src | tar -x -C /tmp/before
    .venv/bin/python benchmarks/bench_import.py --rows 1000000 --code /tmp/before/src --code src
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

STUDY = "bench-import"
PER_SUBJECT = 500
CHUNK = 100_000

# LBTESTCD -> (LBTEST, LBCAT, standard unit, LLN, ULN, low, high, decimals): values drawn
# uniformly in [low, high] and rounded as a laboratory reports them.
TESTS: dict[str, tuple[str, str, str, float, float, float, float, int]] = {
    "NEUT": ("Neutrophils", "HEMATOLOGY", "10^9/L", 1.8, 7.5, 0.0, 12.0, 2),
    "PLAT": ("Platelets", "HEMATOLOGY", "10^9/L", 150.0, 400.0, 5.0, 600.0, 0),
    "HGB": ("Hemoglobin", "HEMATOLOGY", "g/L", 120.0, 170.0, 50.0, 180.0, 0),
    "LYM": ("Lymphocytes", "HEMATOLOGY", "10^9/L", 1.0, 4.0, 0.0, 6.0, 2),
    "WBC": ("Leukocytes", "HEMATOLOGY", "10^9/L", 4.0, 10.0, 0.1, 30.0, 2),
    "K": ("Potassium", "CHEMISTRY", "mmol/L", 3.5, 5.1, 2.4, 7.5, 1),
    "SODIUM": ("Sodium", "CHEMISTRY", "mmol/L", 135.0, 145.0, 118.0, 162.0, 0),
    "ALB": ("Albumin", "CHEMISTRY", "g/L", 35.0, 50.0, 15.0, 55.0, 0),
    "CRP": ("C Reactive Protein", "CHEMISTRY", "mg/L", 0.0, 5.0, 0.0, 300.0, 1),
    "IL6": ("Interleukin 6", "CYTOKINE", "pg/mL", 0.0, 7.0, 0.0, 5000.0, 1),
}
CTCAE = {"NEUT": ("Neutrophil count decreased",), "PLAT": ("Platelet count decreased",),
         "HGB": ("Anemia",), "LYM": ("Lymphocyte count decreased",),
         "WBC": ("White blood cell decreased",), "K": ("Hyperkalemia", "Hypokalemia"),
         "SODIUM": ("Hypernatremia", "Hyponatremia"), "ALB": ("Hypoalbuminemia",)}


def _grades(code: str, values: np.ndarray) -> list[float | None]:
    """Worst CTCAE v5.0 grade over the test's terms (no qualifier), by grade_lab."""
    from celltrial.clinical import grade_lab

    name, _cat, unit, lln, uln, *_ = TESTS[code]
    if code not in CTCAE:
        return [None] * len(values)
    cache: dict[float, float | None] = {}
    out = []
    for value in values.tolist():
        if value not in cache:
            grades = [int(grade_lab(t, value, unit, lln=lln or None, uln=uln or None))
                      for t in CTCAE[code]]
            cache[value] = float(max(grades))
        out.append(cache[value])
    return out


def generate(folder: Path, rows: int, seed: int = 20241201) -> None:
    """DM.csv and LB.csv for ``rows`` LB rows (``PER_SUBJECT`` per subject), in chunks."""
    rng = np.random.default_rng(seed)
    subjects = max(1, -(-rows // PER_SUBJECT))
    ids = np.array([f"S{i:06d}" for i in range(subjects)])
    pd.DataFrame({"STUDYID": STUDY, "USUBJID": ids, "SITEID": "101", "AGE": 40,
                  "AGEU": "YEARS", "SEX": "M", "RFSTDTC": "2024-01-10"}).to_csv(
        folder / "DM.csv", index=False)
    codes = np.array(list(TESTS))
    days = pd.date_range("2024-01-01", periods=400, freq="D").strftime("%Y-%m-%dT08:00")
    with open(folder / "LB.csv", "w", encoding="utf-8", newline="") as handle:
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            index = np.arange(start, start + n)
            code = codes[rng.integers(0, len(codes), n)]
            frame = pd.DataFrame({"STUDYID": STUDY, "USUBJID": ids[index // PER_SUBJECT],
                                  "LBSEQ": index % PER_SUBJECT + 1, "LBTESTCD": code})
            value = np.empty(n)
            grade: list[float | None] = [None] * n
            for c in np.unique(code):
                mask = code == c
                low, high, decimals = TESTS[c][5], TESTS[c][6], TESTS[c][7]
                value[mask] = np.round(rng.uniform(low, high, int(mask.sum())), decimals)
                for position, g in zip(np.flatnonzero(mask), _grades(c, value[mask]),
                                       strict=True):
                    grade[position] = g
            spec = pd.DataFrame.from_dict(TESTS, orient="index", columns=[
                "LBTEST", "LBCAT", "LBSTRESU", "LBORNRLO", "LBORNRHI", "lo", "hi", "dec"])
            meta = spec.loc[code].reset_index(drop=True)
            frame = frame.assign(
                LBCAT=meta["LBCAT"], LBTEST=meta["LBTEST"], LBSPEC="BLOOD",
                LBORRES=[f"{v:g}" for v in value.tolist()], LBORRESU=meta["LBSTRESU"],
                LBSTRESN=value, LBSTRESU=meta["LBSTRESU"],
                LBORNRLO=meta["LBORNRLO"].where(meta["LBORNRLO"] > 0),
                LBORNRHI=meta["LBORNRHI"],
                LBTOXGR=pd.array(grade, dtype="Int64"),
                LBDTC=days[(index % PER_SUBJECT) % len(days)])
            frame.to_csv(handle, index=False, header=start == 0)


def child(url: str, folder: str) -> None:
    """Import ``folder`` into a fresh store at ``url``; print one JSON line."""
    import celltrial.store as st

    st.init_db(url)
    store = st.open_store(url)
    st.register_study(store, STUDY, "Import benchmark")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu = time.perf_counter(), time.process_time()
    summary = st.import_csv_dir(store, STUDY, folder, user="bench", reason="benchmark")
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = summary.total
    store.close()
    print(json.dumps({"rows": rows, "seconds": round(seconds, 2), "cpu_s": round(cpu, 2),
                      "rows_per_s": round(rows / seconds), "peak_rss_mib": round(peak),
                      "rss_before_import_mib": round(rss_before),
                      "code": st.__file__}))


def _run(url: str, folder: Path, timeout: float, code: str | None) -> dict:
    command = [sys.executable, __file__, "--child", url, str(folder)]
    env = os.environ.copy()
    if code:
        env["PYTHONPATH"] = str(Path(code).resolve())
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--code", action="append", default=None,
                        help="a src folder to import with (repeatable; default: installed)")
    parser.add_argument("--child", nargs=2, metavar=("URL", "FOLDER"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
        folder = Path(tmp) / "csv"
        folder.mkdir()
        started = time.perf_counter()
        generate(folder, args.rows)
        size = (folder / "LB.csv").stat().st_size / 2**20
        print(f"generated {args.rows} LB rows ({size:.0f} MiB) in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        for number, code in enumerate(args.code or [None]):
            for backend in args.backends.split(","):
                if backend == "sqlite":
                    db = Path(tmp) / f"bench{number}.db"
                    result = _run(f"sqlite:///{db}", folder, args.timeout, code)
                    for leftover in Path(tmp).glob(f"bench{number}.db*"):
                        leftover.unlink()
                else:
                    from tests.conftest import postgres_schema_url

                    with postgres_schema_url() as url:
                        result = _run(url, folder, args.timeout, code)
                print(json.dumps({"backend": backend, **result}), flush=True)


if __name__ == "__main__":
    main()
