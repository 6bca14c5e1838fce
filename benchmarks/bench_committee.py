"""The dose-escalation committee's review: first and repeat request times (issue 15).

The committee page and its API derive ADSL, the DLT adjudications and the design's decision
from the study's records; the review is kept per study with the version of the records it
was computed from (``celltrial.store.committee.REVIEW_CACHE``, keyed by the newest audit row
of the study's clinical domains, read from the database). This script serves the app with
uvicorn (2 worker processes, as deployed) on 127.0.0.1 over a fresh store (PostgreSQL in its
own schema, or SQLite) holding a virtual study (``celltrial.conduct.write_study``), logs in as
a monitor and times, in order:

1. ``--repeats`` GETs of ``/api/studies/{study}/committee`` with no new data: the first
   request of each worker computes the review, every later one is answered from the cache;
2. one lab record written through the store (as another process would write it), then
   ``--repeats`` GETs again: the first request on each worker computes the new review;
3. the HTML page ``/studies/{study}/committee`` ``--repeats`` times.

Usage:
    .venv/bin/python benchmarks/bench_committee.py --backend postgres --patients 20
    .venv/bin/python benchmarks/bench_committee.py --backend sqlite --repeats 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_concurrency import (_free_port, drop_pg_schema, pg_schema, serve,  # noqa: E402
                               wait_ready)

STUDY = "cd7-zz-phase1"
PASSWORD = "committee bench passphrase"


def seed(url: str, patients: int, seed_value: int) -> None:
    """A virtual study of ``patients`` referred patients and a monitor of every site."""
    from celltrial.conduct import write_study
    from celltrial.protocols import load
    from celltrial.store import add_user, init_db, open_store, register_study

    init_db(url)
    store = open_store(url)
    try:
        protocol = load(STUDY)
        register_study(store, protocol)
        write_study(store, protocol, patients, seed_value)
        add_user(store, "mon01", "monitor", PASSWORD, site=None)
    finally:
        store.close()


def write_lab(url: str) -> None:
    """One neutrophil count of the first subject, through the store (a new data version)."""
    import pandas as pd

    from celltrial.store import open_store, read_domain, write_domains

    store = open_store(url)
    try:
        first = str(read_domain(store, STUDY, "DM")["USUBJID"].iloc[0])
        lb = pd.DataFrame({"USUBJID": [first], "LBCAT": ["HEMATOLOGY"], "LBTESTCD": ["NEUT"],
                           "LBTEST": ["Neutrophils"], "LBSPEC": ["BLOOD"], "LBORRES": ["2.5"],
                           "LBORRESU": ["10^9/L"], "LBSTRESN": [2.5], "LBSTRESU": ["10^9/L"],
                           "LBDTC": ["2024-06-01"]})
        write_domains(store, STUDY, {"LB": lb}, user="bench", reason="committee bench")
    finally:
        store.close()


def timed(client: httpx.Client, url: str, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` GETs of ``url`` (each must answer 200)."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        # a new connection each time, so that both workers answer in turn
        answer = client.get(url, timeout=300, headers={"Connection": "close"})
        out.append(time.perf_counter() - t0)
        answer.raise_for_status()
    return out


def summary(times: list[float]) -> dict[str, object]:
    ordered = sorted(times)
    rest = times[2:]  # the first request of each of the two workers may compute
    return {"first_s": round(times[0], 3), "second_s": round(times[1], 3),
            "slowest_s": round(ordered[-1], 3),
            "repeat_median_ms": round(statistics.median(rest) * 1000, 1) if rest else None,
            "repeat_max_ms": round(max(rest) * 1000, 1) if rest else None,
            "computed (> 0.5 s)": sum(t > 0.5 for t in times),
            "all_ms": [round(t * 1000, 1) for t in times]}


def run(backend: str, patients: int, seed_value: int, repeats: int) -> dict[str, object]:
    schema = None
    if backend == "postgres":
        schema, url = pg_schema()
        # the app runs as the role that owns nothing, as docs/store.md prescribes
        served = url.replace("//postgres@", "//celltrial_app@")
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='ct-committee-')}/celltrial.db"
        served = url
    server = None
    try:
        seed(url, patients, seed_value)
        port = _free_port()
        env = {**os.environ, "CELLTRIAL_DATABASE_URL": served,
               "CELLTRIAL_SECRET_KEY": "committee-bench-" + "x" * 32}
        server = serve(port, 2, env)
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        with httpx.Client(base_url=base) as client:
            client.post("/api/login", json={"username": "mon01", "password": PASSWORD},
                        timeout=120).raise_for_status()
            api = f"/api/studies/{STUDY}/committee"
            result: dict[str, object] = {"backend": backend, "patients": patients,
                                         "no_new_data": summary(timed(client, api, repeats))}
            write_lab(url)
            result["after_a_write"] = summary(timed(client, api, repeats))
            result["html_page"] = summary(timed(client, f"/studies/{STUDY}/committee",
                                                repeats))
        return result
    finally:
        if server is not None:
            import signal

            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        if schema:
            drop_pg_schema(schema)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    ap.add_argument("--patients", type=int, default=20, help="referred virtual patients")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    print(json.dumps(run(args.backend, args.patients, args.seed, args.repeats), indent=2))


if __name__ == "__main__":
    main()
